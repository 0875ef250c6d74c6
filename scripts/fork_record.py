"""Write src/oda_sft/eval/data/fork_record.json: what ODA's OpenCompass fork runs, read from the fork itself.

For every dataset config oda-sft runs (oda_sft.eval.benchmarks), each dataset the config defines: the abbr
OpenCompass writes as the `dataset` column of summary_*.csv, the dataset class and data path, the evaluator,
the judge model a GenericLLMEvaluator loads, and the inferencer's own settings (`max_out_len` there wins over
the model's: opencompass/tasks/openicl_infer.py `_set_default_value`). Plus the group rows the default
summarizer adds (configs/summarizers/example.py), and the metric keys each evaluator returns.

Configs are loaded as `opencompass --datasets NAME` loads them (opencompass/utils/run.py,
get_config_from_arg): the one file NAME.py under configs/datasets or configs/dataset_collections,
`mmengine.config.Config.fromfile`, every key ending in `_datasets`. mmengine loads them lazily (imports
become LazyObjects), so no fork class is imported: their names are recorded as written. `opencompass.configs`
imports inside `read_base()` resolve to the fork's tree (it is put first on sys.path).

Run with a Python that has mmengine (the OpenCompass venv), from the repo root:
    git -C FORK_GIT archive COMMIT opencompass | tar -x -C /tmp/fork
    .venv-opencompass/bin/python scripts/fork_record.py --fork /tmp/fork --commit COMMIT [--git FORK_GIT]
--git (a clone or bare mirror of the fork) lets the script check the evaluator metric table against the
evaluators' source at COMMIT.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "src" / "oda_sft" / "eval" / "data" / "fork_record.json"
PINNED_BY = (
    "OpenDataArena/OpenDataArena-Tool 0475376 pins the submodule model_eval/opencompass at "
    "a58c9cb56bdf776c6d3b1a445e39c9127cd0e831 (git ls-tree HEAD model_eval/opencompass)"
)

# The numeric keys each evaluator's score() returns, in the order DefaultSummarizer writes their rows
# (METRIC_WHITELIST first: opencompass/summarizers/default.py). Read off the fork's code; each entry names
# the file, and --git checks that every key (or its f-string prefix) is written there.
EVALUATOR_METRICS: dict[str, tuple[str, list[str], list[str]]] = {
    # name: (source file, metric keys, literals that must appear in the file)
    "GenericLLMEvaluator": (
        "opencompass/datasets/generic.py",  # get_final_results, through generic_llmjudge_postprocess(x)
        ["accuracy", "f1", "accuracy_given_attempted", "attempted_ratio", "correct_count", "incorrect_count",
         "not_attempted_count"],
        ["metric_name='accuracy'", "f'{metric_name}_given_attempted'", "'attempted_ratio'", "'not_attempted_count'"],
    ),
    "DropOpenAIEvaluator": ("opencompass/datasets/drop_simple_eval.py", ["accuracy"], ["{'accuracy':"]),
    "IFEvaluator": (
        "opencompass/datasets/IFEval/ifeval.py",
        ["Prompt-level-strict-accuracy", "Inst-level-strict-accuracy", "Prompt-level-loose-accuracy",
         "Inst-level-loose-accuracy"],
        ["'Prompt-level-strict-accuracy'", "'Inst-level-loose-accuracy'"],
    ),
    "OmniMathEvaluator": ("opencompass/datasets/omni_math.py", ["accuracy"], ["'accuracy':"]),
    "HumanEvalEvaluator": ("opencompass/datasets/humaneval.py", ["humaneval_pass@1"], ["f'humaneval_{k}'"]),
    "HumanEvalPlusEvaluator": (
        "opencompass/datasets/humaneval.py", ["humaneval_plus_pass@1"], ["f'humaneval_plus_{k}'"]
    ),
    "MBPPEvaluator": (
        "opencompass/datasets/mbpp.py",
        ["score", "pass", "timeout", "failed", "wrong_answer"],
        ["result['score']", "'wrong_answer': 0"],
    ),
    "LCBCodeGenerationEvaluator": ("opencompass/datasets/livecodebench/evaluator.py", ["pass@1"], ["'pass@1'"]),
    "LCBCodeExecutionEvaluator": ("opencompass/datasets/livecodebench/evaluator.py", ["pass@1"], ["'pass@1'"]),
    "LCBTestOutputEvaluator": ("opencompass/datasets/livecodebench/evaluator.py", ["pass@1"], ["'pass@1'"]),
    "CaLMEvaluator": ("opencompass/datasets/calm/evaluation/core_metrics.py", ["Accuracy"], ["['Accuracy']"]),
}  # fmt: skip


def _name(value: Any) -> Any:
    """A LazyObject / LazyAttr (an import the config names) as the name it imports."""
    from mmengine.config.lazy import LazyAttr, LazyObject

    if isinstance(value, LazyAttr):
        return value.name
    if isinstance(value, LazyObject):
        imported = value._imported  # mmengine keeps the imported name here
        return imported if isinstance(imported, str) else str(imported)
    return value


def _get(mapping: Any, key: str) -> Any:
    # dict.get: ConfigDict.get would import a lazy value
    return dict.get(mapping, key) if isinstance(mapping, dict) else None


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in dict.items(value)}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in (list.__iter__(value) if isinstance(value, list) else tuple.__iter__(value))]
    return _name(value)


def find_config(configs: Path, name: str) -> Path:
    found = [
        Path(root) / f"{name}.py"
        for sub in ("datasets", "dataset_collections")
        for root, _, files in os.walk(configs / sub)
        if f"{name}.py" in files
    ]
    if len(found) != 1:  # run.py would fail (none) or warn and take one (several): neither is recorded
        raise SystemExit(f"{name}.py: {len(found)} files under {configs}/datasets and dataset_collections")
    return found[0]


def dataset_entry(ds: Any) -> dict[str, Any]:
    evaluator = _get(_get(ds, "eval_cfg"), "evaluator") or {}
    inferencer = _plain(_get(_get(ds, "infer_cfg"), "inferencer") or {})
    judge_cfg = _get(evaluator, "judge_cfg")
    abbr = _get(ds, "abbr")
    if abbr is None:  # opencompass/utils/abbr.py dataset_abbr_from_cfg
        abbr = (str(_get(ds, "path")) + (f"_{_get(ds, 'name')}" if _get(ds, "name") is not None else "")).replace(
            "/", "_"
        )
    evaluator_type = _name(_get(evaluator, "type"))
    entry: dict[str, Any] = {
        "abbr": abbr,
        "dataset": _name(_get(ds, "type")),
        "path": _get(ds, "path"),
        "evaluator": evaluator_type,
        "judge": _get(judge_cfg, "path") if judge_cfg else None,
        "max_out_len": inferencer.get("max_out_len"),
        "inferencer": {k: v for k, v in inferencer.items() if k != "type"},
        "metrics": EVALUATOR_METRICS[evaluator_type][1] if evaluator_type in EVALUATOR_METRICS else None,
    }
    if _get(evaluator, "url") is not None:
        entry["judge_url"] = _plain(_get(evaluator, "url"))
    if _get(ds, "local_mode") is not None:
        entry["local_mode"] = _get(ds, "local_mode")
    return entry


def load_config(configs: Path, name: str) -> dict[str, Any]:
    from mmengine.config import Config

    path = find_config(configs, name)
    cfg = Config.fromfile(str(path))
    datasets = []
    for key in cfg.keys():  # noqa: SIM118 (a Config, as run.py iterates it): as run.py: every key ending in _datasets, in the config's order
        if key.endswith("_datasets"):
            datasets += [dataset_entry(ds) for ds in list.__iter__(dict.__getitem__(cfg._cfg_dict, key))]
    if len({d["abbr"] for d in datasets}) != len(datasets):
        raise SystemExit(f"{name}: two datasets share an abbr (their results would overwrite each other)")
    # by abbr: calm.py builds its list from a set, so the config's own order changes from run to run
    return {"file": str(path.relative_to(configs.parents[1])), "datasets": sorted(datasets, key=lambda d: d["abbr"])}


def summary_groups(configs: Path, abbrs: set[str]) -> list[dict[str, Any]]:
    """The default summarizer's groups (`--summarizer` unset: example.py) over datasets oda-sft runs."""
    from mmengine.config import Config

    cfg = Config.fromfile(str(configs / "summarizers" / "example.py"))
    groups = _plain(dict.__getitem__(cfg._cfg_dict, "summarizer"))["summary_groups"]
    out = []
    for group in groups:
        subsets = [s if isinstance(s, str) else s[0] for s in group["subsets"]]
        if set(subsets) & abbrs:
            metric = group.get("metric") or ("weighted_average" if group.get("weights") else "naive_average")
            out.append({"name": group["name"], "subsets": subsets, "metric": metric})
    return out


