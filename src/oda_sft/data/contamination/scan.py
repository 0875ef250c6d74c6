"""Scan a dataset file for overlap, streaming, on every core, in bounded memory.

A file with one record per line (JSON Lines, or the JSON list `oda-sft data add` writes) is cut into
byte ranges at line ends and each range is parsed and scanned by a worker process; memory is a few
ranges, whatever the file's size. Any other layout (a pretty-printed list) is streamed record by
record by JsonStream in this process, which also names the place of malformed JSON.
"""

from __future__ import annotations

import json
import multiprocessing
import os
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from oda_sft.data.contamination.method import Index, Match, match_batch, sample_texts
from oda_sft.data.formats.alpaca import Columns
from oda_sft.data.formats.jsonstream import MAX_RECORD_BYTES, JsonStream

CHUNK = 4 << 20  # bytes per task: a few of them in memory per worker
_PIECE = 1 << 16
Progress = Callable[[int, int], None]  # (bytes done, bytes in all)


@dataclass(frozen=True)
class Scan:
    count: int  # samples read
    matches: list[Match]  # (sample, benchmark, item), sample 0-based in the file's order
    parallel: bool  # cut into ranges (True) or streamed in one process


class _NotOneRecordPerLine(Exception):
    pass


def _ranges(path: Path, size: int, chunk: int) -> list[tuple[int, int]]:
    """[start, end) ranges that end just after a newline (or at the end of the file); a few hundred for a
    gigabyte. Raises _NotOneRecordPerLine when a line is longer than a record may be."""
    out: list[tuple[int, int]] = []
    with path.open("rb") as handle:
        start = 0
        while start < size:
            end = start + chunk
            if end < size:
                handle.seek(end)
                while True:
                    piece = handle.read(_PIECE)
                    at = piece.find(b"\n")
                    if at >= 0 or not piece:
                        end = end + at + 1 if at >= 0 else size
                        break
                    end += len(piece)
                    if end - start > chunk + MAX_RECORD_BYTES:
                        raise _NotOneRecordPerLine
            out.append((start, min(end, size)))
            start = end
    return out


def _records(data: bytes) -> Iterator[Any]:
    for line in data.split(b"\n"):
        text = line.strip().rstrip(b",")
        if text in (b"", b"[", b"]"):
            continue
        if text.startswith(b"[{"):
            text = text[1:]
        if text.endswith(b"}]"):
            text = text[:-1]
        try:
            record = json.loads(text)
        except ValueError:
            raise _NotOneRecordPerLine from None
        if not isinstance(record, dict):
            raise _NotOneRecordPerLine
        yield record


_STATE: dict[str, Any] = {}


def _scan_range(span: tuple[int, int]) -> tuple[int, list[Match]] | None:
    """(samples, matches numbered from 0 within the range); None when the range is not one record a line."""
    start, end = span
    with open(_STATE["path"], "rb") as handle:
        handle.seek(start)
        data = handle.read(end - start)
    columns = _STATE["columns"]
    try:
        samples = [sample_texts(r, columns) for r in _records(data)]
    except _NotOneRecordPerLine:
        return None
    return match_batch(_STATE["index"], 0, samples)


def _workers() -> int:
    return max(1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1)


def scan(
    path: Path,
    columns: Columns,
    benchmarks: Mapping[str, Sequence[str]],
    *,
    workers: int | None = None,
    chunk: int = CHUNK,
    progress: Progress | None = None,
) -> Scan:
    size = path.stat().st_size
    count = workers if workers is not None else _workers()
    index = Index.build(benchmarks)
    if count > 1 and size > chunk:
        found = _parallel(path, columns, index, count, chunk, size, progress)
        if found is not None:
            return found
    return _serial(path, columns, index, chunk, size, progress)


def _parallel(
    path: Path,
    columns: Columns,
    index: Index,
    workers: int,
    chunk: int,
    size: int,
    progress: Progress | None,
) -> Scan | None:
    try:
        ranges = _ranges(path, size, chunk)
    except _NotOneRecordPerLine:
        return None
    if "fork" not in multiprocessing.get_all_start_methods():
        return None  # spawn would run `python -m oda_sft`'s main again in every worker
    # Forked: the workers share the index built here, and hash()'s per-process salt it was built with.
    context = multiprocessing.get_context("fork")
    total = 0
    matches: list[Match] = []
    _STATE.update(index=index, columns=columns, path=str(path))
    try:
        with context.Pool(workers) as pool:
            for (_start, end), result in zip(ranges, pool.imap(_scan_range, ranges), strict=True):
                if result is None:
                    return None
                n, found = result
                matches += [(total + s, b, i) for s, b, i in found]
                total += n
                if progress is not None:
                    progress(end, size)
    finally:
        _STATE.clear()
    return Scan(total, matches, parallel=True)


def _serial(
    path: Path,
    columns: Columns,
    index: Index,
    chunk: int,
    size: int,
    progress: Progress | None,
) -> Scan:
    matches: list[Match] = []
    batch: list[tuple[str, list[str]]] = []
    first = 0
    held = 0
    stream = JsonStream(path)
    for record in stream:
        batch.append(sample_texts(record.value, columns))
        held += record.end - record.start
        if held >= chunk:
            n, found = match_batch(index, first, batch)
            matches += found
            first, batch, held = first + n, [], 0
            if progress is not None:
                progress(record.end, size)
    n, found = match_batch(index, first, batch)
    matches += found
    if progress is not None:
        progress(size, size)
    return Scan(first + n, matches, parallel=False)
