"""One trainer per output dir: a lock the kernel releases when its holders die.

The lock is flock(2) on a small file beside the output dir (`.seed-42.oda_sft.lock` next to
`seed-42/`), so moving a run aside (`--force`) never moves its lock. oda-sft takes it before it touches
the output dir and hands the descriptor to the trainer's supervisor (util/supervise.py): the lock is
held while either lives, which is as long as any process of the trainer lives, and no stale lock can
outlive them (a crash, a SIGKILL, a lost node: the kernel, or the NFS server when the client's lease
ends, drops it).

Shared storage: Linux's NFS client turns flock into an NFS byte-range lock, which the other nodes see.
On Lustre it needs the `flock` mount option (`localflock` makes it node-local); where the filesystem
cannot lock at all, oda-sft says so once and runs without the lock. Each node rank of a multi-node
run locks its own file, so the nodes of one run do not exclude each other; rank 0's lock is the run's.

The holder writes who it is (host, pid, start time, and whether it trains or evaluates) into the file,
so whoever is refused can name it and say which of the two waits for which.

A lock file deleted by hand while its run lives no longer excludes anyone: the next oda-sft creates a new
file and locks that. So node rank 0 also holds the output dir itself locked (flock on its descriptor,
from launch on, passed to the supervisor the same way): whoever takes the file lock checks it too, and a
live run is refused whatever became of its lock file. (Where a directory cannot be flocked, NFS, the
lock file is the only guard.)
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import socket
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from oda_sft.errors import RunStateError
from oda_sft.runs import manifest
from oda_sft.util.clock import utc_now
from oda_sft.util.console import say

_RECORD_BYTES = 512  # written with one pwrite, always this long: a reader never sees half a record
_UNSUPPORTED = {errno.ENOLCK, errno.EOPNOTSUPP, errno.ENOSYS, errno.EINVAL}
_RETRY_S = 2.0  # a `runs` listing may hold the lock shared for a moment: wait that out
_TEARDOWN_S = 20.0  # a dead oda-sft's supervisor still stopping its trainer on this host: wait for it


Role = str  # "train" or "eval": what the holder does with the run ("" in a lock file older than roles)
_DOING = {"train": "being trained", "eval": "being evaluated"}


@dataclass(frozen=True)
class Holder:
    host: str
    pid: int | None
    started_at: str
    supervisor_pid: int | None = None
    role: Role = ""

    def describe(self) -> str:
        """Who holds the run, from what its lock (or its manifest) records: `oda-sft eval, pid 7 on node1 (since
        ...)`. A holder that recorded nothing yet (it locked an instant ago) is said to be one, not guessed at."""
        if not self.pid:
            return "an oda-sft process that has not recorded its pid and host yet"
        name = "oda-sft eval," if self.role == "eval" else "oda-sft"
        where = f" on {self.host}" if self.host else ""
        return f"{name} pid {self.pid}{where}" + (f" (since {self.started_at})" if self.started_at else "")

    def busy_line(self, output_dir: Path) -> str:
        return f"{output_dir} is {_DOING.get(self.role, 'in use')} right now by {self.describe()}"

    def alive_here(self) -> bool | None:
        """Whether its oda-sft process still runs: None when that cannot be told from this host."""
        if self.host != socket.gethostname() or not self.pid:
            return None
        try:
            os.kill(self.pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True


def lock_path(output_dir: Path, node_rank: int = 0) -> Path:
    suffix = "" if node_rank == 0 else f".node-{node_rank}"
    return output_dir.with_name(f".{output_dir.name}.oda_sft{suffix}.lock")


def _read_holder(fd: int) -> Holder:
    try:
        raw = os.pread(fd, _RECORD_BYTES, 0).decode("utf-8", "replace").strip()
        data: Any = json.loads(raw) if raw else {}
    except (OSError, ValueError):
        data = {}
    if not isinstance(data, dict):
        data = {}
    pid, sup = data.get("pid"), data.get("supervisor_pid")
    return Holder(
        host=str(data.get("host", "")),
        pid=pid if isinstance(pid, int) else None,
        started_at=str(data.get("started_at", "")),
        supervisor_pid=sup if isinstance(sup, int) else None,
        role=data.get("role") if data.get("role") in _DOING else "",
    )


class RunLock:
    """A held lock on one output dir (or, where the filesystem cannot lock, a note that it is not held)."""

    def __init__(
        self,
        path: Path,
        fd: int | None,
        holder: Holder | None,
        output_dir: Path | None = None,
        dir_fd: int | None = None,
    ) -> None:
        self.path, self.fd, self.holder = path, fd, holder
        self.output_dir, self.dir_fd = output_dir, dir_fd  # output_dir None: no directory lock (node rank > 0)

    @property
    def held(self) -> bool:
        return self.fd is not None

    def pass_fds(self) -> tuple[int, ...]:
        """The descriptor the trainer's supervisor inherits, so the lock lasts as long as the trainer."""
        return tuple(fd for fd in (self.fd, self.dir_fd) if fd is not None)

    def hold_dir(self) -> None:
        """Create the output dir and hold it locked too (node rank 0), from before anything is written
        into it: after --force moved the earlier run aside, the new dir is the one held."""
        out = self.output_dir
        if self.fd is None or out is None:
            return
        out.mkdir(parents=True, exist_ok=True)
        if self.dir_fd is not None and _same_file(self.dir_fd, out):
            return
        fd = _lock_dir(out)
        if self.dir_fd is not None:
            os.close(self.dir_fd)
        self.dir_fd = fd

    def record_supervisor(self, pid: int) -> None:
        if self.fd is not None and self.holder is not None:
            self.holder = Holder(self.holder.host, self.holder.pid, self.holder.started_at, pid, self.holder.role)
            _write_holder(self.fd, self.holder)

    def release(self) -> None:
        # The supervisor's copies are closed by then: the kernel drops the locks.
        for fd in (self.fd, self.dir_fd):
            if fd is not None:
                os.close(fd)
        self.fd = self.dir_fd = None

    def __enter__(self) -> RunLock:
        return self

    def __exit__(self, *_: object) -> None:
        self.release()


