"""Facts about the environment a run used, gathered without importing torch or starting processes."""

from __future__ import annotations

import importlib.metadata
import os
import re
from collections.abc import Mapping
from pathlib import Path

from oda_sft.paths import checkout_root

PACKAGES = ("oda-sft", "llamafactory", "torch", "transformers", "deepspeed", "liger-kernel", "datasets", "accelerate")
# A secret's name has one of these as a whole _-separated word: HF_TOKEN, hub_token, WANDB_API_KEY.
# Settings such as add_special_tokens or include_num_input_tokens_seen are not secrets.
_SECRET = re.compile(r"(^|_)(TOKEN|KEY|APIKEY|SECRET|PASSWORD|PASSWD|CREDENTIALS?)($|_)", re.IGNORECASE)
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
        lines = info.read_text().splitlines()
        names.append(next((ln.split(":", 1)[1].strip() for ln in lines if ln.startswith("Model:")), "unknown"))
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is not None:
        picked = [int(v) for v in visible.split(",") if v.strip().isdigit()]
        names = [names[i] for i in picked if i < len(names)]
    return names


def redact(mapping: Mapping[str, str]) -> dict[str, str]:
    """Drop anything whose name looks like a secret; keep the rest as is."""
    return {k: v for k, v in mapping.items() if not is_secret_name(k)}
