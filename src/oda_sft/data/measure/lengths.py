"""Measure a dataset's token lengths and decide standard or long-CoT, fast or exactly.

The fast path validates every record and bounds its length from bytes (token_counter.py): from
the record's JSON size first, and from its text only where that size does not settle it. A sample
with more text than the threshold spelled in the tokenizer's longest token is over without
tokenizing. Only the samples left are tokenized, in batches (the tokenizers library spreads a batch
over all cores), and the work stops once the decision cannot change. --exact tokenizes every
sample for full statistics. Whichever way, the decision is the same.

Memory stays under MEMORY_CAP whatever the file holds. Tokenizing takes about 150 bytes of memory
per byte of text, so batches hold at most BATCH_BYTES of text, and a sample with more than
TOKENIZE_CAP bytes of text is never tokenized: its length is bounded from its bytes and the
tokenizer's longest token instead (a 1 MiB sample has at least 4,096 tokens with any vocabulary
whose tokens are under 256 bytes), and the report names it with its index and size. A record
larger than jsonstream.MAX_RECORD_BYTES is refused while reading.

Both passes read one open file: a file replaced in between is still measured whole, as the bytes
hashed in pass 1; a file written to in place in between is a one-line error.
"""

from __future__ import annotations

import array
import functools
import os
import random
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from oda_sft.data import files
from oda_sft.data.formats import alpaca
from oda_sft.data.formats.alpaca import Columns, ProblemLog
from oda_sft.data.formats.jsonstream import READ_FIX, JsonStream, RawRecord, read_span
from oda_sft.data.measure.length_rule import Rule
from oda_sft.data.measure.report import LengthReport as LengthReport  # measure_file's result, for its callers
from oda_sft.data.measure.report import Untokenized, percent, summarize
from oda_sft.data.measure.token_counter import LengthCounter, Turns
from oda_sft.errors import DatasetError
from oda_sft.presets import Mode

LONG_CUTOFF = 32768  # the long config's cutoff_len: longer samples are truncated even there
MEMORY_CAP = "1 GiB"  # what measuring stays under (tests/integration/test_data_memory.py measures it)
TOKENIZE_CAP = 1 << 20  # bytes of one sample's text; larger samples are bounded, not tokenized
BATCH_BYTES = 1 << 20
BATCH_MAX = 2048
MIN_BATCH = 32  # below this a batch no longer keeps every core busy
PROBE = 16  # candidates tokenized first, at random, to estimate tokens per byte
MARGIN = 1.25  # predicted length over threshold * MARGIN counts as likely long

Progress = Callable[[str, int, int], None]  # (phase, done, total) for a progress bar


@dataclass(frozen=True)
class _Job:
    """One measurement: the file, how to read and count it, and how to report on it."""

    path: Path
    counter: LengthCounter
    rule: Rule
    columns: Columns
    label: str
    fix: str
    shown: int
    progress: Progress | None

    def tick(self, phase: str, done: int, total: int) -> None:
        if self.progress is not None:
            self.progress(phase, done, total)

    @functools.cached_property
    def distinct_keys(self) -> bool:
        c = self.columns
        keys = [k for k in (c.instruction, c.input, c.output, c.system, c.history) if k]
        return len(set(keys)) == len(keys)

    def surely_within(self, value: dict[str, Any], json_bytes: int) -> bool:
        """The sample cannot exceed the threshold, as its JSON size alone shows: its text is not read."""
        if not self.distinct_keys:  # one string read as two fields counts twice in `bound`
            return False
        history = value.get(self.columns.history) if self.columns.history else None
        quick = self.counter.size_bound(json_bytes, 1 + (len(history) if isinstance(history, list) else 0))
        return quick is not None and quick <= self.rule.threshold

    def bound(self, value: dict[str, Any]) -> tuple[int, int, bool]:
        """(the sample's byte bound, its turns, whether it has a system prompt), without tokenizing."""
        system, pairs = alpaca.turns(value, self.columns)
        columns = self.columns
        instruction = value.get(columns.instruction) if columns.instruction else None
        input_ = value.get(columns.input) if columns.input else None
        bound = self.counter.bound(
            system,
            pairs,
            instruction if isinstance(instruction, str) else "",
            input_ if isinstance(input_, str) else "",
        )
        return bound, len(pairs), bool(system)

    def untokenized(self, index: int, bound: int, turns: int, system: bool) -> Untokenized | None:
        """The sample when its text is too large to tokenize within the memory cap; else None."""
        text_bytes = bound - self.counter.fixed(turns, system)
        if text_bytes <= TOKENIZE_CAP:
            return None
        return Untokenized(index, text_bytes, self.counter.at_least(bound, turns, system))


