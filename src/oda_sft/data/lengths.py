"""Measure a dataset's token lengths and decide standard or long-CoT, fast or exactly.

The fast path validates every record and bounds its length from bytes (token_counter.py); only
samples whose bound exceeds the threshold are tokenized, largest batches first, in batches (the
tokenizers library spreads a batch over all cores), and the work stops once the decision cannot
change. --exact tokenizes every sample for full statistics.
"""

from __future__ import annotations

import array
import math
import random
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from oda_sft.catalog import Mode
from oda_sft.data import alpaca
from oda_sft.data.alpaca import Columns, ProblemLog
from oda_sft.data.jsonstream import JsonStream, read_span
from oda_sft.data.length_rule import Rule
from oda_sft.data.token_counter import LengthCounter, Turns
from oda_sft.errors import DatasetError

LONG_CUTOFF = 32768  # the long config's cutoff_len: longer samples are truncated even there
BATCH_BYTES = 4 << 20
BATCH_MAX = 2048
MIN_BATCH = 32  # below this a batch no longer keeps every core busy
PROBE = 16  # candidates tokenized first, at random, to estimate tokens per byte
MARGIN = 1.25  # predicted length over threshold * MARGIN counts as likely long

Progress = Callable[[str, int, int], None]  # (phase, done, total) for a progress bar


@dataclass
class LengthReport:
    file: Path
    sha256: str
    size: int
    tokenizer: str
    rule: Rule
    count: int
    exact: bool  # every sample tokenized: stats and counts are exact
    measured: int  # samples tokenized
    over: int  # samples known to exceed the threshold
    over_upper: int  # at most this many exceed it (== over when every candidate was measured)
    over_cutoff: int | None  # samples over 32768 tokens (exact mode only)
    stats: dict[str, float] | None
    mode: Mode
    reason: str
    seconds: float
    stopped_early: bool = False
    notes: list[str] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        return {
            "file": str(self.file),
            "sha256": self.sha256,
            "bytes": self.size,
            "tokenizer": self.tokenizer,
            "template": "default",
            "rule": self.rule.as_json(),
            "count": self.count,
            "exact": self.exact,
            "measured": self.measured,
            "over_threshold": self.over if self.over == self.over_upper else None,
            "over_threshold_at_least": self.over,
            "over_threshold_at_most": self.over_upper,
            "over_long_cutoff": self.over_cutoff,
            "stats": self.stats,
            "mode": self.mode,
            "reason": self.reason,
            "stopped_early": self.stopped_early,
            "seconds": round(self.seconds, 3),
        }

    def cache_record(self, measured_at: str) -> dict[str, Any]:
        """What dataset_info.json keeps for this analysis."""
        record = {k: v for k, v in self.as_json().items() if k not in ("file", "seconds")}
        record["measured_at"] = measured_at
        return record


def _percent(part: int, whole: int) -> str:
    value = 100 * part / whole
    return f"{value:.2f}%" if 0 < value < 0.1 else f"{value:.1f}%"


def percentile(sorted_values: Sequence[int], q: float) -> int:
    """Nearest-rank percentile: a length some sample really has."""
    rank = max(1, math.ceil(q / 100 * len(sorted_values)))
    return sorted_values[rank - 1]


def summarize(lengths: Sequence[int]) -> dict[str, float]:
    ordered = sorted(lengths)
    return {
        "mean": round(sum(ordered) / len(ordered), 1),
        "p50": percentile(ordered, 50),
        "p90": percentile(ordered, 90),
        "p99": percentile(ordered, 99),
        "max": ordered[-1],
    }


class _Validator:
    """Collects Alpaca problems while streaming; raises once the stream ends."""

    def __init__(self, label: str, columns: Columns, fix: str, shown: int) -> None:
        self.label, self.columns, self.fix = label, columns, fix
        self.log = ProblemLog(shown=shown)

    def ok(self, index: int, value: Any) -> bool:
        problems = alpaca.check(index, value, self.columns)
        self.log.add(problems)
        return not problems

    def finish(self, count: int) -> None:
        if self.log.bad_records:
            raise alpaca.invalid_error(self.label, self.log, count, self.fix)
        if count == 0:
            raise DatasetError(f"{self.label} holds no records: an empty dataset cannot be trained on; add records")


