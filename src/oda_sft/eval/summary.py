"""A run's scores from OpenCompass's summary/summary_<stamp>.csv, by ODA's rules (run_summary.py).

The CSV has columns dataset, version, metric, mode and one per model abbr; a missing value is '-'.
Each benchmark's rule (benchmarks.SummaryRule) picks rows by dataset name (exact or prefix) and metric,
and takes the first numeric value or the mean of all of them, as run_summary.py does. oda-sft computes
this itself: the published script cannot run (a missing comma makes Python call a tuple).
Scores are OpenCompass's percentages (0-100). A domain's value is the mean of its benchmarks that ODA
summarises and that scored; `overall` is the mean of the domain values.
"""

from __future__ import annotations

import csv
import math
from pathlib import Path

from oda_sft.eval.benchmarks import DOMAINS, Benchmark, SummaryRule


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


def domains(values: dict[str, float], chosen: tuple[Benchmark, ...]) -> dict[str, float]:
    out: dict[str, float] = {}
    for domain in DOMAINS:
        got = [values[b.name] for b in chosen if b.domain == domain and b.summarised and b.name in values]
        if got:
            out[domain] = round(sum(got) / len(got), 4)
    return out


def overall(by_domain: dict[str, float]) -> float | None:
    return round(sum(by_domain.values()) / len(by_domain), 4) if by_domain else None
