"""A data file's identity: its sha256, computed from its content and never taken from metadata alone.

Hashing a multi-GB file on every command is slow, so the sha256 is remembered in
`~/.cache/oda-sft/sha256-cache.json`. A remembered hash is used only when everything cheap that
could tell a change still matches: size, mtime, ctime, inode and device, and a hash of 3 sampled
2 KiB blocks (head and tail included) read on every use. ctime cannot be set back by `touch`,
`cp -p` or `os.utime`, so an edit that keeps size and mtime still shows. A hash recorded within
2 s of the file's last change is not trusted either (file timestamps tick coarsely, so a second
write in the same tick could look identical); the next use hashes the file again. So a file just
written (by `data add`, say) is hashed once more on its first use, never trusted from the writer. Files no larger
than the sample are always hashed whole.

The cache is read once per process and written at most once per batch (`batch()`), so listing
10k datasets costs 10k cheap checks, not 10k rewrites of the cache.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import stat
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, overload

from oda_sft.data import files
from oda_sft.errors import DatasetError
from oda_sft.util.fs import atomic_write_json
from oda_sft.util.paths import cache_dir

SAMPLE_BLOCK = 2048
SAMPLE_BLOCKS = 3
SMALL = SAMPLE_BLOCK * SAMPLE_BLOCKS  # no larger than the sample: hashed whole, never cached
RACY_NS = 2_000_000_000  # a hash recorded this soon after the last change is checked again
MAX_ENTRIES = 20_000
_READ = 1 << 22
_VERSION = 2


@dataclass(frozen=True)
class Stamp:
    """What the filesystem says about a file; equal stamps are necessary, never sufficient."""

    size: int
    mtime_ns: int
    ctime_ns: int
    ino: int
    dev: int

    @classmethod
    def of(cls, st: os.stat_result) -> Stamp:
        return cls(st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino, st.st_dev)

    def as_list(self) -> list[int]:
        return [self.size, self.mtime_ns, self.ctime_ns, self.ino, self.dev]


@dataclass(frozen=True)
class Identity:
    """A file's sha256 and the stamp it was taken under: a later stamp that differs means it changed."""

    sha256: str
    stamp: Stamp


class _Cache:
    """path -> [size, mtime_ns, ctime_ns, ino, dev, sample, sha256, started_ns (when its read began)]."""

    def __init__(self, file: Path) -> None:
        self.file = file
        self.env: tuple[str | None, ...] = ()
        self.entries: dict[str, list[object]] = {}
        self.dirty = False
        with contextlib.suppress(OSError, ValueError):
            loaded = json.loads(file.read_text(encoding="utf-8"))
            if isinstance(loaded, dict) and loaded.get("version") == _VERSION:
                stored = loaded.get("entries")
                if isinstance(stored, dict):
                    self.entries = {k: v for k, v in stored.items() if isinstance(v, list) and len(v) == 8}

    def save(self) -> None:
        if not self.dirty:
            return
        self.dirty = False
        if len(self.entries) > MAX_ENTRIES:  # keep the most recently recorded
            newest = sorted(self.entries.items(), key=lambda kv: int(str(kv[1][7])), reverse=True)
            self.entries = dict(newest[:MAX_ENTRIES])
        with contextlib.suppress(OSError):  # a read-only cache dir costs a re-hash later, nothing more
            atomic_write_json(self.file, {"version": _VERSION, "entries": self.entries})


_cache: _Cache | None = None
_batch_depth = 0


def _the_cache() -> _Cache:
    global _cache
    if _cache is not None and (_batch_depth > 0 or _cache.env == _cache_env()):
        return _cache
    if _cache is not None:
        _cache.save()
    _cache = _Cache(cache_dir() / "sha256-cache.json")
    _cache.env = _cache_env()
    return _cache


def _cache_env() -> tuple[str | None, ...]:
    """What cache_dir() depends on: compared instead of building the path for each of 10k files."""
    return os.environ.get("ODA_SFT_HOME"), os.environ.get("XDG_CACHE_HOME"), os.environ.get("HOME")


@contextlib.contextmanager
def batch() -> Iterator[None]:
    """Hash many files; the cache is written once, at the end."""
    global _batch_depth
    _batch_depth += 1
    try:
        yield
    finally:
        _batch_depth -= 1
        if _batch_depth == 0 and _cache is not None:
            _cache.save()


def _put(key: str, stamp: list[int], sample: str, sha: str, started_ns: int) -> None:
    cache = _the_cache()
    cache.entries[key] = [*stamp, sample, sha, started_ns]
    cache.dirty = True
    if _batch_depth == 0:
        cache.save()


