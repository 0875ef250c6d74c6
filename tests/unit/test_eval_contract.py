"""ODA's evaluation, as oda-sft renders it, against docs/eval.md's tables (copied from ../shared/EVAL.md and
checked against OpenDataArena-Tool's eval scripts and run_summary.py): every eval profile x benchmark."""

from __future__ import annotations

import ast
import json
import re
from pathlib import Path

import pytest

from oda_sft import presets
from oda_sft.eval import render
from oda_sft.eval.benchmarks import BENCHMARKS, BY_NAME, PROFILES, SummaryRule

DOC = Path(__file__).resolve().parents[2] / "docs" / "eval.md"
FORK = Path(__file__).resolve().parents[2] / "src" / "oda_sft" / "eval" / "data" / "fork_record.json"


def _table(name: str) -> list[dict[str, str]]:
    text = DOC.read_text(encoding="utf-8")
    block = re.search(rf"<!-- contract: {name} -->\n(.*?)<!-- /contract -->", text, re.S)
    assert block, f"docs/eval.md has no '{name}' contract table"
    lines = [ln for ln in block.group(1).strip().splitlines() if ln.startswith("|")]
    header = [c.strip() for c in lines[0].strip("|").split("|")]
    return [dict(zip(header, (c.strip() for c in ln.strip("|").split("|")), strict=True)) for ln in lines[2:]]


BENCH_ROWS = {row["name"]: row for row in _table("benchmarks")}
PROFILE_ROWS = {row["profile"]: row for row in _table("presets")}
# The benchmark table's config column of each profile (headed by the presets ODA's scripts are named after).
COLUMNS = {"llama_qwen": "config (llama, qwen)", "qwen3": "config (qwen3)", "tiny": "config (tiny)"}


def test_every_benchmark_has_a_row_and_every_row_a_benchmark() -> None:
    assert set(BENCH_ROWS) == set(BY_NAME)
    assert [b.name for b in BENCHMARKS] == list(BENCH_ROWS)  # the table's order is the run order


def _cell(value: str | None) -> str:
    return value if value is not None else "—"


@pytest.mark.parametrize("name", list(BY_NAME))
def test_benchmark_matches_the_table(name: str) -> None:
    bench, row = BY_NAME[name], BENCH_ROWS[name]
    assert (bench.domain, bench.title) == (row["domain"], row["benchmark"])
    assert set(bench.configs) <= set(PROFILES)
    for profile, column in COLUMNS.items():
        assert _cell(bench.configs.get(profile)) == row[column]
    judges = [bench.judge(p) for p in COLUMNS if p in bench.configs]
    assert " / ".join(dict.fromkeys(judges)) == row["judge / evaluator"]


@pytest.mark.parametrize("name", list(BY_NAME))
def test_summary_rule_matches_the_table(name: str) -> None:
    bench, row = BY_NAME[name], BENCH_ROWS[name]
    summarised = not row["summary rule"].endswith("(not summarised)")
    dataset, metric, how = (part.strip() for part in row["summary rule"].split(" (")[0].split(","))
    expected = SummaryRule(
        dataset.rstrip("*"), None if metric == "any" else metric, dataset.endswith("*"), how == "mean"
    )
    assert bench.rule == expected
    assert bench.summarised == summarised


def _sampling(text: str) -> dict[str, object]:
    return {k.strip(): ast.literal_eval(v.strip()) for k, v in (p.split("=") for p in text.split(","))}


def test_every_profile_has_a_row_and_a_config_column() -> None:
    assert list(PROFILE_ROWS) == list(PROFILES)
    assert set(COLUMNS) == set(PROFILES)


@pytest.mark.parametrize("name", list(PROFILES))
def test_the_presets_a_row_names_use_its_profile(name: str) -> None:
    named = [p.strip() for p in PROFILE_ROWS[name]["presets"].split(",")]
    assert all(presets.PRESETS[p].eval_profile == name for p in named)


@pytest.mark.parametrize("name", list(PROFILES))
def test_profile_renders_the_table_row(name: str, tmp_path: Path) -> None:
    preset, row = PROFILES[name], PROFILE_ROWS[name]
    entry = render.model_entry(preset, "abbr", tmp_path / "model")
    assert repr(entry["type"]) == row["model class"]
    assert entry["max_out_len"] == int(row["max_out_len"])
    assert entry["batch_size"] == int(row["batch"])
    assert entry["run_cfg"] == {"num_gpus": int(row["GPUs"])}
    assert entry["generation_kwargs"] == _sampling(row["sampling"])
    post = entry.get("pred_postprocessor", {}).get("type")
    assert (repr(post) if post is not None and not isinstance(post, str) else post or "") == row["post-processor"]
    if preset.accelerator == "vllm":
        assert entry["model_kwargs"] == {"tensor_parallel_size": 1}
    # the options, as the rendered command passes them
    argv = render.command(
        Path("/oc/bin/opencompass"), preset, preset.benchmarks[:1], render.Layout(tmp_path), "x", "20250102_030405"
    )
    tail = argv[argv.index("--max-num-workers") :]
    assert " ".join(tail) == row["opencompass options"]
    # every eval names its own OpenCompass folder (never -r alone: ODA's qwen3 script's bare -r is covered)
    assert argv[argv.index("-w") : argv.index("-w") + 4] == ["-w", str(tmp_path / "work"), "-r", "20250102_030405"]
    assert argv.count("-r") == 1
    assert argv[argv.index("--max-out-len") + 1] == row["max_out_len"]
    assert argv[argv.index("--hf-type") + 1] == "chat"


def test_only_the_fork_has_xver_and_cver_configs_and_they_name_their_judge() -> None:
    for bench in BENCHMARKS:
        for preset, config in bench.configs.items():
            if "_xver_" in config:
                assert bench.judge(preset) == "xVerify-9B-C"
            if "_cver_" in config:
                assert bench.judge(preset) == "CompassVerifier-7B"


@pytest.mark.parametrize("name", [b.name for b in BENCHMARKS if not b.custom])
def test_the_table_names_the_configs_own_max_out_len(name: str) -> None:
    """A dataset config's own max_out_len wins over the model's (the fork's tasks/openicl_infer.py
    _set_default_value); the fork's record (tests/unit/test_eval_fork_record.py) says which set one."""
    configs = json.loads(FORK.read_text(encoding="utf-8"))["configs"]
    found = {ds["max_out_len"] for c in set(BY_NAME[name].configs.values()) for ds in configs[c]["datasets"]}
    assert len(found) == 1
    (value,) = found
    assert BENCH_ROWS[name]["config max_out_len"] == ("—" if value is None else str(value))
