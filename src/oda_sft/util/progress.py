"""What the terminal shows while a trainer or OpenCompass runs: their full output goes to a log file named
at the start (one per attempt, never overwritten), and the terminal gets one progress line. On a terminal
the line is rewritten in place; elsewhere (a file, a pipe, a Slurm job) it is a plain line at most every
PLAIN_INTERVAL_S, and the last one always. When the process fails, its log's tail is shown.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

from oda_sft.util import console, signals, subproc

PLAIN_INTERVAL_S = 60.0
TAIL_LINES = 40
_SIGNAL_EXITS = {signals.exit_code(s) for s in signals.STOP_SIGNALS}


def new_log(directory: Path, stem: str, tag: str = "") -> Path:
    """A new, empty `<directory>/<stem>-<n><tag>.log`, n one more than any of the same tag there: an earlier
    attempt's log is never overwritten (the file is created exclusively), and the nodes of one multi-node run,
    which share the directory, number the same attempt alike (train-1.log beside train-1.node-1.log)."""
    directory.mkdir(parents=True, exist_ok=True)
    taken = []
    for found in directory.glob(f"{stem}-*.log"):
        number, dot, rest = found.name[len(stem) + 1 : -len(".log")].partition(".")
        if dot + rest == tag and number.isdigit():
            taken.append(int(number))
    n = max(taken, default=0) + 1
    while True:
        path = directory / f"{stem}-{n}{tag}.log"
        try:
            os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644))
        except FileExistsError:
            n += 1
            continue
        return path


def on_terminal() -> bool:
    """A rewritten line only on a terminal, and never in a Slurm job (its output is a file, read later)."""
    return sys.stderr.isatty() and not os.environ.get("SLURM_JOB_ID")


class Line:
    """The progress line. `read` says what to show (None: nothing new); update() asks it, now and then."""

    def __init__(self, read: Callable[[], str | None], interval_s: float = PLAIN_INTERVAL_S) -> None:
        self.read = read
        self.interval_s = interval_s
        self.terminal = on_terminal()
        self.began = time.monotonic()
        self.shown: str | None = None  # what the person last saw
        self.latest: str | None = None
        self.printed_at = -interval_s

    def update(self) -> None:
        try:
            text = self.read()
        except Exception:  # a half-written file, say: the next tick reads it again; a display never stops a run
            return
        if text is None:
            return
        self.latest = text
        if self.terminal:
            if text != self.shown:
                console.progress(text)
                self.shown = text
        elif time.monotonic() - self.printed_at >= self.interval_s and text != self.shown:
            console.say(text)
            self.shown, self.printed_at = text, time.monotonic()

    def finish(self) -> None:
        """The last state, shown once more if the person has not seen it; the line then stays."""
        self.update()
        if self.terminal:
            console.end_progress()
        elif self.latest is not None and self.latest != self.shown:
            console.say(self.latest)
            self.shown = self.latest

    def elapsed(self) -> float:
        return time.monotonic() - self.began


def duration(seconds: float) -> str:
    """1h02m03s, 2m05s, 7s."""
    s = round(seconds)
    h, m = divmod(s, 3600)
    m, s = divmod(m, 60)
    return f"{h}h{m:02d}m{s:02d}s" if h else f"{m}m{s:02d}s" if m else f"{s}s"


def tail(log: Path, lines: int = TAIL_LINES) -> list[str]:
    """The last lines of a log as a terminal would have shown them: a progress bar's \\r-rewrites count once."""
    try:
        with log.open("rb") as handle:
            handle.seek(max(0, log.stat().st_size - 256 * 1024))
            text = handle.read().decode("utf-8", errors="replace")
    except OSError:
        return []
    shown = [line.rstrip("\r").rsplit("\r", 1)[-1] for line in text.split("\n")]
    while shown and not shown[-1].strip():
        shown.pop()
    return shown[-lines:]


def show_tail(log: Path, what: str, say: Callable[[str], None] = console.say) -> None:
    """The log's tail on the terminal (stderr), framed, so an error is never hidden in a file."""
    found = tail(log)
    if not found:
        return
    say(f"the last {len(found)} lines of {what}'s output ({log}):")
    sys.stderr.write("".join(f"  {line}\n" for line in found))
    sys.stderr.flush()


class Session:
    """One supervised run's output: the log it goes to (named before the process starts) and, unless
    --verbose, the progress line the terminal shows instead of the output itself."""

    def __init__(self, log: Path, line: Line | None, what: str) -> None:
        self.log, self.line, self.what = log, line, what

    @classmethod
    def open(cls, directory: Path, stem: str, read: Callable[[], str | None], what: str, tag: str = "") -> Session:
        line = None if console.verbose() else Line(read)
        return cls(new_log(directory, stem, tag), line, what)

    def announce(self) -> str:
        return f"{self.what}'s output: {self.log}" + ("" if self.line is None else " (--verbose shows it here)")

    def watch(self, watch: subproc.Watch) -> subproc.Watch:
        tick = self.line.update if self.line is not None else None
        return replace(watch, log=self.log, stream=self.line is None, tick=tick)

    def ended(self, status: int) -> None:
        """The last progress line; when the process failed, its log's tail (an error is never hidden)."""
        if self.line is None:
            return
        self.line.finish()
        if status not in (0, *_SIGNAL_EXITS):
            show_tail(self.log, self.what)
