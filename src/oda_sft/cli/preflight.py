"""`oda-sft preflight`: the checks each node runs before torchrun, naming the node when one fails."""

from __future__ import annotations

import os
import socket
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from oda_sft.cli.options import optional
from oda_sft.cli.workload import parse_workload
from oda_sft.errors import OdaSftError, one_line
from oda_sft.util.paths import cache_dir

# The checks are imported inside the command: `--help` and the other commands stay light.
if TYPE_CHECKING:
    from oda_sft.train.plan import TrainPlan


def preflight(
    gpus_per_node: Annotated[int, typer.Option(help="GPUs this node must see (0: CPU only).")],
    workload: Annotated[
        list[str] | None,
        typer.Argument(help="The `train` or `sweep` arguments this node will run, after `--`.", show_default=False),
    ] = None,
    node_rank: Annotated[int | None, optional(help="This node's rank, for messages [default: $SLURM_NODEID].")] = None,
    master_addr: Annotated[str | None, typer.Option(help="Rank-0 address; must resolve here.")] = None,
    path: Annotated[
        list[Path] | None, typer.Option("--path", help="Another path this node must read (repeatable).")
    ] = None,
) -> None:
    """Check this node before a multi-node run: GPUs, shared paths, MASTER_ADDR, NCCL settings."""
    from oda_sft.cluster.preflight import PreflightSpec, node_label, run_preflight
    from oda_sft.cluster.trainjob import plan_job
    from oda_sft.util.hardware import visible_gpu_count

    if node_rank is None and os.environ.get("SLURM_NODEID", "").isdigit():
        node_rank = int(os.environ["SLURM_NODEID"])
    node = node_label(node_rank, socket.gethostname())
    readable: list[Path] = [p.expanduser().resolve() for p in path or []]
    writable: list[Path] = []
    problems: list[str] = []
    notes: list[str] = []
    if workload:
        work = parse_workload(workload, "oda-sft preflight")
        try:
            plans = plan_job(work.requests)
        except OdaSftError as exc:
            # The run would fail the same way on this node: report it as this node's problem.
            problems.append(one_line(str(exc)))
        else:
            _paths(plans, readable, writable, notes)
    spec = PreflightSpec(
        expected_gpus=gpus_per_node,
        node=node,
        master_addr=master_addr,
        readable=tuple(dict.fromkeys(readable)),
        writable=tuple(dict.fromkeys(writable)),
        problems=tuple(problems),
        notes=tuple(dict.fromkeys(notes)),
    )
    report = run_preflight(spec, visible_gpu_count(), os.environ)
    for line in report.lines:
        typer.echo(f"oda-sft preflight: {node}: {line}")
    if not report.ok:
        raise report.error()
    typer.echo(f"oda-sft preflight: {node}: passed")


def _paths(plans: list[TrainPlan], readable: list[Path], writable: list[Path], notes: list[str]) -> None:
    """What the planned runs read (shared storage every node must see) and write."""
    for plan in plans:
        readable.append(plan.dataset.info_path)
        if plan.dataset.file is not None:
            readable.append(plan.dataset.file)
        model = str(plan.config["model_name_or_path"])
        if plan.request.model_path is not None:
            readable.append(Path(model))
        elif not plan.needs_tiny_model:
            notes.append(
                f"model {model} comes from the Hugging Face Hub: download it once to shared storage (HF_HOME) "
                "before the job, or every node downloads it at the same time"
            )
        writable.append(plan.request.output_root.expanduser().resolve())
    # The tiny model and the tokenized-data cache live here; every node must see the same one.
    writable.append(cache_dir().resolve())
