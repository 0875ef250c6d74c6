"""What `rank` says of a group's rows beyond their means: each row against the next one down (paired.py),
on every domain and overall; which seeds each stands on; which runs kept no per-question results; where
answers stopped at the cap. Works on the leaderboard's rows through the few attributes it reads."""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from typing import Any, Protocol

from oda_sft.eval.stats import paired, questions
from oda_sft.eval.stats.paired import Comparison


class _Run(Protocol):
    @property
    def seed(self) -> int | None: ...
    @property
    def record(self) -> dict[str, Any]: ...


class _Stat(Protocol):
    @property
    def values(self) -> tuple[float, ...]: ...
    @property
    def mean(self) -> float | None: ...


class _Row(Protocol):
    label: str
    vs_next: dict[str, Comparison]
    gap: Comparison | None
    per_question: bool
    cut: dict[str, float]

    @property
    def runs(self) -> Sequence[_Run]: ...
    @property
    def seeds(self) -> list[int]: ...
    def stat(self, metric: str) -> _Stat: ...


def _cut(runs: Sequence[_Run], threshold: float) -> dict[str, float]:
    out: dict[str, float] = {}
    for run in runs:
        found = run.record.get("truncation")
        for name, t in found.items() if isinstance(found, dict) else []:
            share = t.get("share_at_cap") if isinstance(t, dict) else None
            if isinstance(share, int | float) and share > threshold:
                out[name] = max(out.get(name, 0.0), float(share))
    return out


def annotate(rows: Sequence[_Row], ranked: Sequence[_Row], benchmarks: Sequence[str], domains: Sequence[str],
             by: str, confidence: float, cut_share: float = questions.CUT_SHARE) -> list[tuple[str, str]]:  # fmt: skip
    """Fill each row's vs_next, gap, per_question and cut; returns the group's notes (subject, reason)."""
    metrics = [*domains, "overall"]
    data = {}
    notes: list[tuple[str, str]] = []
    for row in rows:
        docs = [questions.load(r.record) for r in row.runs]
        row.per_question = all(d is not None for d in docs)
        row.cut = _cut(row.runs, cut_share)
        means = {b: row.stat(b).mean for b in benchmarks}
        data[id(row)] = paired.row_data(docs, benchmarks, means)
        if not row.per_question:
            old = [str(r.seed) for r, d in zip(row.runs, docs, strict=True) if d is None]
            why = (f"seed(s) {', '.join(old)} kept no per-question results (evaluated before oda-sft kept them): "
                   "compared by each benchmark's question count (binomial), where known")  # fmt: skip
            notes.append((row.label, why))
        if row.cut:
            what = ", ".join(f"{b} {100 * s:.0f}%" for b, s in row.cut.items())
            notes.append((row.label, f"answers stopped at max_out_len ({what} of the answers, in the worst seed): "
                          "a cut answer scores as wrong"))  # fmt: skip
    for upper, lower in itertools.pairwise(ranked):
        for metric in metrics:
            if upper.stat(metric).mean is None or lower.stat(metric).mean is None:
                continue
            upper.vs_next[metric] = paired.compare(
                upper.stat(metric).values, lower.stat(metric).values, data[id(upper)], data[id(lower)],
                paired.weights(metric, benchmarks, domains), confidence,
            )  # fmt: skip
        upper.gap = upper.vs_next.get(by)
    seed_sets = {tuple(r.seeds) for r in rows}
    if len(seed_sets) > 1:
        shown = "; ".join(f"{r.label}: {', '.join(map(str, r.seeds))}" for r in rows)
        notes.append(("seeds", f"the rows stand on different seeds ({shown}): a comparison across them mixes seeds"))
    return notes
