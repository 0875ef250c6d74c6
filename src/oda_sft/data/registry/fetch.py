"""`oda-sft data add <catalog name>`: fetch a catalog dataset, convert it as the catalog declares, register it.

In order: resolve the revision to a commit (the Hub; the Hugging Face cache with HF_HUB_OFFLINE=1; or a
local copy given as SOURCE) -> download the declared files into the Hugging Face cache -> convert every
row once, writing nothing, to count what is kept and left out and to preview one record -> (the caller
prints that; --dry-run stops) -> register through data/registry/add.py, which writes the Alpaca file under a
temporary name and registers it only when every record converted. Nothing half-converted is registered.
"""

from __future__ import annotations

import fnmatch
import hashlib
import json
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from oda_sft.data import files
from oda_sft.data.registry import hashing
from oda_sft.data.registry.add import AddRequest, AddResult, add_dataset
from oda_sft.data.registry.dataset_dir import META_KEY, DatasetDir
from oda_sft.data.sources.catalog_conversion import Tally, convert_files
from oda_sft.data.sources.local import PreparedRecords, SourceSpec
from oda_sft.datasets_catalog import DATASETS, CatalogDataset, Conversion, Evidence
from oda_sft.datasets_catalog.advice import add_command, oda_subset
from oda_sft.errors import DatasetError, UsageError
from oda_sft.util.console import say
from oda_sft.util.paths import ensure_user_dataset_dir, is_user_dataset_dir

_PREVIEW_CHARS = 240


