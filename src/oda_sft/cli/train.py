"""`oda-sft train`: one run of the recipe."""

from __future__ import annotations

import os
import shlex
from pathlib import Path
from typing import Annotated

import typer

from oda_sft import launch
from oda_sft.cli.options import (
    DatasetDirOpt,
    DryRunOpt,
    ForceOpt,
    MasterAddrOpt,
    MasterPortOpt,
    ModelOpt,
    ModelPathOpt,
    ModeOpt,
    NnodesOpt,
    NodeRankOpt,
    NprocOpt,
    OutputRootOpt,
    OverridesArg,
    ProfileOpt,
    ResumableOpt,
    SaveStepsOpt,
    TokenizedCacheOpt,
    launch_options,
)
from oda_sft.recipe import dump_yaml
from oda_sft.runner import start_run
from oda_sft.train_plan import TrainPlan, TrainRequest, plan_train


def render_dry_run(plan: TrainPlan) -> str:
    """The config as YAML, followed by the command and environment as comments: still valid YAML."""
    argv, env = launch.build_command(
        plan.config_path, plan.request.launch, plan.gpu_count, deepspeed=bool(plan.config.get("deepspeed"))
    )
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
    model: ModelOpt,
    dataset_dir: DatasetDirOpt,
    overrides: OverridesArg = None,
    seed: Annotated[int, typer.Option(help="Training seed.")] = 42,
    mode: ModeOpt = "auto",
    model_path: ModelPathOpt = None,
    output_root: OutputRootOpt = Path("saves"),
    nproc_per_node: NprocOpt = None,
    nnodes: NnodesOpt = 1,
    node_rank: NodeRankOpt = 0,
    master_addr: MasterAddrOpt = None,
    master_port: MasterPortOpt = None,
    force: ForceOpt = False,
    dry_run: DryRunOpt = False,
    resumable: ResumableOpt = False,
    save_steps: SaveStepsOpt = None,
    tokenized_cache: TokenizedCacheOpt = True,
    profile: ProfileOpt = "default",
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
        launch=launch_options(nproc_per_node, nnodes, node_rank, master_addr, master_port),
        overrides=list(overrides or []),
        profile=profile,
        resumable=resumable,
        save_steps=save_steps,
    )
    plan = plan_train(request, measure=not dry_run)
    for note in plan.notes:
        typer.echo(f"oda-sft: {note}", err=True)
    if dry_run:
        typer.echo(render_dry_run(plan))
        return
    result = start_run(plan, force=force, tokenized_cache_on=tokenized_cache)
    if result.exit_code:
        raise typer.Exit(result.exit_code)