def _batches(items: Iterator[tuple[int, Turns, int]]) -> Iterator[list[tuple[int, Turns]]]:
    """Group (index, turns, bytes) into batches of about BATCH_BYTES, so memory stays flat."""
    batch: list[tuple[int, Turns]] = []
    size = 0
    for index, turns, nbytes in items:
        batch.append((index, turns))
        size += nbytes
        if size >= BATCH_BYTES or len(batch) >= BATCH_MAX:
            yield batch
            batch, size = [], 0
    if batch:
        yield batch


def measure_file(
    path: Path,
    counter: LengthCounter,
    rule: Rule,
    columns: Columns,
    *,
    exact: bool = False,
    label: str = "",
    fix: str = "fix these records",
    shown: int = alpaca.DEFAULT_SHOWN,
    progress: Progress | None = None,
) -> LengthReport:
    """Validate and measure an Alpaca JSON/JSONL file; exact=False stops once the decision is settled."""
    started = time.perf_counter()
    label = label or str(path)
    if exact or not counter.byte_level:
        report = _measure_all(path, counter, rule, columns, label, fix, shown, progress)
        if not counter.byte_level:
            report.notes.append(f"{counter.ref.label} is not a byte-level BPE tokenizer: every sample was tokenized")
    else:
        report = _measure_fast(path, counter, rule, columns, label, fix, shown, progress)
    report.seconds = time.perf_counter() - started
    return report


def _measure_all(
    path: Path,
    counter: LengthCounter,
    rule: Rule,
    columns: Columns,
    label: str,
    fix: str,
    shown: int,
    progress: Progress | None,
) -> LengthReport:
    stream = JsonStream(path)
    validator = _Validator(label, columns, fix, shown)
    lengths = array.array("q")
    file_size = path.stat().st_size
    count = 0
    position = 0

    def samples() -> Iterator[tuple[int, Turns, int]]:
        nonlocal count, position
        for rec in stream:
            count += 1
            position = rec.end
            # After the first bad record only validation goes on: the measurement will fail anyway.
            if validator.ok(rec.index, rec.value) and not validator.log.bad_records:
                yield rec.index, alpaca.turns(rec.value, columns), rec.end - rec.start

    for batch in _batches(samples()):
        lengths.extend(counter.lengths([t for _, t in batch]))
        if progress is not None:
            progress("tokenizing", position, file_size)
    validator.finish(count)
    over = sum(1 for n in lengths if n > rule.threshold)
    over_cutoff = sum(1 for n in lengths if n > LONG_CUTOFF)
    stats = summarize(lengths)
    mode: Mode = "long" if rule.is_long(over, len(lengths)) else "standard"
    verdict = "more than" if mode == "long" else "not more than"
    reason = (
        f"{_percent(over, len(lengths))} of {len(lengths):,} samples exceed {rule.threshold:,} tokens "
        f"(p99 {int(stats['p99']):,}), {verdict} {rule.percent}%"
    )
    return LengthReport(
        path, stream.sha256, stream.size, counter.ref.ident, rule, len(lengths), True, len(lengths),
        over, over, over_cutoff, stats, mode, reason, 0.0,
    )  # fmt: skip


