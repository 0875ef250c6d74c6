"""The one place outside launch.run that starts subprocesses: short queries and logged bench runs.

Tests replace `capture` or `run_logged` here, at the seam, rather than patching subprocess globally.
"""

from __future__ import annotations

import os
import signal
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

TIMED_OUT = 124  # what coreutils `timeout` returns, so scripts read it the same way


@dataclass(frozen=True)
class Captured:
    returncode: int
    stdout: str
    stderr: str


def capture(argv: list[str], timeout_s: float = 10.0) -> Captured | None:
    """Run a short query and capture its output; None when the program is missing or hangs."""
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=timeout_s, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return Captured(done.returncode, done.stdout, done.stderr)


def run_logged(argv: list[str], env_changes: Mapping[str, str], log_path: Path, timeout_s: float) -> int:
    """Run argv with stdout and stderr into log_path; kill its whole process group on timeout.

    The group matters: llamafactory-cli starts torchrun, which starts the workers.
    """
    log_path.parent.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, **env_changes}
    with log_path.open("w", encoding="utf-8") as log:
        child = subprocess.Popen(argv, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        try:
            status = child.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            _kill_group(child)
            return TIMED_OUT
        except BaseException:
            _kill_group(child)
            raise
    return 128 - status if status < 0 else status


def _kill_group(child: subprocess.Popen[bytes]) -> None:
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(child.pid, sig)
        except ProcessLookupError:
            return
        try:
            child.wait(timeout=15)
            return
        except subprocess.TimeoutExpired:
            continue
