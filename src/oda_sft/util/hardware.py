"""What accelerators this node has, and their free memory, found without importing torch
(start-up must stay fast): the NVIDIA driver's /proc entries, and nvidia-smi through the
subprocess seam.

ODA_SFT_GPU_COUNT overrides the count, and ODA_SFT_GPU_FREE_MIB (with ODA_SFT_GPU_NAME) the
memory query: for tests, and for a submit host that renders configs for GPUs it cannot see.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from oda_sft.util import subproc

_NVIDIA_PROC = Path("/proc/driver/nvidia/gpus")


def visible_gpu_count() -> int:
    """GPUs this process may use: the driver's count, narrowed by CUDA_VISIBLE_DEVICES."""
    forced = os.environ.get("ODA_SFT_GPU_COUNT")
    if forced is not None and forced.strip().isdigit():
        return int(forced)
    physical = len(list(_NVIDIA_PROC.iterdir())) if _NVIDIA_PROC.is_dir() else 0
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is None:
        return physical
    ids = [v for v in visible.split(",") if v.strip() and v.strip() != "-1"]
    return min(len(ids), physical)


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


MIB = 1024**2
_QUERY = ["--query-gpu=index,name,memory.total,memory.free", "--format=csv,noheader,nounits"]


@dataclass(frozen=True)
class DeviceMemory:
    """The memory one training process can use, on the most constrained device it will run on."""

    kind: str  # "gpu" or "cpu" (host RAM, for the tiny model's CPU fallback)
    name: str
    free_bytes: int
    total_bytes: int
    source: str  # where the numbers came from, for the notes

    def describe(self) -> str:
        free, total = self.free_bytes / 1024**3, self.total_bytes / 1024**3
        return f"{self.name}: {free:.1f} GiB free of {total:.1f} GiB ({self.source})"


Query = Callable[[list[str]], subproc.Captured | None]


def _nvidia_smi(argv: list[str]) -> subproc.Captured | None:
    return subproc.capture(argv)


def parse_query(text: str) -> list[tuple[int, str, int, int]]:
    """Rows of (index, name, total MiB, free MiB) from nvidia-smi's CSV; unparsable rows are skipped."""
    rows: list[tuple[int, str, int, int]] = []
    for line in text.splitlines():
        parts = [p.strip() for p in line.split(",")]
        if len(parts) != 4:
            continue
        try:
            rows.append((int(parts[0]), parts[1], int(float(parts[2])), int(float(parts[3]))))
        except ValueError:
            continue
    return rows


def _visible(rows: list[tuple[int, str, int, int]]) -> list[tuple[int, str, int, int]]:
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is None:
        return rows
    wanted = [v.strip() for v in visible.split(",") if v.strip()]
    if not all(v.isdigit() for v in wanted):  # UUIDs or MIG names: cannot map them, so judge by all GPUs
        return rows
    ids = {int(v) for v in wanted}
    return [r for r in rows if r[0] in ids]


def gpu_memory(query: Query = _nvidia_smi) -> DeviceMemory | None:
    """The visible GPU with the least free memory (every rank must fit), or None when unknown."""
    forced = os.environ.get("ODA_SFT_GPU_FREE_MIB", "").strip()
    if forced:
        try:
            free = int(float(forced)) * MIB
        except ValueError:
            return None
        name = os.environ.get("ODA_SFT_GPU_NAME", "GPU")
        return DeviceMemory("gpu", name, free, free, "ODA_SFT_GPU_FREE_MIB")
    exe = shutil.which("nvidia-smi")
    if exe is None:
        return None
    done = query([exe, *_QUERY])
    if done is None or done.returncode != 0:
        return None
    rows = _visible(parse_query(done.stdout))
    if not rows:
        return None
    index, name, total, free = min(rows, key=lambda r: r[3])
    return DeviceMemory("gpu", name, free * MIB, total * MIB, f"nvidia-smi, GPU {index} of {len(rows)} visible")


def host_memory(meminfo: Path = Path("/proc/meminfo")) -> DeviceMemory | None:
    """Host RAM available to a CPU run, from /proc/meminfo; None where that file is absent."""
    try:
        text = meminfo.read_text(encoding="ascii")
    except OSError:
        return None
    values: dict[str, int] = {}
    for line in text.splitlines():
        key, _, rest = line.partition(":")
        fields = rest.split()
        if fields and fields[0].isdigit():
            values[key] = int(fields[0]) * 1024  # /proc/meminfo counts kB
    if "MemAvailable" not in values or "MemTotal" not in values:
        return None
    return DeviceMemory("cpu", "host RAM", values["MemAvailable"], values["MemTotal"], str(meminfo))
