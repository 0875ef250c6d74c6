"""Whether two neighbouring rows of `rank` are separated: a paired test over questions that carries the seeds.

A row's value on a metric (a domain, or overall) is a weighted mean of per-question results: each
benchmark's mean over its subsets of each subset's mean over questions, averaged into domains and overall
(summary.py), and over seeds. The difference D between two rows is the same weighted sum of per-question
differences d_i (each question's mean over seeds and repetitions, one row minus the other), so under the
view that questions are drawn from a larger population (Miller 2024, arXiv 2411.00640) its variance is,
per subset s of S with n_s questions, the paired term Var(D_q) = sum_s (w_s^2 / S^2) var(d_s) / n_s, with
w the benchmark's weight in the metric (var(d_s) / n_s as Agresti and Min adjust it: _paired_var).
Pairing removes what the rows share (the questions' difficulty).

Training seeds add a shift common to every question of a run (its seed effect), which the questions do not
see: each side adds sigma_seed^2 / K, with sigma_seed^2 estimated as the variance over its K seeds of the
metric minus the part the per-question variation over seeds already explains (a method-of-moments estimate
for seeds crossed with questions; never below 0). With one seed on a side that part is unknown and the
result says so. The difference is separated when its (1 - alpha) normal interval excludes 0.

Without per-question results (an older eval), a benchmark's term is binomial, p(1 - p) / N per side, from
its question count N (recorded by either row); with no count it is not tested and nothing is separated.
numpy does the arithmetic: a few vector operations per benchmark and pair (benchmarks/rank_stats.py).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from statistics import NormalDist
from typing import Any

import numpy as np

from oda_sft.eval.stats.questions import stratum
from oda_sft.eval.summary import domain_of

CONFIDENCE = 0.95
Matrix = np.ndarray[Any, np.dtype[np.float64]]


@dataclass(frozen=True)
class Bench:
    """One row's per-question results on one benchmark, over its seeds."""

    strata: tuple[Matrix, ...] | None  # per question set: seeds x questions (repetitions averaged); None: not kept
    questions: int | None  # how many questions (known without per-question results too)


@dataclass
class RowData:
    benches: dict[str, Bench]
    seeds: int  # how many runs the per-question results stand on
    means: dict[str, float | None]  # each benchmark's mean over seeds (0-100), for the binomial term


@dataclass(frozen=True)
class Comparison:
    """A row against the next one down on one metric."""

    difference: float
    separated: bool
    method: str  # "paired", "binomial", "paired+binomial" (some benchmarks each), or "untested"
    low: float | None
    high: float | None
    p_value: float | None
    se: float | None
    seed_spread: bool  # both sides had >= 2 seeds, so the seed term is in
    confidence: float
    questions: int  # the questions the test stood on (over the metric's benchmarks)
    untested: list[str] = field(default_factory=list)  # benchmarks without results or counts


def _strata(entry: Mapping[str, Any]) -> dict[str, Matrix] | None:
    subsets = entry.get("subsets")
    if not isinstance(subsets, dict) or not subsets:
        return None
    grouped: dict[str, list[Matrix]] = {}
    for name, values in subsets.items():
        if not isinstance(values, list):
            return None
        grouped.setdefault(stratum(name), []).append(np.asarray(values, dtype=np.float64))
    out = {}
    for name, reps in grouped.items():
        if len({len(r) for r in reps}) != 1:
            return None
        out[name] = np.mean(reps, axis=0)
    return out


def bench(docs: Sequence[Mapping[str, Any] | None], name: str) -> Bench:
    """A benchmark's results over a row's seeds (each seed's questions.json, None where it has none)."""
    entries = [d.get("benchmarks", {}).get(name) if d else None for d in docs]
    counts = [e.get("questions") for e in entries if isinstance(e, dict)]
    questions = next((c for c in counts if isinstance(c, int) and c > 0), None)
    per_seed = [_strata(e) if isinstance(e, dict) else None for e in entries]
    if not per_seed or any(s is None for s in per_seed):
        return Bench(None, questions)
    first = per_seed[0]
    assert first is not None
    keys = sorted(first)
    if any(s is None or sorted(s) != keys or any(len(s[k]) != len(first[k]) for k in keys) for s in per_seed):
        return Bench(None, questions)
    return Bench(tuple(np.vstack([s[k] for s in per_seed if s is not None]) for k in keys), questions)


