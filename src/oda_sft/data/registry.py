"""The dataset dir and its dataset_info.json, LLaMA-Factory's registry of dataset names.

A dataset is resolved once per plan (`DatasetDir.resolve`), into one value that carries its
entry, data file, sha256, columns and what oda-sft recorded about it. Everything after planning
reads that value; nothing looks the dataset up again.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from functools import cache
from pathlib import Path
from typing import Any

from oda_sft.catalog import DATASETS, MODES, CatalogDataset, Mode
from oda_sft.data.alpaca import Columns
from oda_sft.data.hashing import file_sha256
from oda_sft.data.registry_file import parse_info
from oda_sft.errors import DatasetError
from oda_sft.util.paths import demo_dataset_dir, is_user_dataset_dir

INFO_FILE = "dataset_info.json"
META_KEY = "oda_sft"  # oda-sft's own fields inside an entry; LLaMA-Factory ignores unknown keys
ANALYSES_KEY = "analyses"  # META_KEY -> tokenizer -> a length analysis (data/analysis.py writes them)


@dataclass(frozen=True)
class CachedAnalysis:
    """A length analysis stored in an entry, made with one tokenizer of one version of the file."""

    tokenizer: str
    mode: Mode
    reason: str
    sha256: str
    measured_at: str
    rule: Mapping[str, Any] | None  # the decision rule it was decided under

    @classmethod
    def from_json(cls, tokenizer: str, data: Mapping[str, Any]) -> CachedAnalysis | None:
        if data.get("mode") not in MODES:
            return None
        return cls(
            tokenizer=tokenizer,
            mode=data["mode"],
            reason=str(data.get("reason", "")),
            sha256=str(data.get("sha256", "")),
            measured_at=str(data.get("measured_at", "")),
            rule=data["rule"] if isinstance(data.get("rule"), dict) else None,
        )


@dataclass(frozen=True)
class ResolvedDataset:
    """A dataset name, looked up once: what LLaMA-Factory will read and what oda-sft knows of it."""

    name: str
    dir: Path  # the dataset dir, absolute
    entry: Mapping[str, Any] | None  # its dataset_info.json entry; None when it is not registered
    file: Path | None  # the local data file the entry names
    sha256: str | None  # of that file, when it exists
    catalog: CatalogDataset | None
    builtin: bool = False  # the demo shipped inside the package: read only, nothing is stored there

    @property
    def registered(self) -> bool:
        return self.entry is not None

    @property
    def revision(self) -> str | None:
        """The source commit a fetched dataset was converted from (`oda-sft data add NAME`), if recorded."""
        source = self.meta.get("source")
        revision = source.get("revision") if isinstance(source, dict) else None
        return revision if isinstance(revision, str) else None

    @property
    def info_path(self) -> Path:
        return self.dir / INFO_FILE

    @property
    def meta(self) -> Mapping[str, Any]:
        meta = (self.entry or {}).get(META_KEY)
        return meta if isinstance(meta, dict) else {}

    def columns(self) -> Columns:
        return Columns.from_entry(self.name, self.entry or {})

    def recorded_mode(self) -> tuple[Mode, str] | None:
        """A mode written into the entry by hand (no analysis behind it), with its reason."""
        meta = self.meta
        if meta.get("mode") not in MODES or "decided_by" in meta:  # decided_by: an old oda-sft's analysis
            return None
        return meta["mode"], str(meta.get("reason") or "recorded in dataset_info.json")

    def analyses(self) -> list[CachedAnalysis]:
        stored = self.meta.get(ANALYSES_KEY)
        if not isinstance(stored, dict):
            return []
        found = (CachedAnalysis.from_json(tok, a) for tok, a in stored.items() if isinstance(a, dict))
        return [a for a in found if a is not None]

    def current_analysis(
        self, tokenizer: str, rule: Mapping[str, Any]
    ) -> tuple[CachedAnalysis | None, tuple[str, ...]]:
        """The stored analysis of this very content under this rule, preferring `tokenizer`'s;
        and notes on the analyses it had to ignore."""
        every = self.analyses()
        if not every:
            return None, ()
        fresh = [a for a in every if a.sha256 == self.sha256]
        notes: list[str] = []
        if not fresh:
            then = ", ".join(sorted({a.sha256[:12] for a in every}))
            now = f"{self.sha256[:12]} now" if self.sha256 else "the file is missing now"
            notes.append(
                f"the cached length analysis of {self.name} is ignored: {self.file} changed since it was measured "
                f"(sha256 {then} then, {now})"
            )
        same_rule = [a for a in fresh if a.rule in (None, rule)]
        if fresh and not same_rule:
            notes.append(f"the cached length analysis of {self.name} used another rule ({fresh[0].rule}); ignored")
        same_tokenizer = [a for a in same_rule if a.tokenizer == tokenizer]
        chosen = same_tokenizer or sorted(same_rule, key=lambda a: a.measured_at)
        return (chosen[-1] if chosen else None), tuple(notes)


@dataclass(frozen=True)
class DatasetDir:
    path: Path
    info: dict[str, Any]

    @classmethod
    def load(cls, path: Path) -> DatasetDir:
        """The registry in `path`. A dir without dataset_info.json is an empty registry (the first `oda-sft data
        add` writes one), and so is the per-user default dir before it exists; any other missing dir is an error."""
        path = path.expanduser()
        if is_user_dataset_dir(path) and not path.is_dir():
            return cls(path=path.absolute(), info={})
        if not path.is_dir():
            raise DatasetError(
                f"dataset dir {path} does not exist: pass --dataset-dir with the directory "
                f"that holds {INFO_FILE}, or create it"
            )
        info_path = path / INFO_FILE
        if not info_path.is_file():
            return cls(path=path.resolve(), info={})
        return cls(path=path.resolve(), info=parse_info(info_path, info_path.read_text(encoding="utf-8")))

    @property
    def info_path(self) -> Path:
        return self.path / INFO_FILE

    def names(self) -> list[str]:
        return sorted(self.info)

    def entry(self, name: str) -> dict[str, Any] | None:
        value = self.info.get(name)
        return value if isinstance(value, dict) else None

    def data_file(self, name: str) -> Path | None:
        file_name = (self.entry(name) or {}).get("file_name")
        return self.path / file_name if isinstance(file_name, str) else None

    def resolve(self, name: str) -> ResolvedDataset:
        """Look the dataset up once: entry, file, sha256 (through oda-sft's hash cache), catalog record.

        A name this dir does not register but the package ships (the demo) resolves to the shipped copy."""
        if name not in self.info and name in builtin_names():
            return replace(_builtin_dir().resolve(name), builtin=True)
        file = self.data_file(name)
        sha = file_sha256(file) if file is not None and file.is_file() else None
        return ResolvedDataset(name, self.path, self.entry(name), file, sha, DATASETS.get(name))


@cache
def _builtin_dir() -> DatasetDir:
    return DatasetDir.load(demo_dataset_dir())


def builtin_names() -> list[str]:
    """Datasets shipped inside the package (the demo), usable whatever the dataset dir holds."""
    return _builtin_dir().names()
