"""The dataset dir and its dataset_info.json, LLaMA-Factory's registry of dataset names.

A dataset is resolved once per plan (`DatasetDir.resolve`), into one value that carries its
entry, data file, identity (sha256 and the file stamp it holds for), columns and what oda-sft
recorded about it. Everything after planning reads that value; nothing looks the dataset up again.
Resolving checks the entry the way LLaMA-Factory will read it, so a broken entry is a one-line
error before anything launches, not a traceback seconds into the trainer.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, replace
from functools import cache
from pathlib import Path
from typing import Any, Literal

from oda_sft.data import files
from oda_sft.data.formats.alpaca import Columns
from oda_sft.data.measure.length_rule import Rule
from oda_sft.data.registry import hashing, transaction
from oda_sft.data.registry.info_file import INFO_FILE, RegistryFile
from oda_sft.datasets_catalog import DATASETS, CatalogDataset
from oda_sft.datasets_catalog.advice import add_command
from oda_sft.errors import DatasetError
from oda_sft.presets import MODES, Mode
from oda_sft.util.console import say
from oda_sft.util.paths import demo_dataset_dir, is_user_dataset_dir

__all__ = ["ANALYSES_KEY", "INFO_FILE", "META_KEY", "CachedAnalysis", "DatasetDir", "ResolvedDataset"]

# Entries LLaMA-Factory loads from elsewhere than a local file (data/parser.py: get_dataset_list).
REMOTE_KEYS = ("hf_hub_url", "ms_hub_url", "om_hub_url", "script_url", "cloud_file_name")
# The local file types LLaMA-Factory 0.9.4 loads (extras/constants.py: FILEEXT2TYPE).
FILE_TYPES = ("arrow", "csv", "json", "jsonl", "parquet", "txt")
FORMATTINGS = ("alpaca", "sharegpt", "openai")
# A file_name outside the dataset dir is read only when the person running oda-sft says so.
OUTSIDE_ENV = "ODA_SFT_ALLOW_OUTSIDE_DATASET_DIR"
META_KEY = "oda_sft"  # oda-sft's own fields inside an entry; LLaMA-Factory ignores unknown keys
ANALYSES_KEY = "analyses"  # META_KEY -> tokenizer -> a length analysis (data/registry/analysis.py writes them)


@dataclass(frozen=True)
class CachedAnalysis:
    """A length analysis stored in an entry, made with one tokenizer of one version of the file.
    data/registry/analysis.py writes them; this is the one reader."""

    tokenizer: str
    mode: Mode
    reason: str
    sha256: str
    measured_at: str
    rule: Mapping[str, Any] | None  # the decision rule it was decided under
    count: int | None = None  # records measured
    exact: bool = False  # every sample tokenized (`data inspect --exact`)
    mean: float | None = None  # mean tokens per sample, from an exact analysis

    @classmethod
    def from_json(cls, tokenizer: str, data: Mapping[str, Any]) -> CachedAnalysis | None:
        if data.get("mode") not in MODES:
            return None
        stats = data.get("stats")
        mean = stats.get("mean") if isinstance(stats, dict) else None
        count = data.get("count")
        return cls(
            tokenizer=tokenizer,
            mode=data["mode"],
            reason=str(data.get("reason", "")),
            sha256=str(data.get("sha256", "")),
            measured_at=str(data.get("measured_at", "")),
            rule=data["rule"] if isinstance(data.get("rule"), dict) else None,
            count=count if isinstance(count, int) and not isinstance(count, bool) else None,
            exact=data.get("exact") is True,
            mean=float(mean) if isinstance(mean, int | float) and not isinstance(mean, bool) else None,
        )


def stored_analyses(meta: Mapping[str, Any]) -> list[CachedAnalysis]:
    """Every well-formed length analysis in an entry's oda-sft fields."""
    stored = meta.get(ANALYSES_KEY)
    if not isinstance(stored, dict):
        return []
    found = (CachedAnalysis.from_json(tok, a) for tok, a in stored.items() if isinstance(a, dict))
    return [a for a in found if a is not None]


def choose_analysis(
    every: list[CachedAnalysis], sha256: str | None, tokenizer: str | None, rule: Mapping[str, Any]
) -> CachedAnalysis | None:
    """The analysis that decides for this content under this rule: `tokenizer`'s when there is one,
    else the newest. `train` and `list-datasets` both decide through this."""
    same_rule = [a for a in every if a.sha256 == sha256 and a.rule in (None, rule)]
    chosen = [a for a in same_rule if a.tokenizer == tokenizer] or sorted(same_rule, key=lambda a: a.measured_at)
    return chosen[-1] if chosen else None


