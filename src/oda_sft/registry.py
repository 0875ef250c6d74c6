"""The dataset dir and its dataset_info.json, LLaMA-Factory's registry of dataset names."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from oda_sft.catalog import MODES, Mode
from oda_sft.errors import DatasetError

INFO_FILE = "dataset_info.json"
META_KEY = "oda_sft"  # oda-sft's own fields inside an entry; LLaMA-Factory ignores unknown keys


@dataclass(frozen=True)
class DatasetDir:
    path: Path
    info: dict[str, Any]

    @classmethod
    def load(cls, path: Path) -> DatasetDir:
        path = path.expanduser()
        if not path.is_dir():
            raise DatasetError(
                f"dataset dir {path} does not exist: pass --dataset-dir with the directory "
                f"that holds {INFO_FILE}, or create it"
            )
        info_path = path / INFO_FILE
        if not info_path.is_file():
            raise DatasetError(
                f"{info_path} is missing: register a dataset with `oda-sft data add`, "
                "or point --dataset-dir at a directory that has one"
            )
        try:
            info = json.loads(info_path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as exc:
            raise DatasetError(
                f"{info_path} is not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg}): fix the file"
            ) from None
        if not isinstance(info, dict):
            raise DatasetError(f"{info_path} must hold a JSON object of name -> entry: fix the file")
        return cls(path=path.resolve(), info=info)

    @property
    def info_path(self) -> Path:
        return self.path / INFO_FILE

    def names(self) -> list[str]:
        return sorted(self.info)

    def entry(self, name: str) -> dict[str, Any] | None:
        value = self.info.get(name)
        return value if isinstance(value, dict) else None

    def recorded_mode(self, name: str) -> tuple[Mode, str] | None:
        """The mode oda-sft recorded for a registered dataset, with what decided it."""
        entry = self.entry(name) or {}
        meta = entry.get(META_KEY)
        if not isinstance(meta, dict) or meta.get("mode") not in MODES:
            return None
        mode: Mode = meta["mode"]
        return mode, str(meta.get("reason") or "recorded in dataset_info.json")

    def data_file(self, name: str) -> Path | None:
        entry = self.entry(name) or {}
        file_name = entry.get("file_name")
        return self.path / file_name if isinstance(file_name, str) else None
