"""The run manifest's `evals`: one record per evaluation settings (read by `oda-sft rank`).

  {"id", "settings", "opencompass": {"version", "path", "fork"}, "status", "started_at", "ended_at",
   "scores": {benchmark: 0-100}, "domains": {domain: mean}, "overall", "work_dir",
   "stamp": OpenCompass's folder under work_dir that this attempt works in (a resume reuses it),
   "host", "pid": the oda-sft process running it (named to whoever is refused while it runs),
   "omni_judge" (with Omni-MATH): {"model", "urls": the --judge-url servers, "served_by": "user" or "oda-sft"}}

A record that --force replaced moves to evals_replaced with its paths pointing where its files went
(`moved_to`: the eval dir it was moved to; null when its files were already gone).

Callers hold the run's lock (runs/lock.py) for the whole read-modify-write; writes are atomic.
"""

from __future__ import annotations

import os
import socket
from pathlib import Path
from typing import Any

from oda_sft.runs import manifest
from oda_sft.util.clock import utc_now
from oda_sft.util.fs import atomic_write_json

EVALS = "evals"
REPLACED = "evals_replaced"  # records that --force evaluated again (their files were moved aside)


def manifest_path(run_dir: Path) -> Path:
    return run_dir / manifest.MANIFEST_NAME


def evals(run_dir: Path) -> list[dict[str, Any]]:
    data = manifest.read(manifest_path(run_dir)) or {}
    found = data.get(EVALS)
    return [r for r in found if isinstance(r, dict)] if isinstance(found, list) else []


def find(run_dir: Path, eval_id: str) -> dict[str, Any] | None:
    return next((r for r in evals(run_dir) if r.get("id") == eval_id), None)


def put(
    run_dir: Path, record: dict[str, Any], replace_old: bool = False, moved: tuple[Path, Path | None] | None = None
) -> dict[str, Any]:
    """Write `record` in place of the one with its id (moved to evals_replaced when replace_old; `moved`: its eval
    dir and where --force moved it, or None when it was not there)."""
    path = manifest_path(run_dir)
    data = manifest.read(path) or {}
    kept = [r for r in evals(run_dir) if r.get("id") != record["id"]]
    if replace_old:
        old = [r for r in evals(run_dir) if r.get("id") == record["id"]]
        if moved is not None:
            old = [_moved(r, *moved) for r in old]
        data[REPLACED] = [*(data.get(REPLACED) or []), *old]
    data[EVALS] = [*kept, record]
    atomic_write_json(path, data)
    return record


def _moved(record: dict[str, Any], eval_dir: Path, moved_to: Path | None) -> dict[str, Any]:
    """The record with every path inside eval_dir (work_dir, summary_csv, ...) pointing where it went: without
    this it would name the new eval's folders, which are made at the same paths."""
    out: dict[str, Any] = {}
    for key, value in record.items():
        if isinstance(value, str) and Path(value).is_absolute() and Path(value).is_relative_to(eval_dir):
            value = str(moved_to / Path(value).relative_to(eval_dir)) if moved_to is not None else None
        out[key] = value
    return {**out, "moved_to": str(moved_to) if moved_to is not None else None}


def new_record(
    eval_id: str, settings: dict[str, Any], opencompass: dict[str, Any], work_dir: Path, stamp: str
) -> dict[str, Any]:
    return {
        "id": eval_id,
        "settings": settings,
        "opencompass": opencompass,
        "status": "running",
        "started_at": utc_now(),
        "ended_at": None,
        "scores": {},
        "domains": {},
        "overall": None,
        "work_dir": str(work_dir),
        "stamp": stamp,
        "host": socket.gethostname(),
        "pid": os.getpid(),
    }


def ensure_base_manifest(run_dir: Path, preset: str, model_path: str) -> None:
    """The untuned base model's own run dir: a manifest marked base, so `rank` can tell it apart."""
    path = manifest_path(run_dir)
    if manifest.read(path) is not None:
        return
    atomic_write_json(path, {
        "schema": manifest.SCHEMA,
        "base": True,
        "model": {"preset": preset, "path": model_path},
        "status": "finished",
        "output_dir": str(run_dir),
        EVALS: [],
    })  # fmt: skip
