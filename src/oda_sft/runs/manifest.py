"""oda_sft_run.json: what a run used and how it ended, written at start and updated at the end."""

from __future__ import annotations

import json
import os
import socket
import sys
from pathlib import Path
from typing import Any, Literal

from oda_sft import __version__
from oda_sft.runs.provenance import git_commit, package_versions
from oda_sft.runs.results import training_results
from oda_sft.util.clock import utc_now as now
from oda_sft.util.fs import atomic_write_json
from oda_sft.util.hardware import gpu_names
from oda_sft.util.secrets import redact, redact_argv

MANIFEST_NAME = "oda_sft_run.json"
Status = Literal["running", "finished", "failed", "interrupted"]
SCHEMA = 1


def read(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def examine(path: Path) -> tuple[dict[str, Any] | None, str | None]:
    """(the manifest, None), or (None, what is wrong: missing, unreadable, corrupt, not an object)."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None, f"{path.parent} holds no {MANIFEST_NAME}"
    except (OSError, ValueError) as exc:
        return None, f"{path} cannot be read ({getattr(exc, 'strerror', None) or exc})"
    try:
        data = json.loads(text)
    except ValueError:
        return None, f"{path} is corrupt (not valid JSON: cut short or overwritten)"
    if not isinstance(data, dict):
        return None, f"{path} is not a record oda-sft wrote (valid JSON, but not an object)"
    return data, None


def start(
    path: Path,
    *,
    run: dict[str, Any],
    launch_argv: list[str],
    launch_env: dict[str, str],
    gpu_count: int,
    world_size: int,
    resumed_from: str | None,
    note: str | None = None,
) -> dict[str, Any]:
    """Write the manifest for a new attempt; an interrupted run's earlier attempts are kept. note says
    something unusual about the start (the earlier record was unusable and set aside)."""
    previous = read(path) or {}
    # Called under the run's lock: an earlier attempt still marked running ended unrecorded (killed, node lost).
    attempts = [_unrecorded_end(a) for a in previous.get("attempts", [])]
    attempt = {"started_at": now(), "ended_at": None, "status": "running", "exit_code": None, "pid": os.getpid()}
    dataset = run.get("dataset")
    # Each attempt's data, so a run trained on two contents shows it (train refuses to resume on other data).
    attempt["dataset_sha256"] = dataset.get("sha256") if isinstance(dataset, dict) else None
    if resumed_from:
        attempt["resumed_from"] = resumed_from
    if note:
        attempt["note"] = note
    attempts.append(attempt)
    manifest: dict[str, Any] = {
        "schema": SCHEMA,
        "oda_sft": {"version": __version__, "git_commit": git_commit()},
        "versions": package_versions(),
        "command_line": redact_argv(sys.argv),
        "launch": {"argv": launch_argv, "env": redact(launch_env)},
        **run,
        "host": socket.gethostname(),
        "gpus": {"count": gpu_count, "names": gpu_names()},
        "world_size": world_size,
        "status": "running",
        "started_at": previous.get("started_at") or attempt["started_at"],
        "ended_at": None,
        "exit_code": None,
        "attempts": attempts,
        "results": {},
    }
    atomic_write_json(path, manifest)
    return manifest


def _unrecorded_end(attempt: Any) -> Any:
    if not isinstance(attempt, dict) or attempt.get("status") != "running":
        return attempt
    note = "ended without a record (its oda-sft was killed, or its node lost); found when the next attempt started"
    return {**attempt, "status": "interrupted", "note": note}


def finish(
    path: Path,
    manifest: dict[str, Any],
    status: Status,
    exit_code: int,
    dataset_tokens: int | None = None,
    note: str | None = None,
) -> dict[str, Any]:
    """Record how the attempt ended and the run's results (runs/results.py: the whole run's, over all
    its attempts, not what LLaMA-Factory reported for the last one).

    dataset_tokens (real, unpadded tokens in one epoch) turns runtime into tokens/s when
    LLaMA-Factory does not report it itself. note says something unusual about the ending.
    """
    ended = now()
    manifest = {**manifest, "status": status, "exit_code": exit_code, "ended_at": ended}
    attempts = list(manifest["attempts"])
    attempts[-1] = {**attempts[-1], "status": status, "exit_code": exit_code, "ended_at": ended}
    if note:
        attempts[-1]["note"] = note
    manifest["attempts"] = attempts
    manifest["results"] = training_results(path.parent, attempts, dataset_tokens)
    atomic_write_json(path, manifest)
    return manifest


def settle_finished(output_dir: Path) -> str | None:
    """A finished run (LLaMA-Factory wrote all_results.json) whose manifest says otherwise, because it
    was stopped after its results were written: make the manifest say finished, and draw the loss plot
    it did not get to. Returns what was done, or None when nothing needed it. Call it under the run's lock."""
    path = output_dir / MANIFEST_NAME
    record = read(path)
    done: list[str] = []
    if record is not None and record.get("status") != "finished":
        was = record.get("status", "unknown")
        record = {**record, "status": "finished"}
        attempts = list(record.get("attempts") or [])
        if attempts and isinstance(attempts[-1], dict):
            note = f"recorded as {was}; LLaMA-Factory had written its results, so the run is finished"
            attempts[-1] = {**attempts[-1], "status": "finished", "note": note}
            record["attempts"] = attempts
        record["results"] = training_results(output_dir, attempts)
        atomic_write_json(path, record)
        done.append(f"{MANIFEST_NAME} said {was}; the run had finished, and it now says so")
    drawn = draw_missing_plot(output_dir)
    if drawn is not None:
        done.append(f"drew the missing {drawn.name}")
    return "; ".join(done) or None


def draw_missing_plot(output_dir: Path) -> Path | None:
    """training_loss.png from trainer_log.jsonl when the run asked for it (plot_loss) and it is missing."""
    target = output_dir / "training_loss.png"
    if target.exists() or not _wants_plot(output_dir):
        return None
    from oda_sft.runs.plot import plot_run  # matplotlib: only when drawing

    return target if plot_run(output_dir, target) else None


def _wants_plot(output_dir: Path) -> bool:
    import yaml

    try:
        config = yaml.safe_load((output_dir / "oda_sft_config.yaml").read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError):
        return False
    return isinstance(config, dict) and bool(config.get("plot_loss"))
