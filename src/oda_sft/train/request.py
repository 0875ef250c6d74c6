"""What the user asked for: the run (model, dataset, seed, ...) and how to launch it. Values only."""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from oda_sft.eras import CURRENT, RecipeEra
from oda_sft.errors import UsageError

RequestedMode = Literal["auto", "standard", "long"]
Profile = Literal["default", "fast"]
Tracker = Literal["none", "tensorboard", "wandb", "mlflow", "swanlab"]  # --report-to (runs/tracker.py)

_HOSTNAME = re.compile(r"[A-Za-z0-9]([A-Za-z0-9.-]{0,252})")


@dataclass(frozen=True)
class LaunchOptions:
    """LLaMA-Factory's torchrun launcher settings. None leaves LLaMA-Factory's default."""

    nproc_per_node: int | None = None
    nnodes: int = 1
    node_rank: int = 0
    master_addr: str | None = None
    master_port: int | None = None

    def validate(self) -> None:
        if self.nproc_per_node is not None and self.nproc_per_node < 1:
            raise UsageError(f"--nproc-per-node {self.nproc_per_node} must be at least 1")
        if self.nnodes < 1:
            raise UsageError(f"--nnodes {self.nnodes} must be at least 1")
        if not 0 <= self.node_rank < self.nnodes:
            raise UsageError(f"--node-rank {self.node_rank} must be between 0 and --nnodes - 1 ({self.nnodes - 1})")
        if self.nnodes > 1 and not self.master_addr:
            raise UsageError(
                f"--nnodes {self.nnodes} needs --master-addr: the address of the rank-0 node, the same on every node"
            )
        if self.master_addr is not None and not _valid_host(self.master_addr):
            raise UsageError(f"--master-addr {self.master_addr!r} is not a hostname or IP address")
        if self.master_port is not None and not 1024 <= self.master_port <= 65535:
            raise UsageError(f"--master-port {self.master_port} must be between 1024 and 65535")

    def uses_torchrun(self, gpu_count: int, deepspeed: bool = False) -> bool:
        # LLaMA-Factory uses torchrun when forced or when more than one device is visible. oda-sft also
        # forces it for DeepSpeed on one GPU, which otherwise has no launcher to set up its process group.
        return self.nnodes > 1 or (self.nproc_per_node or 0) > 1 or gpu_count > 1 or (deepspeed and gpu_count > 0)

    def world_size(self, gpu_count: int) -> int:
        return self.nnodes * (self.nproc_per_node or max(gpu_count, 1))


def _valid_host(value: str) -> bool:
    try:
        ipaddress.ip_address(value)
        return True
    except ValueError:
        return bool(_HOSTNAME.fullmatch(value)) and ".." not in value


@dataclass(frozen=True)
class TrainRequest:
    model: str
    dataset: str
    seed: int = 42
    mode: RequestedMode = "auto"
    model_path: Path | None = None
    dataset_dir: Path = Path("data")
    output_root: Path = Path("saves")
    launch: LaunchOptions = field(default_factory=LaunchOptions)
    overrides: list[str] = field(default_factory=list)
    profile: Profile = "default"
    resumable: bool = False
    save_steps: int | None = None
    recipe: RecipeEra = CURRENT  # which LLaMA-Factory's tokens the run reproduces (oda_sft/eras.py)
    report_to: Tracker | None = None  # None: the trainer's own default
