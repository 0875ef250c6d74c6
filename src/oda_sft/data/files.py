"""What a path is, before anything reads it: a FIFO would block a reader forever, a device never ends.

Every file oda-sft reads as data (a source, a registered data file, dataset_info.json) is checked
here first with `lstat`/`stat`, never opened unless it is a regular file, and then opened with
O_NONBLOCK and checked again on the open descriptor, so a path swapped for a FIFO in between
still cannot hang the reader.
"""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path
from typing import BinaryIO

from oda_sft.errors import DatasetError


def describe(path: Path | str) -> str | None:
    """None for an existing regular file (or a link to one); otherwise what the path is, for a message."""
    return examine(path)[1]


def examine(path: Path | str) -> tuple[os.stat_result | None, str | None]:
    """(its stat, None) for a regular file (or a link to one); otherwise (None, what the path is)."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        if os.path.islink(path):
            return None, f"a dangling symbolic link (to {os.readlink(path)}, which does not exist)"
        return None, "missing (it does not exist)"
    except NotADirectoryError:
        return None, "missing (a part of the path is not a directory)"
    except PermissionError:
        return None, "unreadable (permission denied on the path)"
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            return None, "a symbolic link loop"
        return None, f"unreadable ({exc.strerror})"
    kind = _kind(st.st_mode)
    return (st if kind is None else None), kind


def _kind(mode: int) -> str | None:
    if stat.S_ISREG(mode):
        return None
    if stat.S_ISDIR(mode):
        return "a directory"
    if stat.S_ISFIFO(mode):
        return "a FIFO (named pipe)"
    if stat.S_ISCHR(mode):
        return "a character device"
    if stat.S_ISBLK(mode):
        return "a block device"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "not a regular file"


def require_file(path: Path, what: str, fix: str) -> None:
    """Raise a one-line error naming `path` and what it is, unless it is a regular file."""
    kind = describe(path)
    if kind is not None:
        raise DatasetError(f"{what} {path} is {kind}, not a regular file: {fix}")


def open_regular(path: Path, what: str, fix: str) -> BinaryIO:
    """Open a regular file for reading; anything else is refused without ever blocking on it."""
    require_file(path, what, fix)
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as exc:
        raise DatasetError(f"cannot read {what} {path}: {exc.strerror}: {fix}") from None
    try:
        kind = _kind(os.fstat(fd).st_mode)
        if kind is not None:  # replaced between the check and the open
            raise DatasetError(f"{what} {path} is {kind}, not a regular file: {fix}")
        os.set_blocking(fd, True)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def is_inside(directory: Path, relative: str) -> bool:
    """True when `relative`, joined to `directory` as LLaMA-Factory joins it, names a path inside it.

    Lexical on purpose: `../x` and absolute paths are outside; a symbolic link the user placed inside
    the directory is the user's own explicit choice and counts as inside.
    """
    if not relative or os.path.isabs(relative):
        return False
    normal = os.path.normpath(relative)
    return normal != ".." and not normal.startswith(".." + os.sep) and normal != "."