def weights(metric: str, benchmarks: Sequence[str], domains: Sequence[str]) -> dict[str, float]:
    """Each benchmark's weight in a metric (they sum to 1), as summary.py averages them."""
    if metric in domains:
        names = [b for b in benchmarks if domain_of(b) == metric]
        return {b: 1 / len(names) for b in names}
    if metric == "overall":
        out: dict[str, float] = {}
        for domain in domains:
            out.update({b: w / len(domains) for b, w in weights(domain, benchmarks, domains).items()})
        return out
    return {metric: 1.0}


def _paired_var(d: Matrix) -> float:
    """Var of the mean of per-question differences d (each in [-1, 1]), as Agresti & Min's adjusted interval
    for matched proportions (Stat. Med. 2005, 24:729-740): 0.5 added to each cell of the matched 2x2 table,
    i.e. pseudo-questions d = +1 and d = -1 (0.5 each) and d = 0 (1). The plain sample variance is 0 when every
    question differs alike (all right against all wrong), which would claim certainty from 36 questions."""
    n = d.size + 2
    mean = float(d.sum()) / n
    return (float(np.square(d).sum()) + 1) / n / n - mean * mean / n


def _question_var(u: Bench | None, lo: Bench | None, pu: float | None, pl: float | None) -> tuple[str, float, int]:
    """A benchmark's share of Var(D) in (0-1)^2, how it was had, and the questions it stood on."""
    if (
        u is not None
        and lo is not None
        and u.strata is not None
        and lo.strata is not None
        and ([m.shape[1] for m in u.strata] == [m.shape[1] for m in lo.strata])
    ):
        total = sum(_paired_var(a.mean(axis=0) - b.mean(axis=0)) for a, b in zip(u.strata, lo.strata, strict=True))
        return "paired", total / len(u.strata) ** 2, sum(m.shape[1] for m in u.strata)
    count = (u.questions if u else None) or (lo.questions if lo else None)
    if count is None or pu is None or pl is None:
        return "untested", 0.0, 0
    p, q = pu / 100, pl / 100
    return "binomial", (p * (1 - p) + q * (1 - q)) / count, count


def _within(row: RowData, w: Mapping[str, float]) -> float:
    """The part of the seeds' variance of the metric that per-question variation over seeds explains."""
    total = 0.0
    for name, weight in w.items():
        found = row.benches.get(name)
        if found is None or found.strata is None or found.strata[0].shape[0] < 2:
            continue
        share = 100 * weight / len(found.strata)
        total += sum(share**2 * float(np.var(m, axis=0, ddof=1).sum()) / m.shape[1] ** 2 for m in found.strata)
    return total


def _seed_var(values: Sequence[float], row: RowData, w: Mapping[str, float]) -> float | None:
    if len(values) < 2:
        return None
    spread = float(np.var(np.asarray(values, dtype=np.float64), ddof=1))
    return max(0.0, spread - _within(row, w)) / len(values)


def compare(
    upper: Sequence[float],
    lower: Sequence[float],
    up: RowData,
    down: RowData,
    w: Mapping[str, float],
    confidence: float = CONFIDENCE,
) -> Comparison:
    """`upper`/`lower`: each side's per-seed values of the metric (0-100); `w`: weights(metric, ...)."""
    diff = float(np.mean(upper)) - float(np.mean(lower))
    kinds: set[str] = set()
    untested: list[str] = []
    var = 0.0
    questions = 0
    for name, weight in w.items():
        kind, part, n = _question_var(up.benches.get(name), down.benches.get(name), up.means.get(name),
                                      down.means.get(name))  # fmt: skip
        if kind == "untested":
            untested.append(name)
        kinds.add(kind)
        var += (100 * weight) ** 2 * part
        questions += n
    seeds = [_seed_var(upper, up, w), _seed_var(lower, down, w)]
    var += sum(s for s in seeds if s is not None)
    seed_spread = all(s is not None for s in seeds)
    if untested:
        return Comparison(diff, False, "untested", None, None, None, None, seed_spread, confidence, questions,
                          untested)  # fmt: skip
    se = math.sqrt(var)
    z = NormalDist().inv_cdf(1 - (1 - confidence) / 2)
    low, high = diff - z * se, diff + z * se
    p = 2 * (1 - NormalDist().cdf(abs(diff) / se)) if se > 0 else (1.0 if diff == 0 else 0.0)
    method = "+".join(k for k in ("paired", "binomial") if k in kinds)
    return Comparison(diff, low > 0 or high < 0, method, low, high, p, se, seed_spread, confidence, questions)


def row_data(docs: Sequence[Mapping[str, Any] | None], benchmarks: Sequence[str],
             means: Mapping[str, float | None]) -> RowData:  # fmt: skip
    """A row's evidence: each seed's questions.json (None where the eval kept none)."""
    return RowData({b: bench(docs, b) for b in benchmarks}, len(docs), dict(means))