def _measure_fast(
    path: Path,
    counter: LengthCounter,
    rule: Rule,
    columns: Columns,
    label: str,
    fix: str,
    shown: int,
    progress: Progress | None,
) -> LengthReport:
    # Pass 1: validate every record and bound its length from bytes; keep only numbers.
    stream = JsonStream(path)
    validator = _Validator(label, columns, fix, shown)
    bounds = array.array("q")
    starts = array.array("q")
    ends = array.array("q")
    count = 0
    file_size = path.stat().st_size
    for rec in stream:
        count += 1
        if progress is not None and count % 4096 == 0:
            progress("reading", rec.end, file_size)
        if not validator.ok(rec.index, rec.value) or validator.log.bad_records:
            continue
        system, pairs = alpaca.turns(rec.value, columns)
        value = rec.value
        instruction = value.get(columns.instruction) if columns.instruction else None
        input_ = value.get(columns.input) if columns.input else None
        bound = counter.bound(
            system,
            pairs,
            instruction if isinstance(instruction, str) else "",
            input_ if isinstance(input_, str) else "",
        )
        if bound > rule.threshold:
            bounds.append(bound)
            starts.append(rec.start)
            ends.append(rec.end)
    validator.finish(count)

    # Pass 2: tokenize candidates until the decision is settled. The count is exact whatever the
    # order; the order only decides how much gets tokenized. A small random probe estimates tokens
    # per byte; then, if the data looks long, the smallest samples predicted to exceed go first
    # (cheapest proof of "long"), else everything smallest first (the largest, costliest ones are
    # those the rule allows to stay unmeasured).
    allowed = rule.allowed(count)
    over = 0
    measured = 0
    remaining = len(bounds)
    rng = random.Random(0)
    # The probe comes from the smaller half: tokens per byte hardly depends on size, cost does.
    by_size = sorted(range(len(bounds)), key=bounds.__getitem__)
    smaller = by_size[: max(1, len(by_size) // 2)]
    probe = sorted(rng.sample(smaller, min(PROBE, len(smaller)))) if smaller else []
    with path.open("rb") as handle:

        def measure(ids: list[int]) -> tuple[int, int]:
            nonlocal over, measured, remaining
            turns = [alpaca.turns(read_span(handle, starts[i], ends[i]), columns) for i in sorted(ids)]
            found = counter.lengths(turns)
            over += sum(1 for n in found if n > rule.threshold)
            measured += len(ids)
            remaining -= len(ids)
            if progress is not None:
                progress("tokenizing", measured, len(bounds))
            return sum(found), sum(bounds[i] for i in ids)

        def settled() -> bool:
            return remaining == 0 or over > allowed or over + remaining <= allowed

        order: list[int] = []
        if probe and not settled():
            tokens, nbytes = measure(probe)
            ratio = tokens / max(nbytes, 1)
            probed = set(probe)
            rest = [i for i in by_size if i not in probed]
            likely = [i for i in rest if bounds[i] * ratio > rule.threshold * MARGIN]
            if over + len(likely) > allowed:
                chosen = set(likely)
                order = likely + [i for i in rest if i not in chosen]
            else:
                order = rest
        position = 0
        while not settled():
            # No bigger than what could settle it: more samples over, or fewer left unmeasured.
            need = min(allowed + 1 - over, remaining - (allowed - over))
            cap = min(BATCH_MAX, max(MIN_BATCH, need))
            batch_ids: list[int] = []
            size = 0
            while position < len(order) and size < BATCH_BYTES and len(batch_ids) < cap:
                i = order[position]
                batch_ids.append(i)
                size += ends[i] - starts[i]
                position += 1
            measure(batch_ids)
    stopped = remaining > 0
    upper = over + remaining
    long = rule.is_long(over, count)
    mode: Mode = "long" if long else "standard"
    early = " (stopped early: --exact gives full statistics)" if stopped else ""
    if long:
        amount = f"at least {over:,}" if stopped else f"{over:,}"
        reason = (
            f"{amount} of {count:,} samples ({_percent(over, count)}) exceed {rule.threshold:,} tokens, "
            f"more than {rule.percent}%{early}"
        )
    elif not bounds:
        reason = (
            f"0 of {count:,} samples exceed {rule.threshold:,} tokens (each renders to at most "
            f"{rule.threshold:,} bytes, so none needed tokenizing), not more than {rule.percent}%"
        )
    else:
        amount = f"at most {upper:,}" if stopped else f"{over:,}"
        reason = (
            f"{amount} of {count:,} samples ({_percent(upper, count)}) exceed {rule.threshold:,} tokens, "
            f"not more than {rule.percent}%{early}"
        )
    return LengthReport(
        path, stream.sha256, stream.size, counter.ref.ident, rule, count, False, measured,
        over, upper, None, None, mode, reason, 0.0, stopped_early=stopped,
    )  # fmt: skip
