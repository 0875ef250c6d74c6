"""Tokenize once per (dataset content, tokenizer, template, cutoff_len, packing), via LLaMA-Factory's
`tokenized_path`: a run that finds a complete entry loads it; a run that does not writes a staging
copy, which oda-sft promotes once LLaMA-Factory has finished writing it.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from oda_sft.util.paths import cache_dir

# Data arguments that change what preprocessing produces. Seeds and training settings do not.
_DATA_KEYS = (
    "template",
    "cutoff_len",
    "packing",
    "neat_packing",
    "train_on_prompt",
    "mask_history",
    "max_samples",
    "val_size",
    "tool_format",
    "default_system",
    "enable_thinking",
)
_TOKENIZER_FILES = (
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "added_tokens.json",
    "vocab.json",
    "merges.txt",
    "tokenizer.model",
)


@dataclass(frozen=True)
class CacheEntry:
    key: str
    path: Path  # the complete entry
    hit: bool
    run_id: str  # one staging copy per output_dir, so concurrent runs never share a half-written one

    @property
    def staging(self) -> Path:
        return self.path.with_name(f"{self.path.name}.staging-{self.run_id}")

    @property
    def tokenized_path(self) -> Path:
        """What LLaMA-Factory is told: the entry on a hit, the staging copy on a miss."""
        return self.path if self.hit else self.staging


def tokenizer_fingerprint(model_path: str) -> str:
    path = Path(model_path)
    if not path.is_dir():
        return f"hub:{model_path}"  # a hub id names a fixed tokenizer for a given revision
    digest = hashlib.sha256()
    for name in _TOKENIZER_FILES:
        file = path / name
        if file.is_file():
            digest.update(name.encode() + b"\0" + file.read_bytes())
    return f"files:{digest.hexdigest()}"


def cache_key(config: dict[str, Any], dataset_sha256: str, dataset_entry: dict[str, Any]) -> str:
    parts = {
        "dataset_sha256": dataset_sha256,
        # How LLaMA-Factory reads the file (columns, formatting, tags); oda-sft's own notes do not count.
        "dataset_entry": {k: v for k, v in dataset_entry.items() if k != "oda_sft"},
        "tokenizer": tokenizer_fingerprint(str(config["model_name_or_path"])),
        "data_args": {k: config.get(k) for k in _DATA_KEYS},
        "llamafactory": _version("llamafactory"),
        "datasets": _version("datasets"),
    }
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()[:20]


def _version(name: str) -> str | None:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return None


def root() -> Path:
    return cache_dir() / "tokenized"


def is_complete(path: Path) -> bool:
    """A `DatasetDict.save_to_disk` tree whose every split wrote state.json (its last file)."""
    try:
        splits = json.loads((path / "dataset_dict.json").read_text())["splits"]
    except (OSError, ValueError, KeyError, TypeError):
        return False
    return bool(splits) and all((path / split / "state.json").is_file() for split in splits)


def prepare(config: dict[str, Any], dataset_sha256: str, dataset_entry: dict[str, Any]) -> CacheEntry:
    """Find the entry for this config; finish or discard what an earlier attempt of this run left."""
    key = cache_key(config, dataset_sha256, dataset_entry)
    run_id = hashlib.sha256(str(config["output_dir"]).encode()).hexdigest()[:10]
    entry = CacheEntry(key, root() / key, False, run_id)
    if is_complete(entry.path):
        return CacheEntry(key, entry.path, True, run_id)
    if entry.staging.exists():
        promote(entry)  # an interrupted attempt may have finished tokenizing before it stopped
    return CacheEntry(key, entry.path, is_complete(entry.path), run_id)


def promote(entry: CacheEntry) -> bool:
    """Move a complete staging copy into place. Incomplete copies are removed: they are ours."""
    staging = entry.staging
    if entry.hit or not staging.exists():
        return False
    if not is_complete(staging):
        shutil.rmtree(staging, ignore_errors=True)
        return False
    try:
        os.rename(staging, entry.path)
    except OSError:  # another run promoted the same content first
        shutil.rmtree(staging, ignore_errors=True)
        return False
    return True


def count_tokens(path: Path) -> int | None:
    """Real (unpadded) tokens in the train split of a tokenized entry, read straight from its Arrow files."""
    import pyarrow as pa
    import pyarrow.compute as pc

    files = sorted((path / "train").glob("*.arrow"))
    if not files:
        return None
    total = 0
    for file in files:
        with pa.memory_map(str(file)) as source:
            table = pa.ipc.open_stream(source).read_all()
        if "input_ids" not in table.column_names:
            return None
        total += int(pc.sum(pc.list_value_length(table["input_ids"])).as_py() or 0)
    return total
