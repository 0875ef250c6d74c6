"""`oda-sft sweep`: a dataset x seed grid on this node."""

from __future__ import annotations

import shlex
from dataclasses import replace
from typing import Annotated

import typer

from oda_sft.cli.options import RunOptions, takes_run_options
from oda_sft.cli.workload import captured
from oda_sft.data.fetch import fetch_missing
from oda_sft.errors import OdaSftError
from oda_sft.train.plan import TrainPlan
from oda_sft.train.request import TrainRequest
from oda_sft.train.sweep import Cell, format_summary, parse_list, parse_seeds, plan_grid, run_grid
from oda_sft.train.sweep import dry_run as plan_table
from oda_sft.util.console import say


@takes_run_options
def sweep(
    ctx: typer.Context,
    datasets: Annotated[str, typer.Option(help="Comma-separated dataset names.")],
    run: RunOptions,
    seeds: Annotated[str, typer.Option(help="Comma-separated seeds.")] = "42",
) -> None:
    """Train every dataset x seed, one run after another; skip finished runs, go on past failures."""
    names, seed_list = parse_list(datasets, "datasets"), parse_seeds(seeds)
    if captured(ctx, run, [replace(run.request, dataset=d, seed=s) for d in names for s in seed_list]):
        return
    if run.fetch:
        fetch_missing(names, run.request.dataset_dir, say, dry_run=run.dry_run)
    grid = plan_grid(run.request, names, seed_list, measure=not run.dry_run)
    if run.dry_run:
        cells = plan_table(grid)
        typer.echo(format_summary(cells))
        _print_total(run, grid, cells)
        return
    cells = run_grid(grid, force=run.force, tokenized_cache_on=run.tokenized_cache, say=say)
    typer.echo(format_summary(cells))
    if any(c.outcome == "interrupted" for c in cells):
        raise typer.Exit(next(c.exit_code or 130 for c in cells if c.outcome == "interrupted"))
    failed = [c for c in cells if c.outcome == "failed"]
    if failed:
        say(f"{len(failed)} of {len(cells)} runs failed")
        raise typer.Exit(1)


def _print_total(run: RunOptions, grid: list[tuple[TrainRequest, TrainPlan | str]], cells: list[Cell]) -> None:
    """The grid's total cost (issue 13), on stderr: stdout stays the table."""
    from oda_sft.cost import table as throughput
    from oda_sft.cost.grid import grid_total
    from oda_sft.train.hardware import visible_gpu_count

    try:
        table = throughput.load()
    except OdaSftError as exc:
        say(f"total: unknown ({exc})")
        return
    gpus = run.request.launch.world_size(visible_gpu_count())
    total = grid_total(
        [(plan, cell.outcome) for (_, plan), cell in zip(grid, cells, strict=True)], run.request.profile, gpus, table
    )
    request = run.request
    command = ["oda-sft", "estimate", "--model", request.model, "--dataset-dir", str(request.dataset_dir.resolve())]
    if request.model_path is not None:
        command += ["--model-path", str(request.model_path.expanduser().resolve())]
    command += ["--gpus", str(gpus), "--gpu", total.card.name]
    for line in total.describe(shlex.join(command)):
        say(line)
