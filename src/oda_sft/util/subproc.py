"""The one module that starts subprocesses: the trainer (streamed, signals forwarded, under a
supervisor that outlives nothing), a server beside it (under the same supervisor), short queries, and logged
bench runs. Argument lists only, never a shell.

Tests replace functions here, at the seam, rather than patching subprocess globally.
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import FrameType

from oda_sft.util.console import say

TIMED_OUT = 124  # what coreutils `timeout` returns, so scripts read it the same way
FORWARDED_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


SUPERVISOR = Path(__file__).with_name("supervise.py")
# What the trainer is sent when oda-sft is asked to stop. SIGINT becomes SIGTERM: the trainer then stops
# the same way as under Slurm's preemption, without a KeyboardInterrupt traceback from every process.
_SENT: dict[int, int] = {signal.SIGINT: signal.SIGTERM, signal.SIGTERM: signal.SIGTERM, signal.SIGHUP: signal.SIGHUP}


@dataclass(frozen=True)
class Watch:
    """How a supervised child is watched. on_signal hears of every stop signal (so the caller can tell
    an interruption from a crash); keep_fds (the run's lock) stay open in the supervisor for as long as it
    lives; on_start hears its pid; what names the child in the line that reports a stop; cwd is where it runs.
    log: a file that gets all of the child's stdout and stderr; stream: show them on the terminal too (without
    a log they always are); tick runs about once a second while the child runs (a progress line)."""

    on_signal: Callable[[int], None] | None = None
    keep_fds: tuple[int, ...] = ()
    on_start: Callable[[int], None] | None = None
    what: str = "the trainer"
    cwd: Path | None = None
    log: Path | None = None
    stream: bool = True
    tick: Callable[[], None] | None = None


UNWATCHED = Watch()


def run_streaming(argv: list[str], env_changes: Mapping[str, str], watch: Watch = UNWATCHED) -> int:
    """Run argv under the supervisor (util/supervise.py) with output streaming through, and return its
    exit status, 128+N for signal N. Raises OSError when the supervisor cannot be started.

    INT/TERM/HUP go to the supervisor's process group (llamafactory-cli, torchrun; torchrun passes them
    on to its ranks), SIGINT as SIGTERM; a second one asks the supervisor to kill the whole tree now.
    If oda-sft dies, however, the supervisor stops the tree."""
    program = argv[0] if os.sep in argv[0] else shutil.which(argv[0])
    if program is None or not (os.path.isfile(program) and os.access(program, os.X_OK)):
        # Checked here: the supervisor could only say so in its exit status.
        raise FileNotFoundError(errno.ENOENT, os.strerror(errno.ENOENT), argv[0])
    child: subprocess.Popen[bytes] | None = None
    received: list[int] = []  # every signal, in order; those before the child existed are delivered once it does
    delivered: list[int] = []

    def deliver(signum: int) -> None:
        assert child is not None
        with contextlib.suppress(ProcessLookupError):
            if delivered:
                os.kill(child.pid, signal.SIGUSR1)  # asked again: the supervisor kills everything now
            else:
                os.killpg(child.pid, _SENT.get(signum, signum))
        delivered.append(signum)

    def forward(signum: int, _frame: FrameType | None) -> None:
        received.append(signum)
        if watch.on_signal is not None:
            watch.on_signal(signum)
        name = signal.Signals(signum).name
        say(
            f"{name}: stopping {watch.what}; send it again to kill it at once"
            if len(received) == 1
            else f"{name} again: killing {watch.what} now"
        )
        if child is not None:
            deliver(signum)

    # Handlers first, child second: a signal in between must not kill oda-sft and orphan the trainer.
    previous = {sig: signal.signal(sig, forward) for sig in FORWARDED_SIGNALS}
    watch_read, watch_write = os.pipe()  # the supervisor sees end-of-file on it when oda-sft is gone
    log_fd = os.open(watch.log, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644) if watch.log is not None else None
    try:
        if received:  # stopped before anything started: start nothing
            os.close(watch_read)
            return 128 + received[0]
        options = ["--log-fd", str(log_fd)] if log_fd is not None else []
        options += ["--quiet"] if log_fd is not None and not watch.stream else []
        # Unbuffered: the log then holds stdout and stderr lines close to the order they were written in.
        unbuffered = {"PYTHONUNBUFFERED": "1"} if log_fd is not None else {}
        try:
            child = subprocess.Popen(
                [sys.executable, "-I", str(SUPERVISOR), str(watch_read), *options, "--", *argv],
                env={**os.environ, **unbuffered, **env_changes},
                cwd=watch.cwd,
                start_new_session=True,
                pass_fds=(watch_read, *watch.keep_fds, *([log_fd] if log_fd is not None else [])),
            )
        finally:
            os.close(watch_read)
        if watch.on_start is not None:
            watch.on_start(child.pid)
        for signum in list(received):
            deliver(signum)
        status = _wait(child, watch.tick)
    finally:
        if log_fd is not None:
            os.close(log_fd)
        os.close(watch_write)
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return 128 - status if status < 0 else status


class Background:
    """A program running beside oda-sft (a judge server) under the supervisor (util/supervise.py): its
    output goes to a log, and nothing of it outlives oda-sft. Closing the pipe end only oda-sft holds tells
    the supervisor to stop the program's whole tree (SIGTERM, then SIGKILL); so does oda-sft's death."""

    def __init__(self, process: subprocess.Popen[bytes], watch_write: int) -> None:
        self.process = process
        self._watch_write: int | None = watch_write

    def running(self) -> bool:
        return self.process.poll() is None

    def stop(self, timeout_s: float = 30.0) -> int:
        """Stop the program and all it started; the supervisor's exit status, once the tree is gone."""
        if self._watch_write is not None:
            os.close(self._watch_write)
            self._watch_write = None
        try:
            status = self.process.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            _kill_group(self.process)  # the supervisor itself is stuck: its group goes at once
            status = self.process.wait()
        return 128 - status if status < 0 else status


