"""ODA's evaluation, as oda-sft renders it, against docs/eval.md's tables (copied from ../shared/EVAL.md and
checked against OpenDataArena-Tool's eval scripts and run_summary.py): every preset x benchmark."""

from __future__ import annotations

import ast
import json
import re
from pathlib import Path

import pytest

from oda_sft.eval import render
from oda_sft.eval.benchmarks import BENCHMARKS, BY_NAME, PRESETS, SummaryRule

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
PRESET_ROWS = {row["preset"]: row for row in _table("presets")}


def test_every_benchmark_has_a_row_and_every_row_a_benchmark() -> None:
    assert set(BENCH_ROWS) == set(BY_NAME)
    assert [b.name for b in BENCHMARKS] == list(BENCH_ROWS)  # the table's order is the run order


def _cell(value: str | None) -> str:
    return value if value is not None else "—"


@pytest.mark.parametrize("name", list(BY_NAME))
def test_benchmark_matches_the_table(name: str) -> None:
    bench, row = BY_NAME[name], BENCH_ROWS[name]
    assert (bench.domain, bench.title) == (row["domain"], row["benchmark"])
    # llama and qwen run the same config: one column
    assert bench.configs.get("llama") == bench.configs.get("qwen")
    assert _cell(bench.configs.get("llama")) == row["config (llama, qwen)"]
    assert _cell(bench.configs.get("qwen3")) == row["config (qwen3)"]
    assert _cell(bench.configs.get("tiny")) == row["config (tiny)"]
    judges = [bench.judge(p) for p in ("llama", "qwen3", "tiny") if p in bench.configs]
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


@pytest.mark.parametrize("name", list(PRESETS))
def test_preset_renders_the_table_row(name: str, tmp_path: Path) -> None:
    preset, row = PRESETS[name], PRESET_ROWS[name]
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
