"""Facts about the environment a run used, gathered without importing torch or starting processes."""

from __future__ import annotations

import importlib.metadata

from oda_sft.util.paths import checkout_root

PACKAGES = ("oda-sft", "llamafactory", "torch", "transformers", "deepspeed", "liger-kernel", "datasets", "accelerate")


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
