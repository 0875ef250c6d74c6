"""Overlap results kept in the dataset's dataset_info.json entry, next to its length analyses.

Under the entry's oda_sft.contamination: the sha256 of the file scanned, the method's version, the
sample count, and per benchmark the sha256 of the benchmark questions compared against, with the
overlapping samples. A benchmark's result is reused while both hashes (and the method) are unchanged;
a changed file drops every result, a changed benchmark only its own. `list-datasets`, `data inspect`
and `rank` read it from here (`overlap_counts`), without scanning anything.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from oda_sft.data.contamination.spec import METHOD, METHOD_VERSION, N
from oda_sft.data.registry import hashing, info_file
from oda_sft.data.registry.dataset_dir import META_KEY, ResolvedDataset
from oda_sft.data.registry.info_file import INFO_FILE, RegistryFile
from oda_sft.errors import DatasetError
from oda_sft.util.clock import utc_now

KEY = "contamination"
SHOWN_MATCHES = 50  # (sample, item) pairs kept per benchmark; every overlapping sample index is kept


@dataclass(frozen=True)
class Overlap:
    """One benchmark against one dataset file."""

    name: str
    benchmark_sha256: str
    items: int
    samples: list[int]  # overlapping samples, 0-based in the file's order
    matches: list[tuple[int, int]]  # (sample, benchmark item), the first SHOWN_MATCHES

    def as_json(self) -> dict[str, Any]:
        return {"sha256": self.benchmark_sha256, "items": self.items, "samples": self.samples,
                "matches": [list(m) for m in self.matches]}  # fmt: skip

    @classmethod
    def from_json(cls, name: str, data: Any) -> Overlap | None:
        if not isinstance(data, dict) or not isinstance(data.get("samples"), list):
            return None
        matches = [tuple(m) for m in data.get("matches") or [] if isinstance(m, list) and len(m) == 2]
        return cls(name, str(data.get("sha256", "")), int(data.get("items") or 0),
                   [int(s) for s in data["samples"]], [(int(a), int(b)) for a, b in matches])  # fmt: skip


def _stored(meta: Mapping[str, Any], sha256: str | None) -> Mapping[str, Any] | None:
    record = meta.get(KEY)
    if not isinstance(record, dict) or sha256 is None or record.get("sha256") != sha256:
        return None
    if record.get("method") != METHOD_VERSION or not isinstance(record.get("benchmarks"), dict):
        return None
    return record


def stored(meta: Mapping[str, Any], sha256: str | None) -> dict[str, Overlap]:
    """The results stored for this very file, by benchmark."""
    record = _stored(meta, sha256)
    if record is None:
        return {}
    found = (Overlap.from_json(name, data) for name, data in record["benchmarks"].items())
    return {o.name: o for o in found if o is not None}


def overlap_counts(meta: Mapping[str, Any], sha256: str | None) -> dict[str, int] | None:
    """{benchmark: overlapping samples} checked for this file (None: never checked), for listings."""
    record = _stored(meta, sha256)
    if record is None:
        return None
    return {o.name: len(o.samples) for o in stored(meta, sha256).values()}


def describe_counts(counts: Mapping[str, int] | None) -> str:
    """A listing cell: '' unchecked, 'none' clean, else 'gsm8k 3, math500 1'."""
    if counts is None:
        return ""
    hits = [f"{name} {n:,}" for name, n in sorted(counts.items()) if n]
    return ", ".join(hits) if hits else "none"


def save(dataset: ResolvedDataset, count: int, results: Mapping[str, Overlap]) -> None:
    """Merge results into the entry: kept for this file's sha256; others of an older file are dropped."""
    registry = RegistryFile(dataset.dir)
    with registry.locked():
        text, info = registry.load()
        entry = info.get(dataset.name)
        if not isinstance(entry, dict):
            raise DatasetError(f"dataset {dataset.name!r} disappeared from {dataset.info_path} while it was checked")
        meta = dict(entry.get(META_KEY) or {})
        old = _stored(meta, dataset.sha256)
        benchmarks = dict(old["benchmarks"]) if old is not None else {}
        benchmarks.update({name: o.as_json() for name, o in results.items()})
        meta[KEY] = {"sha256": dataset.sha256, "method": METHOD_VERSION, "n": N, "description": METHOD,
                     "count": count, "checked_at": utc_now(), "benchmarks": benchmarks}  # fmt: skip
        registry.write_text(info_file.with_meta(registry.path, text, dataset.name, META_KEY, meta))


def _current_sha(file: Path | None) -> str | None:
    """The file's sha256 for a listing: the remembered one when its stamp holds, else hashed (small files)."""
    if file is None:
        return None
    try:
        st = os.stat(file)
    except OSError:
        return None
    found = hashing.listed(file, st)
    if found is None:
        identity = hashing.identify(file, missing_ok=True)
        found = identity.sha256 if identity else None
    return found


def entry_counts(entry: Any, file: Path | None) -> dict[str, int] | None:
    """For `list-datasets` and `data inspect`: the stored counts when they are of the file as it is now."""
    if not isinstance(entry, dict) or not isinstance(entry.get(META_KEY), dict) or KEY not in entry[META_KEY]:
        return None
    return overlap_counts(entry[META_KEY], _current_sha(file))


def trained_counts(dataset: Mapping[str, Any]) -> dict[str, int] | None:
    """For `rank`: the counts stored for the content a run trained on (its manifest's dataset record:
    dir, name and sha256), when that dataset was checked; None when not, or when it is gone."""
    directory, name, sha = dataset.get("dir"), dataset.get("name"), dataset.get("sha256")
    if not (isinstance(directory, str) and isinstance(name, str) and isinstance(sha, str)):
        return None
    try:
        info = json.loads((Path(directory) / INFO_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    entry = info.get(name) if isinstance(info, dict) else None
    meta = entry.get(META_KEY) if isinstance(entry, dict) else None
    return overlap_counts(meta, sha) if isinstance(meta, dict) else None