class _Validator:
    """Collects Alpaca problems while streaming; raises once the stream ends."""

    def __init__(self, job: _Job) -> None:
        self.job = job
        self.log = ProblemLog(shown=job.shown)

    def ok(self, rec: RawRecord) -> bool:
        problems = alpaca.check(rec.index, rec.value, self.job.columns, surrogate_free=rec.surrogate_free)
        self.log.add(problems)
        return not problems

    def finish(self, count: int) -> None:
        if self.log.bad_records:
            raise alpaca.invalid_error(self.job.label, self.log, count, self.job.fix)
        if count == 0:
            raise DatasetError(f"{self.job.label} holds no records: an empty dataset cannot be trained on; add records")


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


def _untokenized_notes(job: _Job, untokenized: list[Untokenized]) -> list[str]:
    if not untokenized:
        return []
    shown = ", ".join(u.describe() for u in untokenized[: job.shown])
    more = f" and {len(untokenized) - job.shown:,} more" if len(untokenized) > job.shown else ""
    return [
        f"{len(untokenized):,} sample(s) with more than {TOKENIZE_CAP >> 20} MiB of text were not tokenized, "
        f"to keep measuring under {MEMORY_CAP} of memory: {shown}{more}; each counts as over "
        f"{job.rule.threshold:,} tokens when its lower bound says so"
    ]


def _undecidable(job: _Job, unknown: list[Untokenized]) -> DatasetError:
    listed = ", ".join(u.describe() for u in unknown[: job.shown])
    return DatasetError(
        f"{job.label}: the decision depends on {len(unknown):,} sample(s) too large to tokenize within "
        f"{MEMORY_CAP} of memory, whose length could be under or over {job.rule.threshold:,} tokens ({listed}): "
        "split or drop them, or pass --mode standard or --mode long"
    )


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
    job = _Job(path, counter, rule, columns, label or str(path), fix, shown, progress)
    with files.open_regular(path, "data file", READ_FIX) as handle:
        before = os.fstat(handle.fileno())
        try:
            measure = _measure_all if exact or not counter.byte_level else _measure_fast
            report = measure(job, handle)
        except (ValueError, UnicodeDecodeError) as exc:  # pass 2 read something pass 1 did not
            raise _changed(path, before, handle) or exc from None
        changed = _changed(path, before, handle)
        if changed is not None:
            raise changed
    if not counter.byte_level:
        report.notes.append(f"{counter.ref.label} is not a byte-level BPE tokenizer: every sample was tokenized")
    report.seconds = time.perf_counter() - started
    return report


def _changed(path: Path, before: os.stat_result, handle: IO[bytes]) -> DatasetError | None:
    after = os.fstat(handle.fileno())
    same = (after.st_size, after.st_mtime_ns) == (before.st_size, before.st_mtime_ns)
    # Replaced by a rename, the file this handle reads lost its last name: that moves its ctime, not its bytes.
    if same and (after.st_ctime_ns == before.st_ctime_ns or after.st_nlink == 0):
        return None
    return DatasetError(
        f"{path} was written to while it was being measured: run the command again once nothing writes to it"
    )


def _decide(job: _Job, over: int, unknown: list[Untokenized], count: int) -> Mode:
    """The mode from what is known, or an error when samples too large to tokenize leave it open."""
    if job.rule.is_long(over, count):
        return "long"
    if not job.rule.is_long(over + len(unknown), count):
        return "standard"
    raise _undecidable(job, unknown)


def _measure_all(job: _Job, handle: IO[bytes]) -> LengthReport:
    rule = job.rule
    stream = JsonStream(job.path, handle=handle)
    validator = _Validator(job)
    lengths = array.array("q")
    untokenized: list[Untokenized] = []
    file_size = os.fstat(handle.fileno()).st_size
    count = 0
    position = 0

    def samples() -> Iterator[tuple[int, Turns, int]]:
        nonlocal count, position
        for rec in stream:
            count += 1
            position = rec.end
            # After the first bad record only validation goes on: the measurement will fail anyway.
            if not validator.ok(rec) or validator.log.bad_records:
                continue
            big = job.untokenized(rec.index, *job.bound(rec.value))
            if big is not None:
                untokenized.append(big)
                continue
            yield rec.index, alpaca.turns(rec.value, job.columns), rec.end - rec.start

    for batch in _batches(samples()):
        lengths.extend(job.counter.lengths([t for _, t in batch]))
        job.tick("tokenizing", position, file_size)
    validator.finish(count)
    over = sum(1 for n in lengths if n > rule.threshold) + sum(1 for u in untokenized if u.at_least > rule.threshold)
    unknown = [u for u in untokenized if u.at_least <= rule.threshold]
    over_cutoff = sum(1 for n in lengths if n > LONG_CUTOFF) + sum(1 for u in untokenized if u.at_least > LONG_CUTOFF)
    stats = summarize(lengths) if lengths else None
    mode = _decide(job, over, unknown, count)
    verdict = "more than" if mode == "long" else "not more than"
    p99 = f" (p99 {int(stats['p99']):,})" if stats else ""
    amount = f"{percent(over, count)} of {count:,} samples"
    reason = f"{amount} exceed {rule.threshold:,} tokens{p99}, {verdict} {rule.percent}%"
    return LengthReport(
        job.path, stream.sha256, stream.size, job.counter.ref.ident, rule, count, not untokenized, len(lengths),
        over, over + len(unknown), over_cutoff, stats, mode, reason, 0.0,
        notes=_untokenized_notes(job, untokenized), untokenized=untokenized,
    )  # fmt: skip


