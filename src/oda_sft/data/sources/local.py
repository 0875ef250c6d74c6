"""Where `oda-sft data add` reads records from: a local .json/.jsonl file, or the `datasets` library.

`datasets` is imported only for Hugging Face ids and dataset directories.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from oda_sft.data import files
from oda_sft.data.formats.jsonstream import JsonStream
from oda_sft.errors import DatasetError, UsageError

LOCAL_SUFFIXES = (".json", ".jsonl")
_HF_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*(/[A-Za-z0-9][A-Za-z0-9._-]*)?")


@dataclass(frozen=True)
class PreparedRecords:
    """Records oda-sft already converted (a catalog dataset, data/registry/fetch.py), and how they were made."""

    description: Mapping[str, Any]  # recorded as the entry's source: repo, revision, files, conversion
    records: Callable[[], Iterator[Any]]  # a fresh pass over the converted records
    keep: tuple[str, ...] = ()  # keys kept in every record besides the Alpaca fields (metadata: ODA's scores)


@dataclass(frozen=True)
class SourceSpec:
    source: str
    split: str | None = None
    subset: str | None = None
    file: str | None = None
    prepared: PreparedRecords | None = None  # set: `source` is only a label, the records come from here


@dataclass
class Source:
    spec: SourceSpec
    kind: str  # "file", "disk" (a save_to_disk directory), "hf" (load_dataset: an id or a local folder)
    path: Path | None = None  # the local file, for kind "file"
    stream: JsonStream | None = None

    def describe(self) -> dict[str, Any]:
        """What dataset_info.json records as the source."""
        if self.spec.prepared is not None:
            return dict(self.spec.prepared.description)
        if self.kind == "file":
            return {"type": "file", "path": str(self.path)}
        out: dict[str, Any] = {"type": self.kind, "id" if self.kind == "hf" else "path": self.spec.source}
        for key in ("subset", "split", "file"):
            value = getattr(self.spec, key)
            if value:
                out[key] = value
        return out

    def label(self) -> str:
        if self.kind == "file":
            return str(self.path)
        extra = ", ".join(f"{k} {v}" for k, v in self.describe().items() if k in ("subset", "split", "file"))
        return f"{self.spec.source}" + (f" ({extra})" if extra else "")

    def records(self) -> Iterator[tuple[int, Any]]:
        if self.spec.prepared is not None:
            yield from enumerate(self.spec.prepared.records())
            return
        if self.stream is not None:
            for rec in self.stream:
                yield rec.index, rec.value
            return
        yield from enumerate(_load_datasets(self))


def open_source(spec: SourceSpec) -> Source:
    if spec.prepared is not None:
        return Source(spec, "prepared")
    raw = spec.source
    path = Path(raw).expanduser()
    kind = files.describe(path)
    if kind is not None and kind != "a directory" and not kind.startswith("missing"):
        # A FIFO or a device would block or never end: refused before anything opens it.
        raise UsageError(
            f"{raw} is {kind}, not a data file: give a .json/.jsonl file, a dataset directory, or a dataset id"
        )
    if kind is None:
        if path.suffix.lower() not in LOCAL_SUFFIXES:
            raise UsageError(
                f"{raw} is neither .json nor .jsonl: give a JSON list or JSON Lines file, "
                "a dataset directory, or a Hugging Face dataset id"
            )
        if spec.split or spec.subset or spec.file:
            raise UsageError("--split, --subset and --file apply to Hugging Face datasets, not to a local file")
        resolved = path.resolve()
        return Source(spec, "file", resolved, JsonStream(resolved))
    if kind == "a directory":
        saved = (path / "state.json").is_file() or (path / "dataset_dict.json").is_file()
        return Source(spec, "disk" if saved else "hf", path.resolve())
    looks_local = raw.startswith((".", "/", "~")) or raw.lower().endswith(LOCAL_SUFFIXES) or raw.count("/") > 1
    if looks_local or not _HF_ID.fullmatch(raw):
        raise UsageError(f"{raw} does not exist: give an existing .json/.jsonl file, a directory, or a dataset id")
    return Source(spec, "hf")


def _load_datasets(source: Source) -> Any:
    spec = source.spec
    import datasets  # type: ignore[import-untyped]

    split = spec.split or "train"
    try:
        if source.kind == "disk":
            loaded = datasets.load_from_disk(str(source.path))
            if isinstance(loaded, datasets.DatasetDict):
                if split not in loaded:
                    raise DatasetError(
                        f"{spec.source} has no split {split!r}: pass --split with one of {', '.join(loaded)}"
                    )
                loaded = loaded[split]
            return loaded
        return datasets.load_dataset(spec.source, name=spec.subset, split=split, data_files=spec.file)
    except DatasetError:
        raise
    except Exception as exc:  # network, auth, missing split/config/file: the library's reason, on one line
        reason = " ".join(str(exc).split())[:300]
        raise DatasetError(
            f"cannot load {source.label()} with the datasets library ({type(exc).__name__}: {reason}): "
            "check the id, --subset, --split and --file; offline, give a local .json/.jsonl file or a "
            "save_to_disk directory"
        ) from None
