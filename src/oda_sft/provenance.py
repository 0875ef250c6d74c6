"""Facts about the environment a run used, gathered without importing torch or starting processes."""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import os
import re
from collections.abc import Mapping
from pathlib import Path

from oda_sft.fsutil import atomic_write_json
from oda_sft.paths import cache_dir, checkout_root

PACKAGES = ("oda-sft", "llamafactory", "torch", "transformers", "deepspeed", "liger-kernel", "datasets", "accelerate")
_SECRET = re.compile(r"(TOKEN|KEY|SECRET|PASSWORD|PASSWD|CREDENTIAL)", re.IGNORECASE)
_NVIDIA_PROC = Path("/proc/driver/nvidia/gpus")


def is_secret_name(name: str) -> bool:
    return bool(_SECRET.search(name))


def package_versions() -> dict[str, str | None]:
    versions: dict[str, str | None] = {}
    for name in PACKAGES:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def git_commit() -> str | None:
    """The checkout's HEAD commit, read from .git directly (no subprocess)."""
    root = checkout_root()
    git = root / ".git" if root else None
    if git is None or not git.is_dir():
        return None
    head = (git / "HEAD").read_text().strip()
    if not head.startswith("ref: "):
        return head or None
    ref = head[5:]
    loose = git / ref
    if loose.is_file():
        return loose.read_text().strip()
    packed = git / "packed-refs"
    if packed.is_file():
        for line in packed.read_text().splitlines():
            sha, _, name = line.partition(" ")
            if name == ref:
                return sha
    return None


def gpu_names() -> list[str]:
    """GPU models from the NVIDIA driver's /proc entries, narrowed by CUDA_VISIBLE_DEVICES."""
    if not _NVIDIA_PROC.is_dir():
        return []
    names = []
    for info in sorted(_NVIDIA_PROC.glob("*/information")):
        model = next((ln.split(":", 1)[1].strip() for ln in info.read_text().splitlines() if ln.startswith("Model:")), "")
        names.append(model or "unknown")
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is not None:
        picked = [int(v) for v in visible.split(",") if v.strip().isdigit()]
        names = [names[i] for i in picked if i < len(names)]
    return names


def redact(mapping: Mapping[str, str]) -> dict[str, str]:
    """Drop anything whose name looks like a secret; keep the rest as is."""
    return {k: v for k, v in mapping.items() if not is_secret_name(k)}


def sha256_file(path: Path) -> str:
    """Content hash, cached by (path, size, mtime) so big datasets are hashed once."""
    stat = path.stat()
    memo_path = cache_dir() / "file-hashes.json"
    key = f"{path.resolve()}|{stat.st_size}|{stat.st_mtime_ns}"
    try:
        memo: dict[str, str] = json.loads(memo_path.read_text())
    except (OSError, ValueError):
        memo = {}
    if key in memo:
        return memo[key]
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    memo[key] = digest.hexdigest()
    try:
        atomic_write_json(memo_path, memo)
    except OSError:
        pass  # a read-only cache only costs a re-hash next time
    return memo[key]
