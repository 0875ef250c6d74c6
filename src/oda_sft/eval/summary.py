"""A run's scores from OpenCompass's summary/summary_<stamp>.csv, by ODA's rules (run_summary.py).

The CSV has columns dataset, version, metric, mode and one per model abbr; a missing value is '-'.
Each benchmark's rule (benchmarks.SummaryRule) picks rows by dataset name (exact or prefix) and metric,
and takes the first numeric value or the mean of all of them, as run_summary.py does. oda-sft computes
this itself: the published script cannot run (a missing comma makes Python call a tuple).
Scores are OpenCompass's percentages (0-100).

One rule for a missing benchmark, in the manifest (eval/runner.py) and in `rank` (eval/leaderboard.py), both
through `summarise`: a domain's value is the mean of its summarised benchmarks only when every one of them
scored, and `overall` (the mean of the domain values) only when every domain has one. A mean over fewer
benchmarks is not comparable with one over all of them (a missing hard benchmark raises it), so it is kept
apart, marked partial, and never ranked.
"""

from __future__ import annotations

import csv
import math
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from oda_sft.eval.benchmarks import BY_NAME, DOMAINS, Benchmark, SummaryRule


def read_rows(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as handle:
        return [dict(row) for row in csv.DictReader(handle)]


def _number(text: str | None) -> float | None:
    try:
        value = float(text) if text is not None else math.nan
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def apply_rule(rows: list[dict[str, str]], column: str, rule: SummaryRule) -> float | None:
    """One benchmark's value, or None when the CSV has no usable row for it."""
    picked = [
        r
        for r in rows
        if (r.get("dataset", "").startswith(rule.dataset) if rule.prefix else r.get("dataset") == rule.dataset)
        and (rule.metric is None or r.get("metric") == rule.metric)
    ]
    values = [v for v in (_number(r.get(column)) for r in picked) if v is not None]
    if not values:
        return None
    return sum(values) / len(values) if rule.average else values[0]


def scores(rows: list[dict[str, str]], column: str, chosen: tuple[Benchmark, ...]) -> dict[str, float]:
    out = {}
    for bench in chosen:
        value = apply_rule(rows, column, bench.rule)
        if value is not None:
            out[bench.name] = round(value, 4)
    return out


def domain_of(benchmark: str) -> str | None:
    """The domain ODA averages a benchmark into; None for those its summary leaves out (or unknown)."""
    bench = BY_NAME.get(benchmark)
    return bench.domain if bench is not None and bench.summarised else None


@dataclass(frozen=True)
class Summary:
    """One evaluation's domain and overall values, by the one rule (the module's docstring)."""

    domains: dict[str, float]  # every domain whose benchmarks all scored
    overall: float | None  # every domain the benchmarks cover has a value
    partial: dict[str, float] = field(default_factory=dict)  # the rest: the mean of what scored (not comparable)
    missing: dict[str, list[str]] = field(default_factory=dict)  # domain -> its benchmarks without a score


def summarise(values: Mapping[str, float | None], benchmarks: Sequence[str]) -> Summary:
    """`values`: the scores there are (a benchmark absent or None has none); `benchmarks`: those the
    evaluation's settings chose, whose domains it covers."""
    full: dict[str, float] = {}
    partial: dict[str, float] = {}
    missing: dict[str, list[str]] = {}
    for domain in DOMAINS:
        names = [b for b in benchmarks if domain_of(b) == domain]
        got = [v for v in (values.get(b) for b in names) if v is not None]
        if not names:
            continue
        if len(got) == len(names):
            full[domain] = statistics.fmean(got)
        else:
            missing[domain] = [b for b in names if values.get(b) is None]
            if got:
                partial[domain] = statistics.fmean(got)
    overall = statistics.fmean(full.values()) if full and not missing else None
    return Summary(full, overall, partial, missing)


def record_fields(values: dict[str, float], chosen: tuple[Benchmark, ...]) -> dict[str, Any]:
    """The manifest's `domains` and `overall` (and `partial_domains`, marked so, where a benchmark is missing)."""
    result = summarise(values, [b.name for b in chosen])
    fields: dict[str, Any] = {
        "domains": {d: round(v, 4) for d, v in result.domains.items()},
        "overall": round(result.overall, 4) if result.overall is not None else None,
    }
    if result.partial:
        fields["partial_domains"] = {d: round(v, 4) for d, v in result.partial.items()}
    return fields


def progress(attempt: Path) -> str:
    """How far OpenCompass is in an attempt's folder, from the files it writes as each task ends: a dataset's
    predictions/<model>/<abbr>.json after inference, results/<model>/<abbr>.json after scoring."""

    def done(folder: str) -> int:
        return sum(1 for p in (attempt / folder).glob("*/*.json") if not p.name.startswith("tmp_"))

    return f"OpenCompass: {done('predictions')} dataset(s) inferred, {done('results')} scored"