def start_background(argv: list[str], env_changes: Mapping[str, str], log_path: Path) -> Background:
    """Start argv under the supervisor, in a session of its own (a terminal's Ctrl-C is oda-sft's to act
    on), stdout and stderr appended to log_path. Raises OSError when argv[0] or the supervisor cannot start."""
    program = argv[0] if os.sep in argv[0] else shutil.which(argv[0])
    if program is None or not (os.path.isfile(program) and os.access(program, os.X_OK)):
        raise FileNotFoundError(errno.ENOENT, os.strerror(errno.ENOENT), argv[0])
    log_path.parent.mkdir(parents=True, exist_ok=True)
    watch_read, watch_write = os.pipe()
    try:
        with log_path.open("ab") as log:
            child = subprocess.Popen(
                [sys.executable, "-I", str(SUPERVISOR), str(watch_read), "--", *argv],
                env={**os.environ, **env_changes},
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=log,
                start_new_session=True,
                pass_fds=(watch_read,),
            )
    except BaseException:
        os.close(watch_write)
        raise
    finally:
        os.close(watch_read)
    return Background(child, watch_write)


def _wait(child: subprocess.Popen[bytes], tick: Callable[[], None] | None) -> int:
    if tick is None:
        return child.wait()
    while True:
        try:
            return child.wait(timeout=1.0)
        except subprocess.TimeoutExpired:
            tick()


def run_inherited(argv: list[str]) -> int:
    """Run a short command with this process's stdin, stdout and stderr; its exit status.
    Raises OSError when argv[0] cannot be started."""
    return subprocess.run(argv, check=False).returncode


@dataclass(frozen=True)
class Captured:
    returncode: int
    stdout: str
    stderr: str


def capture(argv: list[str], timeout_s: float = 10.0, cwd: Path | None = None) -> Captured | None:
    """Run a short query and capture its output; None when the program is missing or hangs."""
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=timeout_s, check=False, cwd=cwd)
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
