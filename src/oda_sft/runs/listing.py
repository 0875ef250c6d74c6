"""Find the runs under an output root and summarise them from their manifests and logs."""

from __future__ import annotations

import os
import socket
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from oda_sft.runs.manifest import MANIFEST_NAME, read
from oda_sft.util import tables


@dataclass(frozen=True)
class RunSummary:
    path: str
    model: str
    dataset: str
    seed: int | None
    mode: str
    profile: str
    status: str
    final_loss: float | None
    train_runtime: float | None
    tokens_per_second: float | None
    started_at: str | None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def find_manifests(root: Path) -> list[Path]:
    found = []
    for dirpath, dirnames, filenames in os.walk(root):
        # Checkpoints and tokenized data hold many files and never a manifest.
        dirnames[:] = sorted(d for d in dirnames if not d.startswith(("checkpoint-", ".")))
        if MANIFEST_NAME in filenames:
            found.append(Path(dirpath) / MANIFEST_NAME)
    return found


def _status(manifest: dict[str, Any]) -> str:
    status = str(manifest.get("status", "unknown"))
    attempts = manifest.get("attempts") or [{}]
    pid = attempts[-1].get("pid")
    # A run killed with SIGKILL (or a lost node) never updates its manifest.
    if status == "running" and manifest.get("host") == socket.gethostname() and isinstance(pid, int):
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return "stale"
        except PermissionError:
            pass
    return status


def summarise(root: Path) -> list[RunSummary]:
    runs = []
    for path in find_manifests(root):
        m = read(path)
        if m is None:
            continue
        results = m.get("results") or {}
        runs.append(
            RunSummary(
                path=str(path.parent),
                model=str((m.get("model") or {}).get("preset", "")),
                dataset=str((m.get("dataset") or {}).get("name", "")),
                seed=m.get("seed"),
                mode=str((m.get("mode") or {}).get("mode", "")),
                profile=str(m.get("profile", "default")),
                status=_status(m),
                final_loss=results.get("final_loss"),
                train_runtime=results.get("train_runtime"),
                tokens_per_second=results.get("tokens_per_second"),
                started_at=m.get("started_at"),
            )
        )
    return sorted(runs, key=lambda r: (r.model, r.dataset, r.seed if r.seed is not None else -1, r.path))


def format_table(runs: list[RunSummary]) -> str:
    headers = ("MODEL", "DATASET", "SEED", "MODE", "STATUS", "FINAL LOSS", "RUNTIME S", "TOKENS/S", "PATH")

    def num(value: float | None, fmt: str) -> str:
        return "" if value is None else format(value, fmt)

    rows = [
        (
            r.model,
            r.dataset,
            "" if r.seed is None else str(r.seed),
            r.mode,
            r.status,
            num(r.final_loss, ".4f"),
            num(r.train_runtime, ".1f"),
            num(r.tokens_per_second, ",.0f"),
            r.path,
        )
        for r in runs
    ]
    return tables.format_table(headers, rows)
