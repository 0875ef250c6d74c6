"""The trainer's supervisor: a small process between oda-sft and the trainer that makes sure no part
of the trainer outlives oda-sft. Standard library only; oda-sft runs this file by path
(`python -I supervise.py WATCH_FD -- argv...`), so it imports nothing of oda-sft.

Why a separate process: when oda-sft is killed with SIGKILL it can do nothing, and the trainer is not
one process group: torchrun starts every rank in a session of its own, and PR_SET_PDEATHSIG would
reach only a direct child. So the supervisor
  - becomes a child subreaper (PR_SET_CHILD_SUBREAPER): every process the trainer starts stays its
    descendant, even after its own parent (torchrun, a rank) dies;
  - holds the read end of a pipe whose write end only oda-sft holds: end-of-file means oda-sft is
    gone, however it died, and the supervisor then stops the whole tree (SIGTERM, then SIGKILL);
  - stops whatever is left of the tree when the trainer itself ends (orphaned ranks, workers);
  - on SIGUSR1 (oda-sft asked twice) stops the tree at once with SIGKILL;
  - passes the trainer's stderr through, and once oda-sft has asked it to stop, leaves out the
    tracebacks its processes print while they shut down (Relay); given a log (--log-fd), writes all of
    the trainer's stdout and stderr there, and with --quiet shows none of it (oda-sft shows progress);
  - exits with the trainer's status (128+N when signal N ended it), after its tree is gone.
It also keeps open any file descriptors oda-sft passed it: the run's output-dir lock then lasts as
long as the trainer does. INT/TERM/HUP sent to its process group reach the trainer; the supervisor
itself ignores them (a Python handler, so the trainer does not inherit the disposition).
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import select
import signal
import subprocess
import sys
import time
from types import FrameType
from typing import Any

PR_SET_CHILD_SUBREAPER = 36
GRACE_S = 3.0  # SIGTERM first: torchrun passes it on to its ranks; whatever remains then gets SIGKILL
CANNOT_START = 127

_kill_now = False


def _subreaper() -> None:
    if not sys.platform.startswith("linux"):
        return
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)


def descendants(root: int) -> set[int]:
    """Every live descendant of root, from /proc (empty where there is no /proc)."""
    children: dict[int, list[int]] = {}
    try:
        entries = os.listdir("/proc")
    except OSError:
        return set()
    for entry in entries:
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as handle:
                stat = handle.read()
        except OSError:
            continue
        # The command name is in parentheses and may hold spaces: fields resume after the last ')'.
        fields = stat[stat.rfind(b")") + 2 :].split()
        if len(fields) > 1 and fields[0] != b"Z":
            children.setdefault(int(fields[1]), []).append(int(entry))
    found: set[int] = set()
    todo = [root]
    while todo:
        for child in children.get(todo.pop(), []):
            if child not in found:
                found.add(child)
                todo.append(child)
    return found


def _reap(statuses: dict[int, int]) -> None:
    """Collect every exited child (adopted orphans included), keeping their wait statuses."""
    while True:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
        statuses[pid] = status


def stop_tree(statuses: dict[int, int], first: int | None, grace_s: float = GRACE_S, on_idle: Any = None) -> None:
    """Stop every descendant and return once none is left: `first` (SIGTERM), or with None wait grace_s
    for them to end on their own (they were already told: torchrun is shutting its ranks down); then
    SIGKILL whatever is left after grace_s. on_idle() runs between rounds (relaying output)."""
    me = os.getpid()
    deadline = time.monotonic() + grace_s
    told: set[int] = set()
    while True:
        _reap(statuses)
        alive = descendants(me)
        if not alive:
            return
        late = time.monotonic() >= deadline or _kill_now
        for pid in alive:
            sig: int
            if late:
                sig = signal.SIGKILL
            elif first is None or pid in told:
                continue
            else:
                sig = first
                told.add(pid)
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, sig)
        if on_idle is not None:
            on_idle(0.05)
        else:
            time.sleep(0.05)


class Relay:
    """One of the trainer's output streams. The log (when there is one) gets all of it, as written; the
    terminal (fd `out`, None for none) gets it unchanged until oda-sft asks the trainer to stop. From then
    on, the tracebacks its processes print while they shut down (torchrun's SignalException, a
    KeyboardInterrupt) are left out there, and counted: they say nothing the person does not know."""

    def __init__(self, fd: int, show_all: bool, out: int | None = 2, log: int | None = None) -> None:
        self.fd, self.show_all, self.out, self.log = fd, show_all, out, log
        self.open = True
        self.filtering = False
        self.pending = b""
        self.in_traceback = False
        self.hidden = 0
        self.unlogged = b""  # the log gets whole lines (or \r-ended updates), so two streams never mix in one

    def read(self) -> None:
        try:
            data = os.read(self.fd, 65536)
        except OSError:
            data = b""
        if not data:
            self.open = False
            self._write(self.pending)
            self._log(self.unlogged, everything=True)
            self.pending = b""
            return
        self._log(data)
        if not self.filtering or self.show_all:
            self._write(data)
            return
        self.pending += data
        *lines, self.pending = self.pending.split(b"\n")
        for line in lines:
            if not self._hide(line):
                self._write(line + b"\n")

    def _hide(self, line: bytes) -> bool:
        text = line.rstrip(b"\r")
        if text.startswith(b"Traceback (most recent call last):"):
            self.in_traceback = True
        elif self.in_traceback and not (
            text[:1] in (b" ", b"\t", b"") or text.startswith((b"During handling of the above", b"The above exception"))
        ):
            self.in_traceback = False  # the exception's own line ends the traceback
            self.hidden += 1
            return True
        if self.in_traceback:
            self.hidden += 1
        return self.in_traceback

    def _log(self, data: bytes, everything: bool = False) -> None:
        if self.log is None:
            return
        self.unlogged += data
        end = (
            len(self.unlogged)
            if everything or len(self.unlogged) > 65536
            else max(self.unlogged.rfind(b"\n"), self.unlogged.rfind(b"\r")) + 1
        )
        _write(self.log, self.unlogged[:end])
        self.unlogged = self.unlogged[end:]

    def _write(self, data: bytes) -> None:
        if self.out is not None:
            _write(self.out, data)

    def summary(self) -> None:
        if self.hidden:
            _write(
                2,
                f"oda-sft: {self.hidden} lines of the trainer's shutdown tracebacks are not shown "
                "(ODA_SFT_DEBUG=1 shows them)\n".encode(),
            )


def _write(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        try:
            view = view[os.write(fd, view) :]
        except InterruptedError:
            continue
        except OSError:
            return  # nobody reads it any more: the output is lost, the supervision is not


def pump(relays: list[Relay], timeout: float, also: tuple[int, ...] = ()) -> list[int]:
    """Relay whatever the open streams hold, waiting at most timeout; returns which of `also` are ready."""
    open_fds = {r.fd: r for r in relays if r.open}
    try:
        ready, _, _ = select.select([*also, *open_fds], [], [], timeout)
    except InterruptedError:
        return []
    for fd in ready:
        if fd in open_fds:
            open_fds[fd].read()
    return [fd for fd in ready if fd in also]


_stopping = False


def _stop_requested(_signum: int, _frame: FrameType | None) -> None:
    """The trainer in this process group gets the same signal and decides; the supervisor waits."""
    global _stopping
    _stopping = True


def _kill_request(_signum: int, _frame: FrameType | None) -> None:
    global _kill_now
    _kill_now = True


def _exit_code(status: int) -> int:
    if os.WIFSIGNALED(status):
        return 128 + os.WTERMSIG(status)
    return os.WEXITSTATUS(status) if os.WIFEXITED(status) else 1


def _options(argv: list[str]) -> tuple[int, int | None, bool, list[str]] | None:
    """(watch fd, log fd, quiet, command) from `WATCH_FD [--log-fd N] [--quiet] -- argv...`; None if malformed."""
    if len(argv) < 4:
        return None
    watch_fd, rest, log_fd, quiet = int(argv[1]), argv[2:], None, False
    while rest and rest[0] != "--":
        if rest[0] == "--log-fd" and len(rest) > 1:
            log_fd, rest = int(rest[1]), rest[2:]
        elif rest[0] == "--quiet":
            quiet, rest = True, rest[1:]
        else:
            return None
    return (watch_fd, log_fd, quiet, rest[1:]) if len(rest) > 1 else None


def main(argv: list[str]) -> int:
    options = _options(argv)
    if options is None:
        print("usage: supervise.py WATCH_FD [--log-fd N] [--quiet] -- argv...", file=sys.stderr)
        return 2
    watch_fd, log_fd, quiet, command = options
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, _stop_requested)
    signal.signal(signal.SIGUSR1, _kill_request)
    _subreaper()
    err_read, err_write = os.pipe()
    # Without a log, stdout is inherited. With one and --quiet, stdout and stderr share the one pipe: the log then
    # holds them in the order they were written. Else stdout has a pipe of its own, for the terminal's stdout.
    out_read, out_write = os.pipe() if log_fd is not None and not quiet else (None, None)
    try:
        # Same process group as the supervisor (oda-sft made it a session leader): oda-sft's INT/TERM/HUP
        # to the group reach llamafactory-cli and torchrun. Descriptors oda-sft passed stay with us.
        child = subprocess.Popen(command, close_fds=True, stderr=err_write, stdout=err_write if quiet else out_write)
    except OSError as exc:
        message = f"error: cannot start {command[0]}: {exc.strerror or exc}\n".encode()
        _write(2, message)
        if log_fd is not None:
            _write(log_fd, message)
        return CANNOT_START
    finally:
        os.close(err_write)
        if out_write is not None:
            os.close(out_write)
    show_all = os.environ.get("ODA_SFT_DEBUG", "") not in ("", "0")
    relay = Relay(err_read, show_all, out=None if quiet else 2, log=log_fd)
    relays = [relay] + ([Relay(out_read, True, out=None if quiet else 1, log=log_fd)] if out_read is not None else [])
    statuses: dict[int, int] = {}
    parent_gone = False
    while child.pid not in statuses and not _kill_now:
        relay.filtering = relay.filtering or _stopping
        if pump(relays, 0.2, (watch_fd,)):
            try:
                data = os.read(watch_fd, 64)
            except OSError:
                data = b""
            if not data:
                parent_gone = True
                break
        _reap(statuses)
    relay.filtering = relay.filtering or _stopping or parent_gone
    if _kill_now:
        first: int | None = signal.SIGKILL
    elif parent_gone:
        first = signal.SIGTERM
    else:
        first = None  # the trainer ended: what it started gets a moment to end on its own
    stop_tree(statuses, first, on_idle=lambda timeout: pump(relays, timeout))
    deadline = time.monotonic() + 2.0
    while any(r.open for r in relays) and time.monotonic() < deadline:  # the last words of what just ended
        pump(relays, 0.2)
    relay.summary()
    status = statuses.get(child.pid)
    if parent_gone or status is None:  # nobody reads this when oda-sft is gone
        return 128 + signal.SIGKILL
    return _exit_code(status)


if __name__ == "__main__":
    sys.exit(main(sys.argv))
