"""The commands oda-sft suggests: whole `oda-sft train` command lines that work as printed.

They are rebuilt from the request (absolute paths, every option that shaped the run), not from how
oda-sft happened to be called, so the same suggestion works from any directory and from a sweep or a
Slurm job as well: a sweep cell's advice is that one cell's `train` command.
"""

from __future__ import annotations

import os
import shlex
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

from oda_sft.eras import CURRENT
from oda_sft.train.request import TrainRequest


def program() -> str:
    """`oda-sft` when that name finds this oda-sft on PATH, else this environment's oda-sft by absolute path."""
    beside = Path(os.path.abspath(sys.executable)).parent / "oda-sft"
    found = shutil.which("oda-sft")
    if found and beside.is_file() and os.path.samefile(found, beside):
        return "oda-sft"
    if beside.is_file():
        return str(beside)
    return found or "oda-sft"


@dataclass(frozen=True)
class Rerun:
    """How to run a request again, with or without changes."""

    request: TrainRequest
    tokenized_cache: bool = True
    allow_no_gpu: bool = False

    def argv(self, *, force: bool = False, model_path: Path | None = None) -> list[str]:
        r = self.request
        launch = r.launch
        args = [program(), "train", "--model", r.model, "--dataset", r.dataset, "--seed", str(r.seed)]
        if r.mode != "auto":
            args += ["--mode", r.mode]
        chosen = model_path if model_path is not None else r.model_path
        if chosen is not None:
            args += ["--model-path", str(chosen.expanduser().resolve())]
        args += ["--dataset-dir", str(r.dataset_dir.expanduser().resolve())]
        args += ["--output-root", str(r.output_root.expanduser().resolve())]
        if launch.nproc_per_node is not None:
            args += ["--nproc-per-node", str(launch.nproc_per_node)]
        if launch.nnodes != 1:
            args += ["--nnodes", str(launch.nnodes), "--node-rank", str(launch.node_rank)]
        if launch.master_addr:
            args += ["--master-addr", launch.master_addr]
        if launch.master_port is not None:
            args += ["--master-port", str(launch.master_port)]
        if r.profile != "default":
            args += ["--profile", r.profile]
        if r.recipe != CURRENT:
            args += ["--recipe", r.recipe]
        if r.resumable:
            args.append("--resumable")
        if r.save_steps is not None:
            args += ["--save-steps", str(r.save_steps)]
        if r.report_to is not None:
            args += ["--report-to", r.report_to]
        if not self.tokenized_cache:
            args.append("--no-tokenized-cache")
        if self.allow_no_gpu:
            args.append("--allow-no-gpu")
        if force:
            args.append("--force")
        if r.overrides:
            args += ["--", *r.overrides]
        return args

    def command(self, *, force: bool = False, model_path: Path | None = None) -> str:
        return shlex.join(self.argv(force=force, model_path=model_path))
