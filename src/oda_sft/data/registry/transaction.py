"""One change to a dataset dir as one transaction: a data file and its dataset_info.json entry, together.

An interrupted or failed change leaves the old state byte for byte, and no temporary files:

    <dataset dir>/.oda-sft-txn-XXXX/   one per transaction, flock-ed by its process while it lives
        data.json                       the new data file, written while the source is converted
        journal.json                    written (and fsync-ed) before anything is renamed
        old-data                        a hard link to the data file being replaced
    .dataset_info.json.oda-sft-XXXX.tmp the new registry text, next to the registry's real file

Commit, with SIGINT/SIGTERM/SIGHUP held back: journal; link the old data file; write the new
registry text; rename the new data file into place; rename the new registry into place (the commit
point); remove the transaction dir. An error or a signal before the commit point undoes what was
done, in this process; SIGKILL or a power cut leaves the transaction dir, and the next command
that loads the dataset dir undoes it (or, past the commit point, only removes the leftovers)
before it reads anything. A transaction whose process is alive holds its flock and is left alone.
"""

from __future__ import annotations

import errno
import fcntl
import hashlib
import json
import os
import shutil
import tempfile
from pathlib import Path
from types import TracebackType
from typing import Any

from oda_sft.data.registry.info_file import TEMP_PREFIX, RegistryFile, fsync_dir
from oda_sft.util import signals

TXN_PREFIX = ".oda-sft-txn-"
COMMIT_STEPS = ("journal", "old-data-linked", "registry-staged", "data-in-place", "registry-in-place", "committed")
_BUFFER = 1 << 20


def step(name: str) -> None:
    """Called as each step of a change completes: a seam where tests stop the process with real signals."""


def _write_fd(fd: int, data: bytes) -> None:
    """Every byte a transaction writes goes through here (tests put a full disk at this seam)."""
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


class TxnFile:
    """A file written for a transaction: buffered, fsync-ed when finished; errors name `shown`."""

    def __init__(self, path: Path, shown: Path) -> None:
        self.path = path
        self.shown = shown
        self.fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o644)
        self._pending: list[bytes] = []
        self._pending_size = 0
        self.size = 0

    def write(self, data: bytes) -> None:
        self._pending.append(data)
        self._pending_size += len(data)
        self.size += len(data)
        if self._pending_size >= _BUFFER:
            self._flush()

    def _flush(self) -> None:
        data = b"".join(self._pending)
        self._pending, self._pending_size = [], 0
        try:
            _write_fd(self.fd, data)
        except OSError as exc:
            raise OSError(exc.errno, exc.strerror, str(self.shown)) from None

    def finish(self) -> int:
        """Write what is buffered, fsync, close; returns the file's inode."""
        try:
            self._flush()
            try:
                os.fsync(self.fd)
            except OSError as exc:
                raise OSError(exc.errno, exc.strerror, str(self.shown)) from None
            return os.fstat(self.fd).st_ino
        finally:
            self.close()

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1

    def __enter__(self) -> TxnFile:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.close()


def _sha(path: Path) -> str | None:
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except FileNotFoundError:
        return None


def _lexists(path: Path) -> bool:
    return os.path.lexists(path)