def _sample(fd: int, size: int) -> str:
    step = (size - SAMPLE_BLOCK) // (SAMPLE_BLOCKS - 1)
    blocks = [os.pread(fd, SAMPLE_BLOCK, step * i) for i in range(SAMPLE_BLOCKS - 1)]
    blocks.append(os.pread(fd, SAMPLE_BLOCK, size - SAMPLE_BLOCK))  # the tail, exactly
    return hashlib.sha256(b"".join(blocks)).hexdigest()[:32]


def _full(fd: int) -> str:
    digest = hashlib.sha256()
    offset = 0
    while block := os.pread(fd, _READ, offset):
        digest.update(block)
        offset += len(block)
    return digest.hexdigest()


def _trusted(hit: list[object] | None, stamp: list[int], sample: str | None) -> str | None:
    """The remembered sha256 when the stamp (and the sampled blocks, unless sample is None) agree."""
    if hit is None or (sample is not None and hit[5] != sample) or hit[:5] != stamp or not isinstance(hit[6], str):
        return None
    started = hit[7]
    # A write in the same timestamp tick as the last change, after the read began, would leave the
    # stamp as it was: such a hash is only trusted once the read began well after that tick.
    if not isinstance(started, int) or started - max(stamp[1], stamp[2]) < RACY_NS:
        return None
    return hit[6]


def listed(path: Path | str, st: os.stat_result | None = None) -> str | None:
    """For listings only: the remembered sha256 when the file's stamp (size, mtime, ctime, inode,
    device) is the one it was hashed under, without opening the file; else None. ctime cannot be set
    back by any tool (`touch -r`, `cp -p`), so this shows what a stored analysis decided for the
    content last seen; whatever trains or is recorded goes through `identify`, which also compares
    sampled blocks and re-hashes when in doubt."""
    key = os.path.abspath(path)
    if st is None:  # the caller may pass the stat it just took
        try:
            st = os.stat(key)
        except OSError:
            return None
    if not stat.S_ISREG(st.st_mode) or st.st_size <= SMALL:
        return None
    stamp = [st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino, st.st_dev]
    return _trusted(_the_cache().entries.get(key), stamp, None)


@overload
def identify(
    path: Path | str, what: str = ..., *, missing_ok: Literal[False] = ..., checked: bool = ...
) -> Identity: ...
@overload
def identify(path: Path | str, what: str = ..., *, missing_ok: bool, checked: bool = ...) -> Identity | None: ...


def identify(
    path: Path | str, what: str = "data file", *, missing_ok: bool = False, checked: bool = False
) -> Identity | None:
    """The file's sha256 (from the cache when every cheap check agrees) and the stamp it holds for.

    missing_ok: None, instead of an error, when the path is not a regular file (yet).
    checked: the caller has just seen (files.describe) that it is a regular file."""
    key = os.path.abspath(path)
    if not checked:
        try:
            regular = stat.S_ISREG(os.stat(key).st_mode)
        except OSError:
            regular = False
        if not regular:  # refused before it is opened, with what it is
            if missing_ok:
                return None
            files.require_file(Path(path), what, "it must be a regular file")
    try:
        fd = os.open(key, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as exc:
        raise DatasetError(f"cannot read {what} {path}: {exc.strerror}: check its permissions") from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):  # swapped after the check
            files.require_file(Path(path), what, "it must be a regular file")
        stamp = [st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino, st.st_dev]
        sample = ""
        if st.st_size > SMALL:
            sample = _sample(fd, st.st_size)
            cached = _trusted(_the_cache().entries.get(key), stamp, sample)
            if cached is not None:
                return Identity(cached, Stamp(*stamp))
        started_ns = time.time_ns()
        sha = _full(fd)
        after = os.fstat(fd)
        if [after.st_size, after.st_mtime_ns, after.st_ctime_ns, after.st_ino, after.st_dev] != stamp:
            raise DatasetError(
                f"{path} changed while it was being hashed: run the command again once nothing writes to it"
            )
    finally:
        os.close(fd)
    if st.st_size > SMALL:
        _put(key, stamp, sample, sha, started_ns)
    return Identity(sha, Stamp(*stamp))


def file_sha256(path: Path) -> str:
    return identify(path, "file").sha256


def current_stamp(path: Path) -> Stamp | None:
    """The file's stamp now, or None when it is gone or not a regular file."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return Stamp.of(st) if stat.S_ISREG(st.st_mode) else None
