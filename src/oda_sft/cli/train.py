"""`oda-sft train`: one run of the recipe."""

from __future__ import annotations

import os
import shlex
from pathlib import Path
from typing import Annotated

import typer

from oda_sft import launch
from oda_sft.cli.options import DatasetDirOpt
from oda_sft.launch import LaunchOptions
from oda_sft.modes import RequestedMode
from oda_sft.recipe import dump_yaml
from oda_sft.runner import start_run
from oda_sft.train_plan import TrainPlan, TrainRequest, plan_train

LAUNCH = "Launch (LLaMA-Factory's torchrun launcher)"


def render_dry_run(plan: TrainPlan) -> str:
    """The config as YAML, followed by the command and environment as comments: still valid YAML."""
    argv, env = launch.build_command(plan.config_path, plan.request.launch, plan.gpu_count)
    lines = [dump_yaml(plan.config).rstrip(), "", f"# config file: {plan.config_path}"]
    lines.append(f"# command: {shlex.join(argv)}")
    for key, value in env.items():
        if key == "PATH":  # only the prefix is oda-sft's; the rest is the caller's own PATH
            value = value.split(os.pathsep, 1)[0] + os.pathsep + "$PATH"
            lines.append(f"# env: PATH={value}")
        else:
            lines.append(f"# env: {key}={shlex.quote(value)}")
    return "\n".join(lines)


def train(
    dataset: Annotated[str, typer.Option("--dataset", "-d", help="Dataset name (catalog or dataset_info.json).")],
    model: Annotated[str, typer.Option("--model", "-m", help="Preset: llama, qwen, qwen3 or tiny.")],
    dataset_dir: DatasetDirOpt,
    overrides: Annotated[
        list[str] | None, typer.Argument(help="LLaMA-Factory key=value overrides, after `--`.", show_default=False)
    ] = None,
    seed: Annotated[int, typer.Option(help="Training seed.")] = 42,
    mode: Annotated[RequestedMode, typer.Option(help="auto decides from the catalog or the recorded length.")] = "auto",
    model_path: Annotated[
        Path | None, typer.Option(help="Train a local checkpoint under the preset's recipe.", show_default=False)
    ] = None,
    output_root: Annotated[Path, typer.Option(help="Root of the <model>/full/sft-DATASET/seed-SEED tree.")] = Path(
        "saves"
    ),
    nproc_per_node: Annotated[
        int | None, typer.Option(help="Processes (GPUs) per node [default: all visible].", rich_help_panel=LAUNCH)
    ] = None,
    nnodes: Annotated[int, typer.Option(help="Number of nodes.", rich_help_panel=LAUNCH)] = 1,
    node_rank: Annotated[int, typer.Option(help="This node's rank, 0 to nnodes-1.", rich_help_panel=LAUNCH)] = 0,
    master_addr: Annotated[
        str | None, typer.Option(help="Rank-0 node address (needed when nnodes > 1).", rich_help_panel=LAUNCH)
    ] = None,
    master_port: Annotated[int | None, typer.Option(help="Rank-0 node port.", rich_help_panel=LAUNCH)] = None,
    force: Annotated[bool, typer.Option(help="Train again over a finished run (moved aside, never deleted).")] = False,
    dry_run: Annotated[bool, typer.Option(help="Print the config, command and environment; start nothing.")] = False,
) -> None:
    """Train one dataset with the ODA recipe."""
    request = TrainRequest(
        model=model,
        dataset=dataset,
        seed=seed,
        mode=mode,
        model_path=model_path,
        dataset_dir=dataset_dir,
        output_root=output_root,
        launch=LaunchOptions(nproc_per_node, nnodes, node_rank, master_addr, master_port),
        overrides=list(overrides or []),
    )
    plan = plan_train(request)
    for note in plan.notes:
        typer.echo(f"oda-sft: {note}", err=True)
    if dry_run:
        typer.echo(render_dry_run(plan))
        return
    status = start_run(plan, force=force)
    if status:
        raise typer.Exit(status)