def _measure_fast(job: _Job, handle: IO[bytes]) -> LengthReport:
    rule, counter = job.rule, job.counter
    # Pass 1: validate every record and bound its length from bytes; keep only numbers.
    stream = JsonStream(job.path, handle=handle)
    validator = _Validator(job)
    bounds = array.array("q")
    starts = array.array("q")
    ends = array.array("q")
    untokenized: list[Untokenized] = []
    count = sized = 0
    file_size = os.fstat(handle.fileno()).st_size
    for rec in stream:
        count += 1
        if count % 4096 == 0:
            job.tick("reading", rec.end, file_size)
        if not validator.ok(rec) or validator.log.bad_records or job.surely_within(rec.value, rec.end - rec.start):
            continue
        bound, turns, system = job.bound(rec.value)
        if bound <= rule.threshold:
            continue
        big = job.untokenized(rec.index, bound, turns, system)
        if big is not None:
            untokenized.append(big)
            continue
        if counter.at_least(bound, turns, system) > rule.threshold:
            sized += 1  # over by its size alone: more text than the threshold spelled in the longest tokens
            continue
        bounds.append(bound)
        starts.append(rec.start)
        ends.append(rec.end)
    validator.finish(count)
    unknown = [u for u in untokenized if u.at_least <= rule.threshold]

    # Pass 2: tokenize candidates until the decision is settled. The count is exact whatever the
    # order; the order only decides how much gets tokenized. A small random probe estimates tokens
    # per byte; then, if the data looks long, the smallest samples predicted to exceed go first
    # (cheapest proof of "long"), else everything smallest first (the largest, costliest ones are
    # those the rule allows to stay unmeasured).
    allowed = rule.allowed(count)
    over = len(untokenized) - len(unknown) + sized
    measured = 0
    remaining = len(bounds)
    rng = random.Random(0)
    # The probe comes from the smaller half: tokens per byte hardly depends on size, cost does.
    by_size = sorted(range(len(bounds)), key=bounds.__getitem__)
    smaller = by_size[: max(1, len(by_size) // 2)]
    probe = sorted(rng.sample(smaller, min(PROBE, len(smaller)))) if smaller else []

    def measure(ids: list[int]) -> tuple[int, int]:
        nonlocal over, measured, remaining
        turns = [alpaca.turns(read_span(handle, starts[i], ends[i]), job.columns) for i in sorted(ids)]
        found = counter.lengths(turns)
        over += sum(1 for n in found if n > rule.threshold)
        measured += len(ids)
        remaining -= len(ids)
        job.tick("tokenizing", measured, len(bounds))
        return sum(found), sum(bounds[i] for i in ids)

    def settled() -> bool:
        return remaining == 0 or over > allowed or over + remaining + len(unknown) <= allowed

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
    else:
        order = by_size
    position = 0
    while not settled():
        # No bigger than what could settle it: more samples over, or fewer left unmeasured.
        need = min(allowed + 1 - over, remaining + len(unknown) - (allowed - over))
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
    upper = over + remaining + len(unknown)
    mode = _decide(job, over, unknown, count)
    early = " (stopped early: --exact gives full statistics)" if stopped else ""
    if mode == "long":
        amount = f"at least {over:,}" if stopped or unknown else f"{over:,}"
        reason = (
            f"{amount} of {count:,} samples ({percent(over, count)}) exceed {rule.threshold:,} tokens, "
            f"more than {rule.percent}%{early}"
        )
    elif not bounds and not untokenized and not sized:
        reason = (
            f"0 of {count:,} samples exceed {rule.threshold:,} tokens (each renders to at most "
            f"{rule.threshold:,} bytes, so none needed tokenizing), not more than {rule.percent}%"
        )
    else:
        amount = f"at most {upper:,}" if upper != over else f"{over:,}"
        reason = (
            f"{amount} of {count:,} samples ({percent(upper, count)}) exceed {rule.threshold:,} tokens, "
            f"not more than {rule.percent}%{early}"
        )
    notes = _untokenized_notes(job, untokenized)
    if sized:
        notes.append(
            f"{sized:,} sample(s) exceed {rule.threshold:,} tokens by their size alone (more bytes of text than "
            f"{rule.threshold:,} of the tokenizer's longest token, {counter.longest_token} bytes): not tokenized"
        )
    return LengthReport(
        job.path, stream.sha256, stream.size, counter.ref.ident, rule, count, False, measured,
        over, upper, None, None, mode, reason, 0.0, stopped_early=stopped, notes=notes, untokenized=untokenized,
    )  # fmt: skip