class Transaction:
    """`with Transaction(registry) as txn`: write `txn.data(...)`, then `txn.commit(...)` under the lock."""

    def __init__(self, registry: RegistryFile) -> None:
        self.registry = registry
        with registry.locked():  # so no `recover` can see the new directory before it is flock-ed
            self.dir = Path(tempfile.mkdtemp(prefix=TXN_PREFIX, dir=registry.dir))
            self._fd = os.open(self.dir, os.O_RDONLY)
            fcntl.flock(self._fd, fcntl.LOCK_EX)  # held until close: a live transaction is never undone
        self.data_file: TxnFile | None = None
        self.committed = False

    @property
    def id(self) -> str:
        return self.dir.name.removeprefix(TXN_PREFIX)

    def __enter__(self) -> Transaction:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.close()

    def data(self, shown: Path) -> TxnFile:
        """The new data file, written inside the transaction dir; `shown` is named in errors."""
        self.data_file = TxnFile(self.dir / "data.json", shown)
        return self.data_file

    def commit(self, text: str, target: Path | None) -> None:
        """Put the written data file at `target` (None: no data file changes) and the registry `text`
        in place, as one change. Call under `registry.locked()`; on any failure the old state stays."""
        with signals.critical():
            try:
                self._commit(text, target)
            except BaseException:
                undo(self.dir, self.registry)
                raise
            self.committed = True
        step("committed")

    def _commit(self, text: str, target: Path | None) -> None:
        registry = self.registry.target
        new = text.encode("utf-8")
        data_ino = None
        if target is not None:
            assert self.data_file is not None
            data_ino = os.stat(self.data_file.path).st_ino
        registry_temp = registry.parent / f"{TEMP_PREFIX}{self.id}.tmp"
        journal = {
            "registry": str(registry),
            "old_registry_sha": _sha(registry),
            "new_registry_sha": hashlib.sha256(new).hexdigest(),
            "registry_temp": str(registry_temp),
            "target": str(target) if target is not None else None,
            "target_existed": target is not None and _lexists(target),
            "data_ino": data_ino,
        }
        with TxnFile(self.dir / "journal.json", self.registry.path) as record:
            record.write(json.dumps(journal).encode())
            record.finish()
        fsync_dir(self.dir)
        step("journal")
        if target is not None and journal["target_existed"]:
            try:
                os.link(target, self.dir / "old-data", follow_symlinks=False)
            except OSError:  # a filesystem without hard links: move it aside instead
                os.rename(target, self.dir / "old-data")
            step("old-data-linked")
        with TxnFile(registry_temp, self.registry.path) as staged:
            staged.write(new)
            staged.finish()
        step("registry-staged")
        if target is not None:
            os.replace(self.dir / "data.json", target)
            step("data-in-place")
        self.registry.replace_with(registry_temp)  # the commit point
        step("registry-in-place")
        if target is not None:
            fsync_dir(target.parent)

    def close(self) -> None:
        if self.data_file is not None:
            self.data_file.close()
        shutil.rmtree(self.dir, ignore_errors=True)
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1


def undo(txn_dir: Path, registry: RegistryFile) -> None:
    """Put back the state from before the transaction in `txn_dir`, unless it got past its commit point."""
    try:
        journal: dict[str, Any] | None = json.loads((txn_dir / "journal.json").read_text())
    except (OSError, ValueError):
        journal = None  # nothing was renamed before the journal was durable
    if journal is not None:
        registry_path = Path(journal["registry"])
        target = Path(journal["target"]) if journal.get("target") else None
        current = _sha(registry_path)
        if journal["old_registry_sha"] != journal["new_registry_sha"]:
            committed = current == journal["new_registry_sha"]
        else:
            committed = target is None or (_lexists(target) and os.lstat(target).st_ino == journal["data_ino"])
        if not committed and target is not None:
            old = txn_dir / "old-data"
            if _lexists(old):
                os.replace(old, target)
            elif not journal["target_existed"] and _lexists(target) and os.lstat(target).st_ino == journal["data_ino"]:
                os.unlink(target)
            fsync_dir(target.parent)
        Path(journal["registry_temp"]).unlink(missing_ok=True)
    shutil.rmtree(txn_dir, ignore_errors=True)


def _stale(directory: Path) -> list[Path]:
    try:
        names = [e.name for e in os.scandir(directory)]
    except OSError:
        return []
    return [directory / n for n in names if n.startswith((TXN_PREFIX, TEMP_PREFIX))]


def recover(registry: RegistryFile) -> list[str]:
    """Undo what killed transactions left in the dataset dir; returns what was done, for a note."""
    found = _stale(registry.dir)
    if registry.target.parent.resolve() != registry.dir.resolve():
        found += _stale(registry.target.parent)
    if not found:
        return []
    done: list[str] = []
    try:
        with registry.locked():
            for path in sorted(found, key=lambda p: not p.name.startswith(TXN_PREFIX)):  # transactions first
                done.extend(_recover_one(path, registry))
    except OSError as exc:  # a read-only dataset dir: nothing can be undone here, and nothing was changed
        if exc.errno not in (errno.EROFS, errno.EACCES, errno.EPERM):
            raise
    return done


def _recover_one(path: Path, registry: RegistryFile) -> list[str]:
    name = path.name
    if name.startswith(TXN_PREFIX):
        try:
            fd = os.open(path, os.O_RDONLY)
        except OSError:
            return []
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return []  # its process is still running
        finally:
            os.close(fd)  # an undo by a second process at once is serialised by the registry lock
        undo(path, registry)
        return [f"undid an interrupted `data add` ({name})"]
    # a registry temp file (TEMP_PREFIX): those exist only under the lock, which we hold
    path.unlink(missing_ok=True)
    return [f"removed {name}"]
