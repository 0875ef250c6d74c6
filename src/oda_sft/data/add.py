"""`data add` without the CLI: read a source, convert or validate it, write Alpaca JSON, register it.

Nothing in the dataset dir changes unless every check passes: the data is written to a hidden
temporary file first, and dataset_info.json is spliced atomically, under a lock, at the end.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Literal

from oda_sft.data import convert, hashing, registry_file
from oda_sft.data.alpaca import DEFAULT_SHOWN, Columns, ProblemLog
from oda_sft.data.registry import INFO_FILE, META_KEY
from oda_sft.data.sources import Source, SourceSpec, open_source
from oda_sft.errors import DatasetError, UsageError
from oda_sft.util.clock import utc_now
from oda_sft.util.names import check_name

Status = Literal["added", "replaced", "unchanged"]


@dataclass(frozen=True)
class AddRequest:
    name: str
    dataset_dir: Path
    source: SourceSpec
    mapping: list[str] = field(default_factory=list)
    skip_invalid: bool = False
    force: bool = False
    shown: int = DEFAULT_SHOWN


@dataclass(frozen=True)
class AddResult:
    name: str
    status: Status
    file: Path
    shape: str
    records: int
    skipped: int
    sha256: str
    in_place: bool


class _AlpacaWriter:
    """Streams records out as a JSON list, hashing the bytes on the way."""

    def __init__(self, handle: IO[bytes]) -> None:
        self.handle = handle
        self.hash = hashlib.sha256()
        self.count = 0
        self.size = 0

    def _put(self, text: str) -> None:
        data = text.encode("utf-8")
        self.hash.update(data)
        self.size += len(data)
        self.handle.write(data)

    def write(self, record: dict[str, Any]) -> None:
        self._put(("[\n  " if self.count == 0 else ",\n  ") + json.dumps(record, ensure_ascii=False))
        self.count += 1

    def close(self) -> None:
        self._put("\n]\n" if self.count else "[]\n")


def add_dataset(request: AddRequest, say: Callable[[str], None] = lambda _m: None) -> AddResult:
    """Register request.source as request.name in the dataset dir; see the module docstring."""
    name = check_name("dataset", request.name)
    ddir = request.dataset_dir.expanduser()
    if not ddir.is_dir():
        raise DatasetError(f"dataset dir {ddir} does not exist: create it, or pass --dataset-dir with an existing one")
    ddir = ddir.resolve()
    info_path = ddir / INFO_FILE
    registry_file.read_info(info_path)  # a broken dataset_info.json is reported before any work
    mapping = convert.parse_map(request.mapping)
    source = open_source(request.source)
    target = ddir / f"{name}.json"

    in_place = source.kind == "file" and source.path is not None and source.path.parent == ddir and not mapping
    log = ProblemLog(shown=request.shown)
    total = 0
    fields: set[str] = set()
    shape: convert.Shape | None = None
    fd, tmp_name = tempfile.mkstemp(prefix=f".{name}.", suffix=".json.tmp", dir=ddir)
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as handle:
            writer = _AlpacaWriter(handle)
            for index, value in source.records():
                if shape is None:
                    shape = convert.detect(value, mapping)
                    say(f"detected shape: {shape.name}")
                    in_place = in_place and shape.alpaca
                    if source.path == target and not in_place:
                        raise UsageError(
                            f"{target} is not Alpaca data, and converting it would overwrite it: "
                            "move it out of the dataset dir, or register it under another name"
                        )
                total += 1
                record, problems = convert.convert_record(shape, index, value)
                if problems or record is None:
                    log.add(problems)
                    continue
                fields.update(record)
                if not in_place:
                    writer.write(record)
                if total % 100_000 == 0:
                    say(f"read {total:,} records")
            writer.close()
            handle.flush()
            os.fsync(handle.fileno())
        _check_outcome(request, source, shape, log, total, in_place)
        assert shape is not None
        kept = total - log.bad_records
        if log.bad_records:
            say(f"skipped {log.bad_records:,} of {total:,} records (--skip-invalid): {log.reason_counts()}")

        if in_place:
            assert source.path is not None and source.stream is not None
            data_path, sha, size = source.path, source.stream.sha256, source.stream.size
        else:
            data_path, sha, size = target, writer.hash.hexdigest(), writer.size
        columns = Columns(
            instruction="instruction",
            input="input" if "input" in fields else None,
            output="output",
            system="system" if "system" in fields else None,
            history="history" if "history" in fields else None,
        )
        entry = {
            "file_name": data_path.name,
            "columns": columns.entry_columns(),
            META_KEY: {
                "source": source.describe(),
                "shape": shape.name,
                "sha256": sha,
                "bytes": size,
                "records": kept,
                "skipped": log.bad_records,
                "added_at": utc_now(),
            },
        }
        with registry_file.locked(ddir):
            status = _registration_status(request, info_path, data_path, sha, in_place)
            if status == "unchanged":
                return AddResult(name, status, data_path, shape.name, kept, log.bad_records, sha, in_place)
            if not in_place:
                os.chmod(tmp, 0o644)
                os.replace(tmp, target)
            registry_file.put_entry(info_path, name, entry)
        hashing.remember(data_path, sha)
        return AddResult(name, status, data_path, shape.name, kept, log.bad_records, sha, in_place)
    finally:
        tmp.unlink(missing_ok=True)


def _check_outcome(
    request: AddRequest, source: Source, shape: convert.Shape | None, log: ProblemLog, total: int, in_place: bool
) -> None:
    label = source.label()
    if total == 0 or shape is None:
        raise DatasetError(f"{label} holds no records: an empty dataset cannot be trained on; add records")
    if log.bad_records and not request.skip_invalid:
        raise DatasetError(
            f"{label}: {log.bad_records:,} of {total:,} records cannot be used as {shape.name} -> Alpaca "
            f"({log.summary()}): fix them, or pass --skip-invalid to leave them out"
        )
    if log.bad_records == total:
        raise DatasetError(
            f"{label}: none of the {total:,} records can be used ({log.summary()}): an empty dataset cannot be "
            "trained on; check the shape, or pass --map"
        )
    if log.bad_records and in_place:
        raise UsageError(
            f"{label} is inside the dataset dir and has {log.bad_records:,} invalid records; --skip-invalid "
            "would rewrite it in place: fix it, or add it from a copy outside the dataset dir"
        )


def _registration_status(request: AddRequest, info_path: Path, data_path: Path, sha: str, in_place: bool) -> Status:
    info = json.loads(registry_file.read_info(info_path))
    name = request.name
    # The target file must not be another entry's data.
    for other, entry in info.items():
        if other != name and isinstance(entry, dict) and entry.get("file_name") == data_path.name:
            raise DatasetError(
                f"{data_path} is the data file of dataset {other!r}: register under that name, or choose another name"
            )
    current = info.get(name)
    if current is None:
        if not in_place and data_path.exists() and not request.force:
            raise DatasetError(
                f"{data_path} already exists and is not registered: move it away, or pass --force to replace it"
            )
        return "added"
    meta = current.get(META_KEY) if isinstance(current, dict) else None
    old_sha = meta.get("sha256") if isinstance(meta, dict) else None
    old_file = current.get("file_name") if isinstance(current, dict) else None
    if old_sha == sha and old_file == data_path.name:
        return "unchanged"
    if not request.force:
        what = f"sha256 {old_sha[:12]}" if isinstance(old_sha, str) else f"file {old_file!r}"
        raise DatasetError(
            f"dataset {name!r} is already registered in {info_path} with different content ({what}, now "
            f"{sha[:12]}): pass --force to replace it, or choose another name"
        )
    return "replaced"
