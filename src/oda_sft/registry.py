"""The dataset dir and its dataset_info.json, LLaMA-Factory's registry of dataset names."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from oda_sft.catalog import MODES, Mode
from oda_sft.errors import DatasetError
from oda_sft.hashing import file_sha256
from oda_sft.infofile import parse_info

INFO_FILE = "dataset_info.json"
META_KEY = "oda_sft"  # oda-sft's own fields inside an entry; LLaMA-Factory ignores unknown keys


@dataclass(frozen=True)
class CachedAnalysis:
    """A length analysis `oda-sft data inspect` stored in an entry (see lengths.LengthReport)."""

    tokenizer: str
    mode: Mode
    reason: str
    sha256: str
    measured_at: str
    exact: bool
    rule: dict[str, Any] | None = None  # the decision rule it was decided under

    @classmethod
    def from_json(cls, tokenizer: str, data: dict[str, Any]) -> CachedAnalysis:
        return cls(
            tokenizer=tokenizer,
            mode=data["mode"],
            reason=str(data.get("reason", "")),
            sha256=str(data.get("sha256", "")),
            measured_at=str(data.get("measured_at", "")),
            exact=bool(data.get("exact", False)),
            rule=data["rule"] if isinstance(data.get("rule"), dict) else None,
        )


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
        return cls(path=path.resolve(), info=parse_info(info_path, info_path.read_text(encoding="utf-8")))

    @property
    def info_path(self) -> Path:
        return self.path / INFO_FILE

    def names(self) -> list[str]:
        return sorted(self.info)

    def entry(self, name: str) -> dict[str, Any] | None:
        value = self.info.get(name)
        return value if isinstance(value, dict) else None

    def meta(self, name: str) -> dict[str, Any]:
        """oda-sft's own fields of an entry ({} when it has none)."""
        meta = (self.entry(name) or {}).get(META_KEY)
        return meta if isinstance(meta, dict) else {}

    def recorded_mode(self, name: str, rule: dict[str, Any] | None = None) -> tuple[Mode, str] | None:
        """The mode oda-sft recorded for a registered dataset, with what decided it.

        A mode that came from a length analysis counts only while the data file still has the
        content that was measured; a mode written by hand (no analysis) is taken as it is.
        """
        meta = self.meta(name)
        if meta.get("mode") not in MODES:
            return None
        mode: Mode = meta["mode"]
        reason = str(meta.get("reason") or "recorded in dataset_info.json")
        decided_by = meta.get("decided_by")
        if isinstance(decided_by, dict):
            if decided_by.get("sha256") != self.file_sha256(name):
                return None
            if rule is not None and decided_by.get("rule") not in (None, rule):
                return None  # decided under another threshold or percentage
            reason += f"; measured with {decided_by.get('tokenizer')}"
        return mode, reason

    def file_sha256(self, name: str) -> str | None:
        path = self.data_file(name)
        return file_sha256(path) if path is not None and path.is_file() else None

    def cached_analysis(self, name: str, tokenizer: str | None = None) -> tuple[CachedAnalysis | None, str]:
        """The cached length analysis to trust, preferring `tokenizer`'s, and a note when one was ignored."""
        analyses = self.meta(name).get("analyses")
        if not isinstance(analyses, dict) or not analyses:
            return None, ""
        current = self.file_sha256(name)
        found = [
            CachedAnalysis.from_json(tok, a)
            for tok, a in analyses.items()
            if isinstance(a, dict) and a.get("mode") in MODES and a.get("sha256") == current
        ]
        if not found:
            data = self.data_file(name)
            now = f"{current[:12]} now" if current else "the file is missing now"
            then = ", ".join(sorted({str(a.get("sha256", "?"))[:12] for a in analyses.values() if isinstance(a, dict)}))
            return None, (
                f"the cached length analysis of {name} is ignored: {data} changed since it was measured "
                f"(sha256 {then} then, {now})"
            )
        same = [a for a in found if a.tokenizer == tokenizer]
        return (same or sorted(found, key=lambda a: a.measured_at))[-1], ""

    def data_file(self, name: str) -> Path | None:
        entry = self.entry(name) or {}
        file_name = entry.get("file_name")
        return self.path / file_name if isinstance(file_name, str) else None
