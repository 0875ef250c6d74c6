"""`data add` without the CLI: read a source, convert or validate it, write Alpaca JSON, register it.

The data file and its dataset_info.json entry change together, as one transaction
(data/registry/transaction.py): converted records stream into a file inside the transaction's hidden
directory; once every check passed, the file and the entry are put in place under the registry's
lock. An error, a full disk or a signal leaves the dataset dir exactly as it was, and no temporary
files; a SIGKILL-ed add is undone by the next command that opens the dataset dir.

Names and paths are checked before any work: a name whose file would be oda-sft's registry, a
target that is another entry's data file (however that entry spells its file_name), and a source
that is the registry itself are refused.

Other source kinds (e.g. a catalog download) plug in through `AddRequest.source`: whatever yields
records goes through the same conversion and the same transaction.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from oda_sft.data import files
from oda_sft.data.formats import convert
from oda_sft.data.formats.alpaca import DEFAULT_SHOWN, FIELDS, Columns, ProblemLog
from oda_sft.data.formats.arrow_schema import SchemaCheck
from oda_sft.data.registry import hashing, info_file, transaction
from oda_sft.data.registry.dataset_dir import META_KEY
from oda_sft.data.registry.info_file import INFO_FILE, RegistryFile
from oda_sft.data.registry.transaction import Transaction, TxnFile, recover
from oda_sft.data.sources.local import Source, SourceSpec, open_source
from oda_sft.errors import DatasetError, UsageError
from oda_sft.names import check_name
from oda_sft.util import signals
from oda_sft.util.clock import utc_now
from oda_sft.util.console import say

Status = Literal["added", "replaced", "restored", "unchanged"]
# NAME.json of these names is a file oda-sft owns (compared case-insensitively, for such filesystems).
RESERVED_NAMES = frozenset({INFO_FILE.removesuffix(".json")})


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
    notes: tuple[str, ...] = ()  # what was cleaned up from an earlier interrupted add


class _AlpacaWriter:
    """Streams records out as a JSON list, hashing the bytes on the way; opens its file on first use."""

    def __init__(self, open_file: Callable[[], TxnFile]) -> None:
        self._open = open_file
        self.out: TxnFile | None = None
        self.hash = hashlib.sha256()
        self.count = 0
        self.size = 0

    def _put(self, text: str) -> None:
        data = text.encode("utf-8")
        self.hash.update(data)
        self.size += len(data)
        if self.out is None:
            self.out = self._open()
        self.out.write(data)

    def write(self, record: dict[str, Any]) -> None:
        self._put(("[\n  " if self.count == 0 else ",\n  ") + json.dumps(record, ensure_ascii=False))
        self.count += 1

    def finish(self) -> None:
        self._put("\n]\n" if self.count else "[]\n")
        assert self.out is not None
        self.out.finish()


def _dataset_dir(raw: Path) -> Path:
    ddir = raw.expanduser()
    kind = files.describe(ddir)
    if kind is not None and kind != "a directory":
        what = "does not exist: create it" if kind.startswith("missing") else f"is {kind}: give a directory"
        raise DatasetError(f"dataset dir {ddir} {what}, or pass --dataset-dir with an existing one")
    return ddir.resolve()


def _same_file(a: Path, b: Path) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:
        return os.path.normpath(a) == os.path.normpath(b)


def add_dataset(request: AddRequest) -> AddResult:
    """Register request.source as request.name in the dataset dir; see the module docstring."""
    name = check_name("dataset", request.name)
    ddir = _dataset_dir(request.dataset_dir)
    registry = RegistryFile(ddir)
    target = ddir / f"{name}.json"
    if name.lower() in RESERVED_NAMES:
        raise UsageError(
            f"dataset name {name!r} would write its data to {target}, which is oda-sft's registry "
            "(dataset_info.json): choose another name"
        )
    with signals.raising():
        notes = tuple(recover(registry))
        for note in notes:
            say(note)
        registry.read_text()  # a broken dataset_info.json is reported before any work
        mapping = convert.parse_map(request.mapping)
        source = open_source(request.source)
        if source.path is not None and _same_file(source.path, registry.target):
            raise UsageError(f"{source.path} is the dataset registry itself, not a dataset: give a data file")
        with Transaction(registry) as txn:
            return _add(request, name, registry, target, source, mapping, txn, notes)


def _add(
    request: AddRequest,
    name: str,
    registry: RegistryFile,
    target: Path,
    source: Source,
    mapping: Mapping[str, str],
    txn: Transaction,
    notes: tuple[str, ...],
) -> AddResult:
    ddir = registry.dir
    in_place = source.kind == "file" and source.path is not None and source.path.parent == ddir and not mapping
    log = ProblemLog(shown=request.shown)
    schema = SchemaCheck(ignore=frozenset(FIELDS))
    total = 0
    fields: set[str] = set()
    shape: convert.Shape | None = None
    writer = _AlpacaWriter(lambda: txn.data(target))
    keep = source.spec.prepared.keep if source.spec.prepared is not None else ()
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
        if in_place and not problems:
            problems = schema.add(index, value)  # kept keys must load with one schema
        if problems or record is None:
            log.add(problems)
            continue
        fields.update(record)
        if keep:  # metadata the conversion chose to carry (ODA's scores); LLaMA-Factory drops unknown columns
            record.update({k: value[k] for k in keep if k in value})
        if not in_place:
            writer.write(record)
        if total % 1000 == 0:
            transaction.step("converting")
            if total % 100_000 == 0:
                say(f"read {total:,} records")
    _check_outcome(request, source, shape, log, total, in_place)
    assert shape is not None
    kept = total - log.bad_records
    if log.bad_records:
        say(f"skipped {log.bad_records:,} of {total:,} records (--skip-invalid): {log.reason_counts()}")

    if in_place:
        assert source.path is not None and source.stream is not None
        data_path, sha, size = source.path, source.stream.sha256, source.stream.size
    else:
        writer.finish()
        transaction.step("data-written")
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
    with registry.locked():
        text, info = registry.load()
        status = _registration_status(request, registry, info, data_path, sha, in_place)
        if status != "unchanged":
            txn.commit(info_file.with_entry(text, name, entry), None if in_place else target)
    return AddResult(name, status, data_path, shape.name, kept, log.bad_records, sha, in_place, notes)


def _check_outcome(
    request: AddRequest, source: Source, shape: convert.Shape | None, log: ProblemLog, total: int, in_place: bool
) -> None:
    label = source.label()
    if total == 0 or shape is None:
        raise DatasetError(f"{label} holds no records: an empty dataset cannot be trained on; add records")
    if log.bad_records and in_place:
        raise DatasetError(
            f"{label}: {log.bad_records:,} of {total:,} records cannot be registered in place ({log.summary()}): "
            "fix them, or add the file from a copy outside the dataset dir (oda-sft then writes only the "
            "Alpaca fields, and --skip-invalid can leave bad records out)"
        )
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


def _entry_file(ddir: Path, entry: Any) -> Path | None:
    file_name = entry.get("file_name") if isinstance(entry, dict) else None
    return Path(os.path.normpath(ddir / file_name)) if isinstance(file_name, str) and file_name else None


def _collides(path: Path, other: Path) -> bool:
    """True when writing `path` would change `other`'s data: the same file, or a file inside its directory."""
    if path == other:
        return True
    if other in path.parents:
        return True  # LLaMA-Factory reads every file in an entry's directory
    # Two names for one file: a link, or a case-insensitive filesystem.
    return os.path.lexists(path) and os.path.lexists(other) and _same_file(path, other)


