"""Turn a rendered config into the llamafactory-cli command, and run it.

`build_command` is pure; `run` starts the trainer, through the subprocess seam in subproc.py.
"""

from __future__ import annotations

import ipaddress
import os
import re
import shutil
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from oda_sft import subproc
from oda_sft.errors import LaunchError, UsageError

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


def _valid_host(value: str) -> bool:
    try:
        ipaddress.ip_address(value)
        return True
    except ValueError:
        return bool(_HOSTNAME.fullmatch(value)) and ".." not in value


def launcher_path() -> str:
    """llamafactory-cli from this interpreter's environment, so an unactivated venv works."""
    beside = Path(sys.executable).parent / "llamafactory-cli"
    if beside.is_file():
        return str(beside)
    found = shutil.which("llamafactory-cli")
    return found or str(beside)


def build_command(
    config_path: Path,
    options: LaunchOptions,
    gpu_count: int,
    base_path: str | None = None,
    deepspeed: bool = False,
) -> tuple[list[str], dict[str, str]]:
    """(argv, environment changes) for `llamafactory-cli train <config>`.

    The environment changes are what oda-sft adds to its own environment; they are
    shown by --dry-run and recorded, so only launcher settings belong here.
    """
    argv = [launcher_path(), "train", str(config_path)]
    # torchrun and llamafactory-cli must come from oda-sft's own environment, even when
    # oda-sft is called by absolute path from a script that never activated the venv.
    bin_dir = str(Path(sys.executable).parent)
    current = os.environ.get("PATH", "") if base_path is None else base_path
    env: dict[str, str] = {}
    if bin_dir not in current.split(os.pathsep):
        env["PATH"] = os.pathsep.join(p for p in (bin_dir, current) if p)
    if options.uses_torchrun(gpu_count, deepspeed):
        if any(c.isspace() for c in str(config_path)):
            # LLaMA-Factory joins and re-splits the torchrun arguments on spaces.
            raise UsageError(
                f"config path {config_path} contains whitespace, which LLaMA-Factory's torchrun "
                "launcher cannot pass: choose an --output-root without spaces"
            )
        env["FORCE_TORCHRUN"] = "1"
        env["NNODES"] = str(options.nnodes)
        env["NODE_RANK"] = str(options.node_rank)
        # With no GPU, LLaMA-Factory would ask torchrun for 0 processes per node.
        nproc = options.nproc_per_node or (gpu_count if gpu_count > 0 else 1)
        env["NPROC_PER_NODE"] = str(nproc)
        if options.master_addr:
            env["MASTER_ADDR"] = options.master_addr
        if options.master_port is not None:
            env["MASTER_PORT"] = str(options.master_port)
        elif options.nnodes > 1:
            # Every node must agree on the port; LLaMA-Factory would pick a random free one per node.
            env["MASTER_PORT"] = "29500"
    return argv, env


def run(argv: list[str], env_changes: Mapping[str, str], on_signal: Callable[[int], None] | None = None) -> int:
    """Run the trainer: output streams through, INT/TERM/HUP reach its whole process group, and its
    exit status (128+N for signal N) is returned. on_signal hears of every signal forwarded, so the
    caller can tell an interruption from a crash."""
    try:
        return subproc.run_streaming(argv, env_changes, on_signal)
    except OSError as exc:
        raise LaunchError(
            f"cannot start {argv[0]}: {exc.strerror}: install LLaMA-Factory in this environment "
            "(pip install -e .) or activate the venv that has it"
        ) from None
