"""oda-sft's benchmark records against ODA's OpenCompass fork itself: src/oda_sft/eval/data/fork_record.json,
generated from the fork's configs by scripts/fork_record.py (mmengine, as OpenCompass loads them). Every
preset x benchmark: the summary rule reads exactly the rows the config writes, the judge is the one it loads."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import pytest

from oda_sft.eval import summary
from oda_sft.eval.benchmarks import BENCHMARKS, BY_NAME, JUDGE_MODELS, PRESETS, Benchmark, SummaryRule

ROOT = Path(__file__).resolve().parents[2]
RECORD: dict[str, Any] = json.loads((ROOT / "src/oda_sft/eval/data/fork_record.json").read_text(encoding="utf-8"))
CONFIGS: dict[str, Any] = RECORD["configs"]
JUDGED = [p for p in PRESETS.values() if p.judged]
CASES = [(p.name, b.name) for p in JUDGED for b in p.benchmarks]
# Evaluators that call a served judge model rather than loading one (Omni-MATH: OmniMathEvaluator(url=[...])).
SERVED_JUDGES = {"OmniMathEvaluator": "Omni-Judge"}


def test_the_record_is_of_the_commit_oda_pins_and_covers_every_config_oda_sft_runs() -> None:
    # OpenDataArena-Tool pins model_eval/opencompass at this commit (its git tree, not its docs)
    assert RECORD["fork"]["commit"] == "a58c9cb56bdf776c6d3b1a445e39c9127cd0e831"
    runs = {c for b in BENCHMARKS if not b.custom for c in b.configs.values()}
    assert set(CONFIGS) == runs, "regenerate it: scripts/fork_record.py"
    assert all(CONFIGS[c]["datasets"] for c in runs)


def _rows(preset: str) -> dict[str, list[str]]:
    """The summary CSV's rows for one preset's whole evaluation: dataset abbr -> its metrics, as the fork's
    DefaultSummarizer writes them (each dataset's evaluator metrics; a group row when all its subsets ran)."""
    rows: dict[str, list[str]] = {}
    for bench in PRESETS[preset].benchmarks:
        for ds in CONFIGS[PRESETS[preset].config(bench)]["datasets"]:
            rows[ds["abbr"]] = ds["metrics"]
    for group in RECORD["summary_groups"]:
        if all(s in rows for s in group["subsets"]):
            shared = set.intersection(*(set(rows[s]) for s in group["subsets"]))
            rows[group["name"]] = [*sorted(shared), group["metric"]]
    return rows


def _matches(rule: SummaryRule, abbr: str) -> bool:
    return abbr.startswith(rule.dataset) if rule.prefix else abbr == rule.dataset


def _own_rows(bench: Benchmark, preset: str) -> set[str]:
    """The rows that are this benchmark's: its config's datasets, or the group row the summarizer makes of them."""
    abbrs = {ds["abbr"] for ds in CONFIGS[PRESETS[preset].config(bench)]["datasets"]}
    groups = {g["name"] for g in RECORD["summary_groups"] if set(g["subsets"]) <= abbrs}
    return abbrs | groups


@pytest.mark.parametrize(("preset", "name"), CASES)
def test_the_summary_rule_reads_exactly_the_rows_the_config_writes(preset: str, name: str) -> None:
    bench, rows = BY_NAME[name], _rows(preset)
    matched = {abbr for abbr in rows if _matches(bench.rule, abbr)}
    assert matched, (
        f"{bench.rule} matches no row of {PRESETS[preset].config(bench)} "
        f"(it writes {sorted(_own_rows(bench, preset))[:4]})"
    )
    assert matched <= _own_rows(bench, preset), f"{bench.rule} also reads {sorted(matched - _own_rows(bench, preset))}"
    if not bench.rule.prefix:
        assert len(matched) == 1
    if bench.rule.metric is not None:
        assert all(bench.rule.metric in rows[abbr] for abbr in matched), (bench.rule.metric, matched)


@pytest.mark.parametrize(("preset", "name"), CASES)
def test_the_recorded_judge_is_the_one_the_config_loads(preset: str, name: str) -> None:
    bench = BY_NAME[name]
    read = [ds for ds in CONFIGS[PRESETS[preset].config(bench)]["datasets"] if _matches(bench.rule, ds["abbr"])]
    read = read or CONFIGS[PRESETS[preset].config(bench)]["datasets"]  # a group row: its subsets
    evaluators = {ds["evaluator"] for ds in read}
    judges = {ds["judge"] for ds in read}
    assert len(evaluators) == 1 and len(judges) == 1
    (evaluator,), (judge,) = evaluators, judges
    named = PRESETS[preset].judge(bench)
    if evaluator == "GenericLLMEvaluator":
        assert JUDGE_MODELS.get(named) == judge
    elif evaluator in SERVED_JUDGES:
        assert named == SERVED_JUDGES[evaluator] and judge is None
    else:
        assert (named, judge) == (evaluator, None)


def write_summary_csv(path: Path, preset: str, column: str, value: float = 50.0) -> Path:
    """A summary_<stamp>.csv as the fork writes it for a whole evaluation: the configs' real abbrs and
    metrics, every value `value` (count metrics too: only the rules' metrics are read)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8", newline="") as handle:
        out = csv.writer(handle)
        out.writerow(["dataset", "version", "metric", "mode", column])
        for abbr, metrics in _rows(preset).items():
            for metric in metrics:
                out.writerow([abbr, "abc123", metric, "gen", f"{value:.2f}"])
    return path


@pytest.mark.parametrize("preset", [p.name for p in JUDGED])
def test_an_all_evaluation_scores_every_benchmark_from_the_forks_summary(preset: str, tmp_path: Path) -> None:
    found = write_summary_csv(tmp_path / "work/20250101_000000/summary/summary_20250101_000000.csv", preset, "m")
    chosen = PRESETS[preset].benchmarks
    values = summary.scores(summary.read_rows(found), "m", chosen)
    assert set(values) == {b.name for b in chosen}
    assert set(values.values()) == {50.0}
    result = summary.summarise(values, [b.name for b in chosen])
    assert result.missing == {}
    assert set(result.domains) == {"general", "math", "code", "reasoning"}
    assert result.overall == 50.0
