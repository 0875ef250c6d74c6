"""oda-sft's own reaction to INT/TERM/HUP, from its first moment until the trainer starts.

Python's defaults would let SIGTERM or SIGHUP kill oda-sft outright, halfway through writing a run's
config and manifest. `install()` (the first thing the oda-sft program does) turns all three into an
`Interrupted` exception, as SIGINT already is a KeyboardInterrupt, so every command stops the same
way: one line, exit 128+N. Inside `critical()` (writing a config with its manifest, moving a run
aside) a signal waits until the block is done. While the trainer runs, util/subproc.py takes over
and forwards them instead.
"""

from __future__ import annotations

import signal
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


class Interrupted(KeyboardInterrupt):
    """oda-sft was asked to stop by signal `signum`."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum

    @property
    def exit_code(self) -> int:
        return exit_code(self.signum)

    @property
    def name(self) -> str:
        return signal.Signals(self.signum).name


_depth = 0
_pending: list[int] = []
_received: list[int] = []


def _on_signal(signum: int, _frame: FrameType | None) -> None:
    _received.append(signum)
    if _depth > 0:
        _pending.append(signum)
        return
    raise Interrupted(signum)


def received() -> int | None:
    """The first stop signal oda-sft itself received, if any. A library that catches the Interrupted
    raised inside it (transformers turns it into an import error) cannot hide that it was asked to stop."""
    return _received[0] if _received else None


def exit_code(signum: int) -> int:
    """The one mapping every command and every manifest uses: SIGINT 130, SIGTERM 143, SIGHUP 129."""
    return 128 + int(signum)


def report(signum: int) -> int:
    """Say that oda-sft was stopped, in the one line every command prints; returns the exit code."""
    print(f"error: interrupted by {signal.Signals(signum).name}", file=sys.stderr, flush=True)
    return exit_code(signum)


def install() -> None:
    """INT/TERM/HUP raise Interrupted (deferred inside critical()). Only for the oda-sft program itself."""
    for sig in STOP_SIGNALS:
        signal.signal(sig, _on_signal)


@contextmanager
def raising() -> Iterator[None]:
    """INT/TERM/HUP raise Interrupted inside the block, whoever called: work whose `finally` clauses
    must run (a registry transaction) is stopped the same way as the oda-sft program stops."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {sig: signal.signal(sig, _on_signal) for sig in STOP_SIGNALS}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def ignore() -> None:
    """INT/TERM/HUP ignored from now on: oda-sft is exiting with the status it has decided."""
    for sig in STOP_SIGNALS:
        signal.signal(sig, signal.SIG_IGN)


def pending() -> int | None:
    return _pending[0] if _pending else None


@contextmanager
def critical() -> Iterator[None]:
    """A block that a signal must not cut in half; the signal is raised when the block is done."""
    global _depth
    _depth += 1
    try:
        yield
    finally:
        _depth -= 1
    if _depth == 0 and _pending:
        signum = _pending[0]
        _pending.clear()
        raise Interrupted(signum)