def _registration_status(
    request: AddRequest, registry: RegistryFile, info: dict[str, Any], data_path: Path, sha: str, in_place: bool
) -> Status:
    name = request.name
    ddir = registry.dir
    # The target must not be another entry's data, however that entry spells its file_name.
    for other, entry in info.items():
        other_file = _entry_file(ddir, entry)
        if other != name and other_file is not None and _collides(data_path, other_file):
            raise DatasetError(
                f"{data_path} is the data of dataset {other!r} (file_name {entry['file_name']!r} in "
                f"{registry.path}): register under that name, or choose another name"
            )
    current = info.get(name)
    if current is None:
        if not in_place and os.path.lexists(data_path) and not request.force:
            raise DatasetError(
                f"{data_path} already exists and is not registered: move it away, or pass --force to replace it"
            )
        return "added"
    meta = current.get(META_KEY) if isinstance(current, dict) else None
    old_sha = meta.get("sha256") if isinstance(meta, dict) else None
    old_file = current.get("file_name") if isinstance(current, dict) else None
    if old_sha == sha and old_file == data_path.name:
        return "unchanged" if in_place else _restore_status(request, data_path, sha)
    if not request.force:
        what = f"sha256 {old_sha[:12]}" if isinstance(old_sha, str) else f"file {old_file!r}"
        raise DatasetError(
            f"dataset {name!r} is already registered in {registry.path} with different content ({what}, now "
            f"{sha[:12]}): pass --force to replace it, or choose another name"
        )
    return "replaced"


def _restore_status(request: AddRequest, data_path: Path, sha: str) -> Status:
    """The entry already records this content: unchanged while its file still holds it; else the file is
    put back from the source (an edited file only with --force: the edit is replaced)."""
    kind = files.describe(data_path)
    if kind is not None and not kind.startswith(("missing", "a dangling")):
        raise DatasetError(
            f"{data_path}, where dataset {request.name!r}'s registered data belongs, is {kind}: move it away, "
            "then run this again to put the data back"
        )
    if kind is None:
        now = hashing.identify(data_path, checked=True).sha256
        if now == sha:
            return "unchanged"
        if not request.force:
            raise DatasetError(
                f"{data_path}, the data file of dataset {request.name!r}, was changed after it was registered "
                f"(sha256 {now[:12]}, registered {sha[:12]}, which this source holds): pass --force to put the "
                "registered content back (the changed file is replaced)"
            )
    return "restored"
