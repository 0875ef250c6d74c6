"""Find the runs under an output root and summarise them from their manifests and logs.

A manifest is written by oda-sft, but a person, a full disk or a kill can leave anything in it: every
field is read for its type, and a run whose manifest cannot be read is listed as `unreadable`, never
dropped or allowed to stop the listing.
"""

from __future__ import annotations

import math
import os
import socket
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from oda_sft.runs import lock
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
    mean_loss: float | None = None  # the whole run's mean train loss, over all its attempts
    final_step: int | None = None
    final_loss_note: str | None = None  # set when final_loss is not a logged step's loss
    attempts: tuple[int, ...] = ()  # the attempts (1-based) the numbers come from
    base: bool = False  # the untuned base model's dir (`eval --base`): evaluations only, never trained

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def walk(root: Path) -> tuple[list[Path], list[tuple[Path, str]]]:
    """Every run's manifest under root, once each, and what could not be followed (said, never skipped
    silently). A run dir that is a link (a run kept on another disk) is followed; a link back to a dir
    already walked is not walked again."""
    found: list[Path] = []
    problems: list[tuple[Path, str]] = []
    seen: set[str] = set()
    for dirpath, dirnames, filenames in os.walk(root, followlinks=True):
        real = os.path.realpath(dirpath)
        if real in seen:
            dirnames[:] = []
            continue
        seen.add(real)
        here = Path(dirpath)
        # Checkpoints and tokenized data hold many files and never a manifest; a run's eval/ holds its
        # evaluations, whose view of the checkpoint links the run's own manifest (eval/template.py).
        skip = ("eval",) if (here / MANIFEST_NAME).is_file() else ()
        dirnames[:] = sorted(d for d in dirnames if not d.startswith(("checkpoint-", ".")) and d not in skip)
        for name in sorted(filenames):
            entry = here / name
            if entry.is_symlink() and not entry.exists():
                problems.append((entry, f"a link to {os.readlink(entry)}, which does not exist: not followed"))
        if MANIFEST_NAME in filenames and not (here / MANIFEST_NAME).is_symlink():
            found.append(here / MANIFEST_NAME)
    return found, problems


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _text(value: Any) -> str:
    return value if isinstance(value, str) else ""


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    try:
        number = float(value)
    except OverflowError:
        return None
    return number if math.isfinite(number) else None


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _attempts(manifest: dict[str, Any], results: dict[str, Any]) -> tuple[int, ...]:
    """The attempts the results name; for a run without results yet, every attempt so far."""
    named = results.get("attempts")
    if isinstance(named, list) and named and all(_int(n) is not None for n in named):
        return tuple(named)
    attempts = manifest.get("attempts")
    return tuple(range(1, len(attempts) + 1)) if isinstance(attempts, list) else ()


def run_status(run_dir: Path, manifest: dict[str, Any]) -> str:
    """The manifest's status, corrected by what is alive: while a trainer holds the output dir's lock
    (runs/lock.py) the run is `running`, whatever the manifest says; a manifest left at running with
    nobody holding the lock is `stale`."""
    status = _text(manifest.get("status")) or "unknown"
    if lock.probe(run_dir) is not None:
        return "running"
    if status != "running":
        return status
    if lock.lock_path(run_dir).exists():
        return "stale"  # the lock exists and nobody holds it: whoever wrote `running` is gone
    # A run from before the lock: judge by its pid, on its own host only.
    attempts = manifest.get("attempts")
    last = _dict(attempts[-1]) if isinstance(attempts, list) and attempts else {}
    pid = last.get("pid")
    if manifest.get("host") == socket.gethostname() and isinstance(pid, int) and pid > 0:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return "stale"
        except (PermissionError, OverflowError):
            pass
    return status


def _unreadable(path: Path) -> RunSummary:
    return RunSummary(str(path.parent), "", "", None, "", "", "unreadable", None, None, None, None)


def summarise(root: Path) -> list[RunSummary]:
    return survey(root)[0]


def survey(root: Path) -> tuple[list[RunSummary], list[tuple[Path, str]]]:
    """The runs under root, and the links that could not be followed."""
    runs = []
    manifests, problems = walk(root)
    for path in manifests:
        m = read(path)
        if m is None:
            runs.append(_unreadable(path))
            continue
        if m.get("base") is True:
            runs.append(_base(path, m))
            continue
        results = _dict(m.get("results"))
        runs.append(
            RunSummary(
                path=str(path.parent),
                model=_text(_dict(m.get("model")).get("preset")),
                dataset=_text(_dict(m.get("dataset")).get("name")),
                seed=_int(m.get("seed")),
                mode=_text(_dict(m.get("mode")).get("mode")),
                profile=_text(m.get("profile")) or "default",
                status=run_status(path.parent, m),
                final_loss=_number(results.get("final_loss")),
                train_runtime=_number(results.get("train_runtime")),
                tokens_per_second=_number(results.get("tokens_per_second")),
                started_at=_text(m.get("started_at")) or None,
                mean_loss=_number(results.get("train_loss")),
                final_step=_int(results.get("final_step")),
                final_loss_note=_text(results.get("final_loss_note")) or None,
                attempts=_attempts(m, results),
            )
        )
    return sorted(runs, key=lambda r: (r.model, r.dataset, r.seed if r.seed is not None else -1, r.path)), problems


def _base(path: Path, m: dict[str, Any]) -> RunSummary:
    """The base model's dir: `eval --base` writes it to hold the untuned model's evaluations."""
    model = _text(_dict(m.get("model")).get("preset"))
    return RunSummary(str(path.parent), model, "", None, "", "", "base model", None, None, None, None, base=True)


def format_table(runs: list[RunSummary]) -> str:
    headers = ("MODEL", "DATASET", "SEED", "MODE", "STATUS", "FINAL LOSS", "MEAN LOSS", "RUNTIME S", "TOKENS/S",
               "ATTEMPTS", "PATH")  # fmt: skip

    def num(value: float | None, fmt: str) -> str:
        return "" if value is None else format(value, fmt)

    def final(r: RunSummary) -> str:
        # No step logged: the final loss is the run's mean, and the table says so.
        return num(r.final_loss, ".4f") + (" (mean)" if r.final_loss is not None and r.final_loss_note else "")

    rows = [
        (
            r.model,
            "(base model)" if r.base else r.dataset,
            "" if r.seed is None else str(r.seed),
            r.mode,
            r.status,
            final(r),
            num(r.mean_loss, ".4f"),
            num(r.train_runtime, ".1f"),
            num(r.tokens_per_second, ",.0f"),
            ",".join(map(str, r.attempts)),
            r.path,
        )
        for r in runs
    ]
    return tables.format_table(headers, rows)
