"""`oda-sft sweep`: a dataset x seed grid on this node."""

from __future__ import annotations

from dataclasses import replace
from typing import Annotated

import typer

from oda_sft.cli.options import RunOptions, takes_run_options
from oda_sft.cli.workload import captured
from oda_sft.data.fetch import fetch_missing
from oda_sft.train.sweep import dry_run as plan_table
from oda_sft.train.sweep import format_summary, parse_list, parse_seeds, plan_grid, run_grid
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
        typer.echo(format_summary(plan_table(grid)))
        return
    cells = run_grid(grid, force=run.force, tokenized_cache_on=run.tokenized_cache, say=say)
    typer.echo(format_summary(cells))
    if any(c.outcome == "interrupted" for c in cells):
        raise typer.Exit(next(c.exit_code or 130 for c in cells if c.outcome == "interrupted"))
    failed = [c for c in cells if c.outcome == "failed"]
    if failed:
        say(f"{len(failed)} of {len(cells)} runs failed")
        raise typer.Exit(1)
