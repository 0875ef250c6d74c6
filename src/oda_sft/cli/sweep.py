"""`oda-sft sweep`: a dataset x seed grid on this node."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

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
from oda_sft.sweep import dry_run as plan_table
from oda_sft.sweep import format_summary, parse_list, parse_seeds, plan_grid, run_grid
from oda_sft.train_plan import TrainRequest


def _say(message: str) -> None:
    print(f"oda-sft: {message}", file=sys.stderr, flush=True)


def sweep(
    datasets: Annotated[str, typer.Option(help="Comma-separated dataset names.")],
    model: ModelOpt,
    dataset_dir: DatasetDirOpt,
    overrides: OverridesArg = None,
    seeds: Annotated[str, typer.Option(help="Comma-separated seeds.")] = "42",
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
    """Train every dataset x seed, one run after another; skip finished runs, go on past failures."""
    base = TrainRequest(
        model=model,
        dataset="",
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
    grid = plan_grid(base, parse_list(datasets, "datasets"), parse_seeds(seeds), measure=not dry_run)
    if dry_run:
        typer.echo(format_summary(plan_table(grid)))
        return
    cells = run_grid(grid, force=force, tokenized_cache_on=tokenized_cache, say=_say)
    typer.echo(format_summary(cells))
    if any(c.outcome == "interrupted" for c in cells):
        raise typer.Exit(next(c.exit_code or 130 for c in cells if c.outcome == "interrupted"))
    failed = [c for c in cells if c.outcome == "failed"]
    if failed:
        _say(f"{len(failed)} of {len(cells)} runs failed")
        raise typer.Exit(1)