def check_metrics(git_dir: Path, commit: str) -> None:
    for name, (source, _, literals) in EVALUATOR_METRICS.items():
        text = subprocess.run(
            ["git", "-C", str(git_dir), "show", f"{commit}:{source}"], check=True, capture_output=True, text=True
        ).stdout
        absent = [lit for lit in literals if lit not in text]
        if absent:
            raise SystemExit(f"{name}: {source} at {commit} does not write {', '.join(absent)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fork", type=Path, required=True, help="an extracted fork tree (holds opencompass/configs)")
    parser.add_argument("--commit", required=True, help="the fork commit the tree was extracted from (40 hex)")
    parser.add_argument("--git", type=Path, help="the fork's git dir, to check the evaluator metric table")
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()
    fork = args.fork.resolve()
    configs = fork / "opencompass" / "configs"
    # `opencompass.configs...` inside read_base() resolves to the fork's tree, as with the fork installed
    (fork / "opencompass" / "__init__.py").touch(exist_ok=True)
    sys.path.insert(0, str(fork))
    sys.path.insert(0, str(ROOT / "src"))
    from oda_sft.eval.benchmarks import BENCHMARKS  # the configs oda-sft runs

    if args.git:
        check_metrics(args.git, args.commit)
    names = sorted({c for b in BENCHMARKS if not b.custom for c in b.configs.values()})
    import mmengine

    record: dict[str, Any] = {
        "fork": {"repo": "OpenDataArena/opencompass", "commit": args.commit, "pinned_by": PINNED_BY},
        "generated_by": f"scripts/fork_record.py, mmengine {mmengine.__version__} Config.fromfile",
        "configs": {name: load_config(configs, name) for name in names},
    }
    abbrs = {d["abbr"] for c in record["configs"].values() for d in c["datasets"]}
    record["summary_groups"] = summary_groups(configs, abbrs)
    record["evaluator_metrics"] = {k: {"source": v[0], "metrics": v[1]} for k, v in EVALUATOR_METRICS.items()}
    args.out.write_text(json.dumps(record, indent=1, sort_keys=False) + "\n", encoding="utf-8")
    print(f"wrote {args.out}: {len(names)} configs, {len(abbrs)} dataset abbrs")


if __name__ == "__main__":
    main()