def _write_holder(fd: int, holder: Holder) -> None:
    record = json.dumps(
        {
            "host": holder.host,
            "pid": holder.pid,
            "started_at": holder.started_at,
            "supervisor_pid": holder.supervisor_pid,
            "role": holder.role,
        }
    ).encode()
    os.pwrite(fd, record.ljust(_RECORD_BYTES)[:_RECORD_BYTES], 0)


# What waits for what, by (the refused one's role, the holder's role).
_WHY = {
    ("train", "train"): "a second trainer would delete the first one's checkpoints",
    ("train", "eval"): "training waits for the eval to end (it would move aside or overwrite the weights the eval "
    "reads)",
    ("eval", "eval"): "a second eval waits for it to end (both write this run's eval records and files)",
    ("eval", "train"): "the eval waits for the training to end (it would read weights still being written)",
}


def _busy(output_dir: Path, holder: Holder, role: Role = "train") -> RunStateError:
    host = holder.host or "its host"
    stop = f"`kill {holder.pid}` on {host}" if holder.pid else "stop that process"
    why = _WHY.get((role, holder.role), f"this {role} waits for it to end")
    return RunStateError(
        f"{holder.busy_line(output_dir)}: {why}; wait for it to end, or stop it ({stop}) and run this again"
    )


def _same_file(fd: int, path: Path) -> bool:
    try:
        at, held = os.stat(path), os.fstat(fd)
    except FileNotFoundError:
        return False
    return (at.st_dev, at.st_ino) == (held.st_dev, held.st_ino)


