"""Carry out a catalog dataset's declared conversion (catalog.Conversion) on the files fetched for it.

Rows are read as a stream (Parquet in record batches of the needed columns only, JSON/JSON Lines and
CSV row by row), so a multi-GB dataset never sits in memory. A row yields one record, or one per response
column (DeepMath's three R1 solutions). A record the declaration leaves out (no correct candidate, an empty
prompt or answer) is counted under its reason; a kept one worth knowing about (a trace cut off before its
closing tag, which ODA trained on too) is counted as well. A missing column is a schema change upstream and
stops the conversion with one line.
"""

from __future__ import annotations

import csv
import re
import sys
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from oda_sft.data.formats.convert import Unconvertible, convert_chat
from oda_sft.data.formats.jsonstream import JsonStream
from oda_sft.data.sources.oda import plain
from oda_sft.datasets_catalog import Conversion
from oda_sft.errors import DatasetError

Record = dict[str, Any]
DATA_SUFFIXES = (".parquet", ".jsonl", ".json", ".csv")
_BATCH = 256  # Parquet rows per batch: long-CoT rows are large, keep a batch to a few MB
_INDEX = re.compile(r"\[\d+\]")


@dataclass
class Tally:
    """What a conversion pass read, kept and left out, and the first record it kept (the preview)."""

    rows: int = 0  # rows read (a row yields `Conversion.per_row` records)
    kept: int = 0
    dropped: dict[str, int] = field(default_factory=dict)  # left out, by reason
    noted: dict[str, int] = field(default_factory=dict)  # kept, and counted by what is worth knowing
    first: Record | None = None

    def drop(self, reason: str) -> None:
        _count(self.dropped, reason)

    def note(self, reason: str) -> None:
        _count(self.noted, reason)


def _count(counts: dict[str, int], reason: str) -> None:
    reason = _INDEX.sub("[]", reason)  # one count per kind, not per turn index
    counts[reason] = counts.get(reason, 0) + 1


@dataclass(frozen=True)
class Outcome:
    """One record a row yields, or why the declaration leaves it out; and what is counted about it."""

    record: Record | None
    reason: str = ""
    notes: tuple[str, ...] = ()


def required_columns(conv: Conversion) -> list[str]:
    """Columns that must exist (for chat data, `prompt` or one of its other names)."""
    cols = [] if conv.chat else [conv.prompt]
    if conv.pick_from:
        cols += [conv.pick_from, *conv.pick_any, *conv.prefer_all]
    else:
        cols += list(conv.responses) or ([conv.response] if conv.response else [])
    return cols


def _wanted(conv: Conversion) -> list[str]:
    prompt_names = [conv.prompt, *conv.also] if conv.chat else [conv.prompt]
    optional = [conv.system_column] if conv.system_column else []
    return list(dict.fromkeys([*prompt_names, *required_columns(conv), *optional]))


def check_columns(conv: Conversion, columns: Sequence[str], where: str, name: str) -> None:
    """Stop with one line when the data lacks a declared column: upstream changed its schema."""
    have = set(columns)
    missing = [c for c in required_columns(conv) if c not in have]
    if conv.chat and not ({conv.prompt, *conv.also} & have):
        missing.insert(0, conv.prompt)
    if missing:
        shown = ", ".join(sorted(have)[:15]) or "none"
        raise DatasetError(
            f"{name}: {where} has no column {', '.join(repr(m) for m in missing)} (it has: {shown}); the "
            "upstream schema differs from the declared conversion: pin the revision it was declared for with "
            "--revision, or update the catalog's conversion"
        )


def _text(value: Any) -> str | None:
    if isinstance(value, str):
        return value
    if isinstance(value, list) and all(isinstance(p, dict) and p.get("type") == "text" for p in value):
        return "".join(str(p.get("text", "")) for p in value)
    return None


def _flag(values: Any, i: int) -> bool:
    return isinstance(values, list | tuple) and i < len(values) and values[i] is True


def _pick(conv: Conversion, row: Mapping[str, Any]) -> tuple[Any, tuple[str, ...]]:
    """The first qualifying candidate that has every `prefer_all` flag, else the first qualifying one (noted)."""
    candidates = row.get(conv.pick_from)
    if not isinstance(candidates, list | tuple):
        return None, ()
    qualifying = [
        i for i in range(len(candidates)) if not conv.pick_any or any(_flag(row.get(f), i) for f in conv.pick_any)
    ]
    preferred = [i for i in qualifying if all(_flag(row.get(f), i) for f in conv.prefer_all)]
    if preferred:
        return candidates[preferred[0]], ()
    if not qualifying:
        return None, ()
    return candidates[qualifying[0]], (f"no qualifying candidate has {' and '.join(conv.prefer_all)} true: first used",)


def _cut_off(conv: Conversion, response: str) -> bool:
    if conv.trace is None:
        return False
    opening, closing = conv.trace
    start = response.find(opening)
    return start >= 0 and response.find(closing, start + len(opening)) < 0


