"""sha256 of data files, remembered by (path, size, mtime, inode) so multi-GB files are hashed once."""

from __future__ import annotations

import contextlib
import hashlib
import json
from pathlib import Path

from oda_sft.util.fs import atomic_write_json
from oda_sft.util.paths import cache_dir

_BLOCK = 1 << 22


def _cache_file() -> Path:
    return cache_dir() / "sha256-cache.json"


def _stamp(path: Path) -> list[int]:
    st = path.stat()
    return [st.st_size, st.st_mtime_ns, st.st_ino]


def file_sha256(path: Path) -> str:
    path = path.resolve()
    stamp = _stamp(path)
    cache: dict[str, object] = {}
    with contextlib.suppress(OSError, ValueError):
        loaded = json.loads(_cache_file().read_text(encoding="utf-8"))
        if isinstance(loaded, dict):
            cache = loaded
    hit = cache.get(str(path))
    if isinstance(hit, dict) and hit.get("stamp") == stamp and isinstance(hit.get("sha256"), str):
        return str(hit["sha256"])
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while block := handle.read(_BLOCK):
            digest.update(block)
    sha = digest.hexdigest()
    remember(path, sha, stamp)
    return sha


def remember(path: Path, sha: str, stamp: list[int] | None = None) -> None:
    """Record a hash computed elsewhere (e.g. while streaming the file); the cache is only a shortcut."""
    path = path.resolve()
    try:
        stamp = stamp or _stamp(path)
        cache: dict[str, object] = {}
        with contextlib.suppress(OSError, ValueError):
            loaded = json.loads(_cache_file().read_text(encoding="utf-8"))
            if isinstance(loaded, dict):
                cache = {k: v for k, v in loaded.items() if Path(k).exists()}
        cache[str(path)] = {"stamp": stamp, "sha256": sha}
        atomic_write_json(_cache_file(), cache)
    except OSError:
        pass  # a read-only cache dir costs a re-hash later, nothing more
