"""The one module that starts subprocesses: the trainer (streamed, signals forwarded), short
queries, and logged bench runs. Argument lists only, never a shell.

Tests replace functions here, at the seam, rather than patching subprocess globally.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import FrameType

TIMED_OUT = 124  # what coreutils `timeout` returns, so scripts read it the same way
FORWARDED_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


def run_streaming(
    argv: list[str], env_changes: Mapping[str, str], on_signal: Callable[[int], None] | None = None
) -> int:
    """Run argv in its own process group with output streaming through; forward INT/TERM/HUP to the
    whole group (torchrun and its workers, dataloader workers). Returns the exit status, 128+N for
    signal N. Raises OSError when argv[0] cannot be started."""
    child: subprocess.Popen[bytes] | None = None
    early: list[int] = []  # signals that came before the child existed: delivered once it does

    def forward(signum: int, _frame: FrameType | None) -> None:
        if on_signal is not None:
            on_signal(signum)
        if child is None:
            early.append(signum)
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(child.pid, signum)

    # Handlers first, child second: a signal in between must not kill oda-sft and orphan the trainer.
    previous = {sig: signal.signal(sig, forward) for sig in FORWARDED_SIGNALS}
    try:
        child = subprocess.Popen(argv, env={**os.environ, **env_changes}, start_new_session=True)
        for signum in early:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(child.pid, signum)
        status = child.wait()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return 128 - status if status < 0 else status


def run_inherited(argv: list[str]) -> int:
    """Run a short command with this process's stdin, stdout and stderr; its exit status.
    Raises OSError when argv[0] cannot be started."""
    return subprocess.run(argv, check=False).returncode


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
