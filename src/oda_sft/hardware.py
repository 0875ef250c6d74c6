"""What accelerators this node has, found without importing torch (start-up must stay fast)."""

from __future__ import annotations

import os
from pathlib import Path

_NVIDIA_PROC = Path("/proc/driver/nvidia/gpus")


def visible_gpu_count() -> int:
    """GPUs this process may use: the driver's count, narrowed by CUDA_VISIBLE_DEVICES.

    ODA_SFT_GPU_COUNT overrides the detection, for tests and for drivers we cannot see.
    """
    forced = os.environ.get("ODA_SFT_GPU_COUNT")
    if forced is not None and forced.strip().isdigit():
        return int(forced)
    physical = len(list(_NVIDIA_PROC.iterdir())) if _NVIDIA_PROC.is_dir() else 0
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is None:
        return physical
    ids = [v for v in visible.split(",") if v.strip() and v.strip() != "-1"]
    return min(len(ids), physical)