def _open_dir(output_dir: Path) -> int | None:
    try:
        return os.open(output_dir, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except (FileNotFoundError, NotADirectoryError):
        return None


def _dir_holder(output_dir: Path) -> Holder:
    """Who holds output_dir locked when its lock file cannot say (it was deleted): the running attempt
    its manifest names, else its running eval (eval/record.py records its pid and host), if any."""
    record = manifest.read(output_dir / manifest.MANIFEST_NAME) or {}
    attempts = record.get("attempts")
    last = attempts[-1] if isinstance(attempts, list) and attempts and isinstance(attempts[-1], dict) else {}
    pid = last.get("pid")
    if record.get("status") == "running" and isinstance(pid, int):
        return Holder(str(record.get("host", "")), pid, str(last.get("started_at", "")), role="train")
    evals = record.get("evals")
    for found in reversed(evals if isinstance(evals, list) else []):
        if isinstance(found, dict) and found.get("status") == "running" and isinstance(found.get("pid"), int):
            return Holder(str(found.get("host", "")), found["pid"], str(found.get("started_at", "")), role="eval")
    return Holder("", None, "")


def _lock_dir(output_dir: Path, role: Role = "train") -> int | None:
    """output_dir itself, locked for this process; None when it does not exist or its filesystem cannot
    flock a directory. Raises RunStateError while another run holds it."""
    waited_for_teardown = False
    deadline = time.monotonic() + _RETRY_S
    while True:
        fd = _open_dir(output_dir)
        if fd is None:
            return None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return fd
        except OSError as exc:
            os.close(fd)
            if exc.errno in _UNSUPPORTED or exc.errno == errno.EBADF:  # NFS: flock needs a writable descriptor
                return None
            if exc.errno not in (errno.EWOULDBLOCK, errno.EAGAIN):
                raise
        holder = _dir_holder(output_dir)
        if holder.alive_here() is False and not waited_for_teardown:
            waited_for_teardown = True  # its oda-sft died; its supervisor is still stopping the trainer
            deadline = time.monotonic() + _TEARDOWN_S
        if time.monotonic() >= deadline:
            raise _busy(output_dir, holder, role)
        time.sleep(0.1)


def _dir_busy(output_dir: Path) -> bool:
    fd = _open_dir(output_dir)
    if fd is None:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except OSError as exc:
        return exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN)
    else:
        with contextlib.suppress(OSError):
            fcntl.flock(fd, fcntl.LOCK_UN)
        return False
    finally:
        os.close(fd)


def acquire(output_dir: Path, node_rank: int = 0, role: Role = "train") -> RunLock:
    """Take the lock of output_dir for this process (recording `role`: train or eval), or raise RunStateError
    naming the live holder and what waits for what."""
    path = lock_path(output_dir, node_rank)
    path.parent.mkdir(parents=True, exist_ok=True)
    waited_for_teardown = False
    deadline = time.monotonic() + _RETRY_S
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            if exc.errno in _UNSUPPORTED:
                os.close(fd)
                say(f"warning: the filesystem of {path.parent} cannot lock files ({exc.strerror}): nothing stops "
                    "a second trainer from starting on this run")  # fmt: skip
                return RunLock(path, None, None)
            if exc.errno not in (errno.EWOULDBLOCK, errno.EAGAIN):
                os.close(fd)
                raise
            holder = _read_holder(fd)
            os.close(fd)
            if holder.alive_here() is False and not waited_for_teardown:
                # Its oda-sft died; its supervisor is stopping the trainer and will let go within seconds.
                waited_for_teardown = True
                deadline = time.monotonic() + _TEARDOWN_S
                say(f"waiting for the processes that {holder.describe()} left behind to stop")
            if time.monotonic() >= deadline:
                raise _busy(output_dir, holder, role) from None
            time.sleep(0.1)
            continue
        # The file may have been replaced between open and flock: hold the lock of the one at the path.
        if not _same_file(fd, path):
            os.close(fd)
            continue
        guarded = output_dir if node_rank == 0 else None
        try:
            dir_fd = _lock_dir(output_dir, role) if guarded is not None else None  # a live run whose lock file is gone
        except BaseException:
            os.close(fd)
            raise
        holder = Holder(socket.gethostname(), os.getpid(), utc_now(), role=role)
        _write_holder(fd, holder)
        return RunLock(path, fd, holder, guarded, dir_fd)


def probe(output_dir: Path, node_rank: int = 0) -> Holder | None:
    """Who holds output_dir's lock right now, or None when nobody does (or it cannot be told).

    Takes the lock shared for an instant and writes nothing."""
    holder = _probe_file(lock_path(output_dir, node_rank))
    if holder is None and node_rank == 0 and _dir_busy(output_dir):
        return _dir_holder(output_dir)  # a live run whose lock file was deleted
    return holder


def _probe_file(path: Path) -> Holder | None:
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except OSError as exc:
            if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN):
                return _read_holder(fd)
            return None
        with contextlib.suppress(OSError):
            fcntl.flock(fd, fcntl.LOCK_UN)
        return None
    finally:
        os.close(fd)


def refuse_if_busy(output_dir: Path, node_rank: int = 0, role: Role = "train") -> None:
    """Fail with the holder's name when a trainer or an eval is live on output_dir; writes nothing."""
    holder = probe(output_dir, node_rank)
    if holder is not None and holder.alive_here() is not False:
        raise _busy(output_dir, holder, role)
