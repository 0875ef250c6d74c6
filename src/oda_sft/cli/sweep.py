"""`oda-sft sweep`: a dataset x seed grid on this node."""

from __future__ import annotations

import shlex
from dataclasses import replace
from typing import TYPE_CHECKING, Annotated

import typer

from oda_sft.cli.options import RunOptions, takes_run_options
from oda_sft.errors import OdaSftError
from oda_sft.util.console import say

# The work is imported inside the command: `--help` and the other commands stay light.
if TYPE_CHECKING:
    from oda_sft.train.plan import TrainPlan
    from oda_sft.train.request import TrainRequest
    from oda_sft.train.sweep import Cell


def sweep_requests(datasets: str, run: RunOptions, seeds: str) -> list[TrainRequest]:
    """The runs `sweep` makes of its arguments, in its order (`oda-sft slurm` and `preflight` plan them)."""
    from oda_sft.train.sweep import parse_list, parse_seeds

    names, seed_list = parse_list(datasets, "datasets"), parse_seeds(seeds)
    return [replace(run.request, dataset=d, seed=s) for d in names for s in seed_list]


@takes_run_options
def sweep(
    datasets: Annotated[str, typer.Option(help="Comma-separated dataset names.")],
    run: RunOptions,
    seeds: Annotated[str, typer.Option(help="Comma-separated seeds.")] = "42",
) -> None:
    """Train every dataset x seed, one run after another; skip finished runs, go on past failures."""
    from oda_sft.data.registry.fetch import fetch_missing
    from oda_sft.train.plan import resolve_preset
    from oda_sft.train.run import check_devices_for
    from oda_sft.train.sweep import WOULD_FAIL, format_summary, parse_list, parse_seeds, plan_grid, run_grid
    from oda_sft.train.sweep import dry_run as plan_table
    from oda_sft.util.hardware import visible_gpu_count

    names, seed_list = parse_list(datasets, "datasets"), parse_seeds(seeds)
    if run.fetch:
        fetch_missing(names, run.request.dataset_dir, dry_run=run.dry_run)
    if not run.dry_run:  # before any dataset is measured: nothing is written for runs that cannot start
        check_devices_for(resolve_preset(run.request.model), visible_gpu_count(), run.allow_no_gpu)
    grid = plan_grid(run.request, names, seed_list, measure=not run.dry_run)
    if run.dry_run:
        try:
            check_devices_for(resolve_preset(run.request.model), visible_gpu_count(), run.allow_no_gpu)
        except OdaSftError as exc:  # a dry run is how a login node shows a plan: warn only
            say(f"warning: a real sweep on this node would stop: {exc}")
        planned = plan_table(grid, force=run.force)
        typer.echo(format_summary(planned))
        _print_total(run, grid, planned)
        failing = [c for c in planned if c.outcome in WOULD_FAIL]
        if failing:
            say(f"{len(failing)} of {len(planned)} runs would not start (see OUTPUT / REASON)")
            raise typer.Exit(1)
        return
    cells = run_grid(grid, force=run.force, tokenized_cache_on=run.tokenized_cache, allow_no_gpu=run.allow_no_gpu)
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
    from oda_sft.util.hardware import visible_gpu_count

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