def conversion_id(conv: Conversion) -> str:
    """A short fingerprint of the declaration: a catalog change shows as a different id in the entry."""
    text = json.dumps(asdict(conv), sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def catalog_dataset(name: str) -> CatalogDataset:
    dataset = DATASETS.get(name)
    if dataset is None or dataset.conversion is None:
        raise UsageError(
            f"{name} is not a catalog dataset: give a SOURCE (`oda-sft data add {name} SOURCE`); "
            "`oda-sft list-datasets` shows the catalog"
        )
    return dataset


@dataclass(frozen=True)
class FetchRequest:
    name: str
    dataset_dir: Path
    revision: str | None = None
    local: Path | None = None  # a local copy: a folder laid out as the repo, or one data file
    force: bool = False
    oda: str = ""  # a subset of ODA's normalised release to fetch instead (data/sources/oda.py)
    keep: tuple[str, ...] = ()  # columns kept in every record as metadata (--keep-scores)


@dataclass(frozen=True)
class Prepared:
    """A fetched and counted catalog dataset, ready to register (or already registered: `unchanged`)."""

    request: FetchRequest
    dataset: CatalogDataset
    origin: dict[str, Any]  # what dataset_info.json records as the source
    files: list[tuple[str, Path]]  # (repo path, local path)
    tally: Tally
    unchanged: bool = False  # this commit, converted this way, is already registered

    @property
    def conversion(self) -> Conversion:
        assert self.dataset.conversion is not None
        return self.dataset.conversion


def prepare(request: FetchRequest) -> Prepared:
    """Locate, download and count (see the module docstring). Writes nothing but the Hugging Face cache."""
    from oda_sft.data.sources import oda

    dataset = oda.dataset(request.name, request.oda) if request.oda else catalog_dataset(request.name)
    conv = dataset.conversion
    assert conv is not None
    ddir = request.dataset_dir.expanduser()
    if not ddir.is_dir() and not is_user_dataset_dir(ddir):  # before any download: the result could not be kept
        raise DatasetError(f"dataset dir {ddir} does not exist: create it, or pass --dataset-dir with an existing one")
    if request.local is not None:
        if request.revision:
            raise UsageError("--revision applies to the Hub; a local copy is converted as it is: drop --revision")
        origin, files = _local(dataset, conv, request.local)
    else:
        origin, files = _hub(dataset, conv, request)
    origin["conversion"] = {"oda": request.oda} if request.oda else {"catalog": dataset.name}
    origin["conversion"]["id"] = conversion_id(conv)
    if request.keep:
        origin["conversion"]["keep"] = list(request.keep)
    if not request.force and _already_registered(request, origin):
        return Prepared(request, dataset, origin, files, Tally(), unchanged=True)
    tally = Tally()
    for count, _ in enumerate(convert_files(dataset.name, conv, files, tally, request.keep), 1):
        if count % 100_000 == 0:
            say(f"converted {count:,} records")
    if tally.kept == 0:
        raise DatasetError(
            f"{dataset.name}: none of the {tally.rows:,} rows can be used ({_drops(tally.dropped) or 'no rows'}): "
            "the data does not match the declared conversion; pin the revision it was declared for with --revision"
        )
    origin["rows"] = tally.rows
    origin["dropped"] = dict(sorted(tally.dropped.items()))
    return Prepared(request, dataset, origin, files, tally)


def _hub(
    dataset: CatalogDataset, conv: Conversion, request: FetchRequest
) -> tuple[dict[str, Any], list[tuple[str, Path]]]:
    from oda_sft.data.sources import hub

    snapshot = hub.resolve(dataset.hf_id, request.revision, dataset.name)
    if request.oda:
        from oda_sft.data.sources import oda

        oda.check_listed(request.oda, snapshot.files, f"commit {snapshot.sha[:12]}")
    wanted = _select(conv, snapshot.files, f"{dataset.hf_id} at {snapshot.sha[:12]}")
    _refuse_to_replace(request, snapshot.sha)  # before the download, which may be gigabytes
    where = "the Hugging Face cache (HF_HUB_OFFLINE)" if snapshot.offline else hub.endpoint()
    say(f"{dataset.hf_id}: {snapshot.requested} is commit {snapshot.sha}; {len(wanted)} file(s) from {where}")
    files = [(path, hub.download(snapshot, path, dataset.name)) for path in wanted]
    origin: dict[str, Any] = {
        "type": "hub",
        "id": dataset.hf_id,
        "revision": snapshot.sha,
        "requested": snapshot.requested,
        "files": wanted,
    }
    return origin, files


def _local(dataset: CatalogDataset, conv: Conversion, local: Path) -> tuple[dict[str, Any], list[tuple[str, Path]]]:
    local = local.expanduser().resolve()
    if local.is_file():
        names = [pattern.rsplit("/", 1)[-1] for pattern in conv.files]
        if not any(fnmatch.fnmatchcase(local.name, n) for n in names):
            raise UsageError(
                f"{local.name} is not one of {dataset.name}'s declared files ({', '.join(conv.files)}): give the file "
                f"under its name in {dataset.hf_id}, or the folder holding a copy of the repo"
            )
        files = [(local.name, local)]
    elif local.is_dir():
        listing = {p.relative_to(local).as_posix(): None for p in local.rglob("*") if p.is_file()}
        files = [(path, local / path) for path in _select(conv, listing, str(local))]
    else:
        raise UsageError(f"{local} does not exist: give a local copy of {dataset.hf_id} (its folder, or a data file)")
    return {"type": "local", "path": str(local), "files": [p for p, _ in files]}, files


def _select(conv: Conversion, listing: dict[str, Any], where: str) -> list[str]:
    chosen = sorted(p for p in listing if any(fnmatch.fnmatchcase(p, pattern) for pattern in conv.files))
    if not chosen:
        some = ", ".join(sorted(listing)[:10]) or "no files"
        raise DatasetError(
            f"{where} has no file matching {', '.join(conv.files)} (it has: {some}): the repo's layout differs "
            "from the declared one; pin the revision it was declared for with --revision"
        )
    return chosen


def _registered_source(request: FetchRequest) -> dict[str, Any] | None:
    try:
        entry = DatasetDir.load(request.dataset_dir).entry(request.name)
    except DatasetError:
        return None
    if entry is None:
        return None
    meta = entry.get(META_KEY)
    source = meta.get("source") if isinstance(meta, dict) else None
    return source if isinstance(source, dict) else {}


def _refuse_to_replace(request: FetchRequest, sha: str) -> None:
    source = _registered_source(request)
    if request.force or source is None or source.get("revision") == sha:
        return
    was = f"commit {source['revision'][:12]}" if isinstance(source.get("revision"), str) else "other data"
    raise DatasetError(
        f"{request.name} is already registered in {request.dataset_dir} from {was}, not {sha[:12]}: pass --force "
        "to replace it (the revision is recorded in every run's manifest), or choose the registered --revision"
    )


def _already_registered(request: FetchRequest, origin: dict[str, Any]) -> bool:
    """This commit, converted this way, is registered and its data file still holds what was registered:
    nothing to do. (A file edited or deleted since is fetched and converted again, and put back.)"""
    source = _registered_source(request)
    if origin.get("type") != "hub" or not source:
        return False
    entry = DatasetDir.load(request.dataset_dir).entry(request.name) or {}
    same = source.get("revision") == origin["revision"] and source.get("conversion") == origin["conversion"]
    file_name, meta = entry.get("file_name"), entry.get(META_KEY)
    if not same or not isinstance(file_name, str) or not isinstance(meta, dict):
        return False
    data = request.dataset_dir.expanduser() / file_name
    return files.describe(data) is None and hashing.identify(data, checked=True).sha256 == meta.get("sha256")


def register(prepared: Prepared) -> AddResult:
    """Register the prepared dataset through data/registry/add.py (atomic: all records, or nothing)."""
    request, dataset = prepared.request, prepared.dataset
    ensure_user_dataset_dir(request.dataset_dir)
    origin = {**prepared.origin, "kept": prepared.tally.kept}

    def records() -> Iterator[Any]:
        return convert_files(dataset.name, prepared.conversion, prepared.files, keep=request.keep)

    label = f"{dataset.name} ({dataset.hf_id}" + (f" at {origin['revision'][:12]})" if "revision" in origin else ")")
    spec = SourceSpec(label, prepared=PreparedRecords(origin, records, keep=request.keep))
    add = AddRequest(name=request.name, dataset_dir=request.dataset_dir, source=spec, force=request.force)
    return add_dataset(add)


def summary(prepared: Prepared) -> str:
    """What will happen, printed before anything is written: source and revision, files, conversion,
    the record count, and one converted record."""
    origin, tally, conv = prepared.origin, prepared.tally, prepared.conversion
    if origin["type"] == "hub":
        source = f"{origin['id']} at commit {origin['revision']}"
        if origin["requested"] != origin["revision"]:
            source += f" ({origin['requested']})"
    else:
        source = f"local copy {origin['path']} (no Hub revision)"
    rows = [("dataset", prepared.dataset.name), ("source", source), ("files", ", ".join(origin["files"]))]
    rows.append(("conversion", conv.describe()))
    if prepared.request.keep:
        kept = ", ".join(prepared.request.keep)
        rows.append(("metadata", f"{kept} kept in every record (LLaMA-Factory ignores them)"))
    rows.append(("why", conv.why))
    evidence = prepared.dataset.evidence
    if evidence is not None and (evidence.unconfirmed or evidence.unconfirmed_files):
        rows.append(("unverified", _unverified(evidence)))
    if prepared.unchanged:
        rows.append(("records", "already registered from this commit with this conversion; nothing to do"))
    else:
        rows.append(("records", _records(tally, conv)))
    if evidence is not None:
        oda = f"{evidence.oda_rows:,} records" if evidence.oda_rows is not None else "record count not published"
        rows.append(("ODA", f"{oda} ({evidence.oda_source})"))
        expected = published_rows(evidence, origin["files"])
        if not prepared.unchanged and expected is not None and expected != tally.rows:
            rows.append(("warning", f"{tally.rows:,} rows read, where the catalog counts {expected:,} in these files "
                         f"(at {evidence.at}): this copy differs from the published data (a partial copy, or "
                         "another revision)"))  # fmt: skip
    if not prepared.unchanged and tally.first is not None:
        rows.append(("preview", _preview(tally.first)))
    width = max(len(k) for k, _ in rows)
    return "\n".join(f"{k.ljust(width)}  {v}" for k, v in rows)


def published_rows(evidence: Evidence, read: list[str]) -> int | None:
    """The rows the catalog counts in the files read (its counts are per file or per file pattern); None
    when one of the files has no count. A local file given by itself is matched by its name."""

    def keys(path: str) -> list[str]:
        return [k for k in evidence.rows if fnmatch.fnmatchcase(path, k) or fnmatch.fnmatchcase(path, k.split("/")[-1])]

    matched = [keys(path) for path in read]
    if not read or not all(matched):
        return None
    return sum(evidence.rows[k] for k in dict.fromkeys(k for found in matched for k in found))


def _records(tally: Tally, conv: Conversion) -> str:
    if conv.per_row > 1:
        counted = f"{tally.kept:,} records from {tally.rows:,} rows ({conv.per_row} per row)"
    else:
        counted = f"{tally.kept:,} of {tally.rows:,} rows"
    if tally.dropped:
        counted += f"; left out: {_drops(tally.dropped)}"
    if tally.noted:
        counted += f"; kept and counted: {_drops(tally.noted)}"
    return counted


def _unverified(evidence: Evidence) -> str:
    """The columns and files the conversion relies on that no public source shows (docs/data.md)."""
    parts = [f"column {c}" for c in evidence.unconfirmed] + [f"files {f}" for f in evidence.unconfirmed_files]
    return f"{', '.join(parts)}: no public source shows these (docs/data.md); a missing one stops the fetch"


def _drops(counts: dict[str, int]) -> str:
    ordered = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
    return "; ".join(f"{n:,} x {reason}" for reason, n in ordered)


def _preview(record: dict[str, Any]) -> str:
    def cut(value: Any) -> Any:
        if isinstance(value, str) and len(value) > _PREVIEW_CHARS:
            return value[:_PREVIEW_CHARS] + f"... [{len(value) - _PREVIEW_CHARS:,} more characters]"
        return value

    return json.dumps({k: cut(v) for k, v in record.items()}, ensure_ascii=False)


def fetch_missing(names: Iterable[str], dataset_dir: Path, dry_run: bool = False) -> list[str]:
    """`--fetch`: every catalog dataset (or oda-X subset of ODA's release) among `names` that is not registered
    yet is fetched, converted and registered, once each, before anything starts. Returns the names fetched.
    Other names are left to planning. A dry run fetches nothing (it may be gigabytes); it says what the real
    run would fetch first."""
    fetched: list[str] = []
    for name in dict.fromkeys(names):
        subset = oda_subset(name)
        if name not in DATASETS and not subset:
            continue
        try:
            registered = DatasetDir.load(dataset_dir).resolve(name).registered
        except DatasetError:
            registered = False  # a missing explicit dir: data add says what is wrong with it
        if registered:
            continue
        add = add_command(name, dataset_dir)
        if dry_run:
            say(f"--fetch: {name} is not registered; the real run fetches it first ({add})")
            continue
        say(f"--fetch: {name} is not registered; fetching it ({add})")
        prepared = prepare(FetchRequest(name, dataset_dir, oda=subset))
        for line in summary(prepared).splitlines():
            say(line)
        if not prepared.unchanged:
            result = register(prepared)
            say(f"{result.status} {name}: {result.records:,} records, {result.file}")
        fetched.append(name)
    return fetched
