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
  - exits with the trainer's status (128+N when signal N ended it), after its tree is gone.
It also keeps open any file descriptors oda-sft passed it: the run's output-dir lock then lasts as
long as the trainer does. INT/TERM/HUP sent to its process group reach the trainer; the supervisor
itself ignores them (a Python handler, so the trainer does not inherit the disposition).
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import os
import select
import signal
import subprocess
import sys
import time
from types import FrameType

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


def stop_tree(statuses: dict[int, int], grace_s: float = GRACE_S) -> None:
    """SIGTERM to every descendant, then SIGKILL to what is left after grace_s; returns when none is left."""
    me = os.getpid()
    first = signal.SIGKILL if _kill_now else signal.SIGTERM
    deadline = time.monotonic() + grace_s
    sent_term: set[int] = set()
    while True:
        _reap(statuses)
        alive = descendants(me)
        if not alive:
            return
        late = time.monotonic() >= deadline or _kill_now
        for pid in alive:
            if late or first == signal.SIGKILL:
                sig = signal.SIGKILL
            elif pid in sent_term:
                continue
            else:
                sig = signal.SIGTERM
                sent_term.add(pid)
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, sig)
        time.sleep(0.05)


def _ignore(_signum: int, _frame: FrameType | None) -> None:
    """The trainer in this process group gets the same signal and decides; the supervisor waits."""


def _kill_request(_signum: int, _frame: FrameType | None) -> None:
    global _kill_now
    _kill_now = True


def _exit_code(status: int) -> int:
    if os.WIFSIGNALED(status):
        return 128 + os.WTERMSIG(status)
    return os.WEXITSTATUS(status) if os.WIFEXITED(status) else 1


def main(argv: list[str]) -> int:
    if len(argv) < 4 or argv[2] != "--":
        print("usage: supervise.py WATCH_FD -- argv...", file=sys.stderr)
        return 2
    watch_fd, command = int(argv[1]), argv[3:]
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, _ignore)
    signal.signal(signal.SIGUSR1, _kill_request)
    _subreaper()
    try:
        # Same process group as the supervisor (oda-sft made it a session leader): oda-sft's INT/TERM/HUP
        # to the group reach llamafactory-cli and torchrun, as before. Inherited descriptors stay with us.
        child = subprocess.Popen(command, close_fds=True)
    except OSError as exc:
        print(f"error: cannot start {command[0]}: {exc.strerror or exc}", file=sys.stderr, flush=True)
        return CANNOT_START
    statuses: dict[int, int] = {}
    parent_gone = False
    while child.pid not in statuses and not _kill_now:
        try:
            ready, _, _ = select.select([watch_fd], [], [], 0.2)
        except OSError as exc:  # the descriptor is unusable: treat it as oda-sft gone
            ready = [watch_fd] if exc.errno != errno.EINTR else []
        if ready:
            try:
                data = os.read(watch_fd, 64)
            except OSError:
                data = b""
            if not data:
                parent_gone = True
                break
        _reap(statuses)
    stop_tree(statuses)
    status = statuses.get(child.pid)
    if parent_gone or status is None:  # nobody reads this when oda-sft is gone
        return 128 + signal.SIGKILL
    return _exit_code(status)


if __name__ == "__main__":
    sys.exit(main(sys.argv))
