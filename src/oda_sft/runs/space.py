"""Disk space for a run's outputs: refused before launch when it cannot fit, named after a failure.

What a run writes, from the model's parameter count P: the final weights (2 bytes per parameter in
bf16, 4 on the CPU's fp32), and each checkpoint: the weights, plus for a full (--resumable)
checkpoint the optimizer state DeepSpeed or torch saves (fp32 master weights and Adam's two moments,
12 bytes per parameter). The trainer writes a new checkpoint before it deletes the oldest, so one
more than save_total_limit exist for a moment.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from oda_sft.errors import StorageError

GIB = 1024**3
_OPTIMIZER_BYTES_PER_PARAM = 12


def disk_free(path: Path) -> int:
    """Free bytes on the filesystem that holds path (or its nearest existing parent)."""
    while not path.exists() and path != path.parent:
        path = path.parent
    return shutil.disk_usage(path).free


def needed_bytes(params: int, bf16: bool, full_checkpoints: bool, keep: int, existing: int) -> int:
    weights = params * (2 if bf16 else 4)
    checkpoint = weights + (params * _OPTIMIZER_BYTES_PER_PARAM if full_checkpoints else 0)
    new_checkpoints = max(1, keep + 1 - existing)
    return weights + new_checkpoints * checkpoint


def _gib(n: int) -> str:
    return f"{n / GIB:.1f} GiB" if n >= GIB // 10 else f"{n / 1024**2:.0f} MiB"


def needed_for(config: dict[str, Any], params: int, existing_checkpoints: int = 0) -> int:
    """Bytes a run of `params` parameters trained with `config` writes, beside `existing_checkpoints`."""
    keep = config.get("save_total_limit")
    return needed_bytes(
        params,
        bf16=bool(config.get("bf16")),
        full_checkpoints=not config.get("save_only_model", False),
        keep=keep if isinstance(keep, int) and keep > 0 else 1,
        existing=existing_checkpoints,
    )


def check(config: dict[str, Any], params: int, output_dir: Path, existing_checkpoints: int) -> None:
    """Refuse (exit 6, nothing written) when the output root cannot hold what the run will write:
    `params` parameters trained with `config` into `output_dir`, which holds `existing_checkpoints`."""
    need = needed_for(config, params, existing_checkpoints)
    free = disk_free(output_dir)
    if free < need:
        raise StorageError(
            f"not enough space in {output_dir.parent} for this run's checkpoints and weights: about "
            f"{_gib(need)} needed, {_gib(free)} free: free some space, or choose another --output-root"
        )


def diagnose(output_dir: Path, low: int = GIB) -> str:
    """A clause for a failed run's message when its filesystem is (nearly) full; '' otherwise."""
    try:
        free = disk_free(output_dir)
    except OSError:
        return ""
    if free >= low:
        return ""
    return f"the filesystem holding {output_dir} has only {_gib(free)} free, so a full disk is the likely cause"