def recorded_mode(meta: Mapping[str, Any]) -> tuple[Mode, str] | None:
    """A mode written into the entry by hand (no analysis behind it), with its reason."""
    if meta.get("mode") not in MODES or "decided_by" in meta:  # decided_by: an old oda-sft's analysis
        return None
    return meta["mode"], str(meta.get("reason") or "recorded in dataset_info.json")


@dataclass(frozen=True)
class ResolvedDataset:
    """A dataset name, looked up once: what LLaMA-Factory will read and what oda-sft knows of it."""

    name: str
    dir: Path  # the dataset dir, absolute
    entry: Mapping[str, Any] | None  # its dataset_info.json entry; None when it is not registered
    file: Path | None  # the local data file the entry names
    sha256: str | None  # of that file, when it exists
    catalog: CatalogDataset | None
    identity: hashing.Identity | None = None  # the sha256 and the file stamp it was taken under
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
        return recorded_mode(self.meta)

    def analyses(self) -> list[CachedAnalysis]:
        return stored_analyses(self.meta)

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
        chosen = choose_analysis(every, self.sha256, tokenizer, rule)
        if fresh and chosen is None:
            notes.append(f"the cached length analysis of {self.name} used another rule ({fresh[0].rule}); ignored")
        return chosen, tuple(notes)


def entry_problem(
    name: str, entry: Any, directory: Path, kind: str | Literal[False] | None = False
) -> tuple[str, str] | None:
    """(what is wrong, the fix) for an entry LLaMA-Factory cannot train on as SFT data; None when it can.

    kind: what the entry's file is (files.describe), when the caller knows it already."""
    redo = f"or register the data again with `{add_command(name, directory, '--force')}`"
    if not isinstance(entry, dict):
        return f"its entry is {type(entry).__name__}, not an object", f"fix the entry, {redo}"
    formatting = entry.get("formatting", "alpaca")
    if formatting not in FORMATTINGS:
        return f"formatting {formatting!r} is not one LLaMA-Factory reads", "use alpaca, sharegpt or openai"
    if entry.get("ranking"):
        return "ranking is true (a preference dataset), which SFT cannot train on", f"set it to false, {redo}"
    for key in ("columns", "tags"):
        value = entry.get(key)
        if value is not None and not (
            isinstance(value, dict) and all(isinstance(v, str) or v is None for v in value.values())
        ):
            return f"{key!r} must be an object of names", f"fix the entry, {redo}"
    samples = entry.get("num_samples")
    if samples is not None and (not isinstance(samples, int) or isinstance(samples, bool) or samples < 1):
        return f"num_samples {samples!r} is not a positive whole number", "fix or remove it"
    remote = [k for k in REMOTE_KEYS if k in entry]
    if remote:
        value = entry[remote[0]]
        if not isinstance(value, str) or not value:
            return f"{remote[0]} must be a non-empty string", "fix the entry"
        return None
    file_name = entry.get("file_name")
    if file_name is None:
        return (
            "it has no file_name (nor hf_hub_url or another source), so LLaMA-Factory has nothing to load",
            f'add "file_name": "{name}.json" for a file in {directory}, {redo}',
        )
    if not isinstance(file_name, str) or not file_name:
        return f"file_name {file_name!r} is not a file name", f"fix the entry, {redo}"
    if not files.is_inside(directory, file_name) and os.environ.get(OUTSIDE_ENV, "") in ("", "0"):
        return (
            f"file_name {file_name!r} points outside the dataset dir {directory}",
            f"move the file into {directory} (or link it there) and name it relative to the dir, "
            f"or set {OUTSIDE_ENV}=1 to read it where it is",
        )
    joined = os.path.join(directory, file_name)
    if kind is False:
        kind = files.describe(joined)
    if kind == "a directory" or (kind or "").startswith("missing"):
        return None  # a directory: LLaMA-Factory reads every file in it; missing: not there yet (launch refuses)
    if kind is not None:
        return f"its file {joined} is {kind}", f"restore the file, {redo}"
    if os.path.splitext(joined)[1].lower().lstrip(".") not in FILE_TYPES:
        return (
            f"its file {joined} is not a type LLaMA-Factory loads",
            f"use one of .{', .'.join(FILE_TYPES)}, {redo}",
        )
    return None