def _checked(conv: Conversion, record: Record, notes: tuple[str, ...] = ()) -> Outcome:
    if not record["instruction"].strip():
        return Outcome(None, "empty prompt")
    if not record["output"].strip():
        return Outcome(None, "empty response")
    if _cut_off(conv, record["output"]):
        assert conv.trace is not None
        # Counted, not dropped: ODA's row counts show it trained on every row.
        notes = (*notes, f"reasoning trace cut off ({conv.trace[0]} never closed)")
    return Outcome(record, notes=notes)


def _pair(conv: Conversion, prompt: Any, response: Any, system: Any, notes: tuple[str, ...]) -> Outcome:
    instruction, output = _text(prompt), _text(response)
    if instruction is None or output is None:
        return Outcome(None, "prompt or response is not text")
    record: Record = {"instruction": instruction, "input": "", "output": output}
    sys_text = _text(system) if system is not None else None
    if sys_text:
        record["system"] = sys_text
    return _checked(conv, record, notes)


def convert_row(conv: Conversion, row: Mapping[str, Any]) -> list[Outcome]:
    """What the row yields: one Outcome per response column (`responses`), else one."""
    system = conv.system or (row.get(conv.system_column) if conv.system_column else None)
    if conv.chat:
        key = next((k for k in (conv.prompt, *conv.also) if row.get(k) is not None), conv.prompt)
        try:
            record = convert_chat(row.get(key), key, system if system else None)
        except Unconvertible as exc:
            return [Outcome(None, f"{exc.field}: {exc.reason}")]
        return [_checked(conv, record)]
    if conv.pick_from:
        picked, notes = _pick(conv, row)
        if picked is None:
            wanted = f" with {' or '.join(conv.pick_any)} true" if conv.pick_any else ""
            return [Outcome(None, f"no {conv.pick_from} candidate{wanted}")]
        return [_pair(conv, row.get(conv.prompt), picked, system, notes)]
    columns = conv.responses or (conv.response,)
    return [_pair(conv, row.get(conv.prompt), row.get(c), system, ()) for c in columns]


def read_rows(path: Path, columns: Sequence[str]) -> Iterator[tuple[list[str], Mapping[str, Any]]]:
    """(the file's columns, a row), streamed. Parquet reads only `columns` that exist in the file."""
    suffix = path.suffix.lower()
    if suffix == ".parquet":
        import pyarrow.parquet as pq

        parquet = pq.ParquetFile(path)
        names = list(parquet.schema_arrow.names)
        for batch in parquet.iter_batches(batch_size=_BATCH, columns=[c for c in columns if c in names]):
            for row in batch.to_pylist():
                yield names, row
    elif suffix in (".jsonl", ".json"):
        for rec in JsonStream(path):
            value = rec.value if isinstance(rec.value, dict) else {}
            yield list(value), value
    elif suffix == ".csv":
        csv.field_size_limit(min(sys.maxsize, 2**31 - 1))  # one R1 answer is far beyond the 128 KiB default
        with path.open(encoding="utf-8", newline="") as handle:
            reader = csv.DictReader(handle)
            names = list(reader.fieldnames or [])
            for row in reader:
                yield names, row
    else:
        raise DatasetError(f"{path} is not a data file oda-sft reads ({', '.join(DATA_SUFFIXES)})")


def convert_files(
    name: str,
    conv: Conversion,
    files: Sequence[tuple[str, Path]],
    tally: Tally | None = None,
    keep: Sequence[str] = (),
) -> Iterator[Record]:
    """The Alpaca records of `files` ((repo path, local path) pairs), in file and row order. `keep`: columns
    copied as they are into every record, as metadata (ODA's scores; LLaMA-Factory drops them on load)."""
    wanted = [*_wanted(conv), *keep]
    for label, path in files:
        checked = False
        for columns, row in read_rows(path, wanted):
            if not checked:
                check_columns(conv, columns, label, name)
                _check_kept(keep, columns, label, name)
                checked = True
            if tally is not None:
                tally.rows += 1
            for outcome in convert_row(conv, row):
                if keep and outcome.record is not None:
                    outcome.record.update({k: plain(row.get(k)) for k in keep})
                if tally is not None:
                    _tally(tally, outcome)
                if outcome.record is not None:
                    yield outcome.record


def _check_kept(keep: Sequence[str], columns: Sequence[str], where: str, name: str) -> None:
    missing = [k for k in keep if k not in columns]
    if missing:
        raise DatasetError(
            f"{name}: {where} has no column {', '.join(repr(m) for m in missing)} to keep: leave out --keep-scores, "
            "or pin a revision that has the scores with --revision"
        )


def _tally(tally: Tally, outcome: Outcome) -> None:
    if outcome.record is None:
        tally.drop(outcome.reason)
        return
    tally.kept += 1
    for note in outcome.notes:
        tally.note(note)
    if tally.first is None:
        tally.first = outcome.record