@dataclass(frozen=True)
class DatasetDir:
    path: Path
    info: dict[str, Any]

    @classmethod
    def load(cls, path: Path) -> DatasetDir:
        """The registry in `path`. A dir without dataset_info.json is an empty registry (the first `oda-sft data
        add` writes one), and so is the per-user default dir before it exists; any other missing dir is an error."""
        path = path.expanduser()
        if is_user_dataset_dir(path) and not path.exists():
            return cls(path=path.absolute(), info={})
        kind = files.describe(path)
        if kind is not None and kind != "a directory":
            what = "does not exist" if kind.startswith("missing") else f"is {kind}"
            raise DatasetError(
                f"dataset dir {path} {what}: pass --dataset-dir with the directory that holds {INFO_FILE}, or create it"
            )
        registry = RegistryFile(path.resolve())
        registry.check()  # a special file or dangling link is refused; a missing one is an empty registry
        for note in transaction.recover(registry):  # a `data add` killed half way is undone before anyone reads
            say(note)
        return cls(path=registry.dir, info=registry.read())

    @property
    def info_path(self) -> Path:
        return self.path / INFO_FILE

    def names(self) -> list[str]:
        return sorted(self.info)

    def entry(self, name: str) -> dict[str, Any] | None:
        value = self.info.get(name)
        return value if isinstance(value, dict) else None

    def data_file(self, name: str) -> Path | None:
        """The local file an entry names (as LLaMA-Factory joins it to the dir); None for remote entries."""
        entry = self.entry(name) or {}
        if any(k in entry for k in REMOTE_KEYS):
            return None
        file_name = entry.get("file_name")
        return Path(os.path.join(self.path, file_name)) if isinstance(file_name, str) and file_name else None

    def check(self, name: str, kind: str | Literal[False] | None = False) -> None:
        """A one-line error naming the registry and the fix when `name`'s entry cannot be trained on."""
        if name not in self.info:
            return
        problem = entry_problem(name, self.info[name], self.path, kind)
        if problem is not None:
            raise DatasetError(f"dataset {name} in {self.info_path}: {problem[0]}: {problem[1]}")

    def known_mode(self, name: str) -> str:
        """What `list-datasets` shows: the mode an analysis of the file's current content decided, else a
        mode written by hand, else "unknown"; "invalid" for an entry `train` would refuse. Lean on purpose:
        it runs for every entry of registries with thousands."""
        entry = self.info.get(name)
        file_name = entry.get("file_name") if isinstance(entry, dict) else None
        path: str | None = None
        local = isinstance(entry, dict) and not any(k in entry for k in REMOTE_KEYS)
        if local and isinstance(file_name, str) and file_name:
            path = os.path.join(self.path, file_name)
        st: os.stat_result | None = None
        kind: str | Literal[False] | None = False  # False: no local file to look at
        if path is not None:
            st, kind = files.examine(path)
        if entry_problem(name, entry, self.path, kind) is not None:
            return "invalid"  # `train` says why, in one line
        assert isinstance(entry, dict)
        meta = entry.get(META_KEY)
        meta = meta if isinstance(meta, dict) else {}
        if path is not None and kind is None:
            try:  # a stamp the cache knows is enough for a listing; anything else is hashed (hashing.listed)
                sha = hashing.listed(path, st) or hashing.identify(path, checked=True).sha256
            except DatasetError:
                return "invalid"
            # What `train --mode auto` would read (no preset here: any tokenizer's analysis counts).
            chosen = choose_analysis(stored_analyses(meta), sha, None, Rule.parse().as_json())
            if chosen is not None:
                return chosen.mode
        recorded = recorded_mode(meta)
        return recorded[0] if recorded else "unknown"

    def resolve(self, name: str) -> ResolvedDataset:
        """Look the dataset up once: entry (checked), file, identity (through the hash cache), catalog record.

        A name this dir does not register but the package ships (the demo) resolves to the shipped copy."""
        if name not in self.info and name in builtin_names():
            return replace(builtin_dir().resolve(name), builtin=True)
        file = self.data_file(name)
        kind: str | Literal[False] | None = False
        if file is not None:
            kind = files.describe(file)  # one stat serves both checks
        self.check(name, kind)
        identity = hashing.identify(file, checked=True) if file is not None and kind is None else None
        return ResolvedDataset(
            name,
            self.path,
            self.entry(name),
            file,
            identity.sha256 if identity else None,
            DATASETS.get(name),
            identity,
        )


@cache
def builtin_dir() -> DatasetDir:
    return DatasetDir.load(demo_dataset_dir())


def builtin_names() -> list[str]:
    """Datasets shipped inside the package (the demo), usable whatever the dataset dir holds."""
    return builtin_dir().names()
