"""`oda-sft runs` and `oda-sft runs plot`: what ran under an output root, and how it went."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from oda_sft.cli.options import JsonOpt, optional
from oda_sft.errors import UsageError
from oda_sft.util.tables import one_line

# The work is imported inside the commands: `--help` and the other commands stay light.
if TYPE_CHECKING:
    from oda_sft.runs.listing import RunSummary

RootOpt = Annotated[Path, typer.Option("--output-root", help="Where the runs are.")]


def check_root(root: Path) -> None:
    """An --output-root must be a directory: one that is missing and one that is a file are said apart."""
    if root.is_dir():
        return
    what = "does not exist" if not root.exists() and not root.is_symlink() else "is not a directory"
    raise UsageError(f"output root {root} {what}: pass --output-root with the runs' root")


def _runs_under(output_root: Path) -> list[RunSummary]:
    from oda_sft.runs.listing import survey

    check_root(output_root)
    runs, problems = survey(output_root)
    for path, problem in problems:
        typer.echo(one_line(f"left out {path}: {problem}"), err=True)
    return runs


def list_runs(ctx: typer.Context, output_root: RootOpt = Path("saves"), as_json: JsonOpt = False) -> None:
    """List the runs under an output root: status, final loss, runtime, tokens/s."""
    from oda_sft.runs.listing import format_table

    if ctx.invoked_subcommand is not None:
        return
    runs = _runs_under(output_root)
    if as_json:
        typer.echo(json.dumps([r.as_dict() for r in runs], indent=2))
    elif runs:
        typer.echo(format_table(runs))
    else:
        typer.echo(f"no runs under {output_root}", err=True)


def plot_runs(
    output_root: RootOpt = Path("saves"),
    output: Annotated[Path | None, optional("-o", "--output", help="PNG to write.")] = None,
) -> None:
    """Write one PNG comparing the loss curves of every run under an output root."""
    from oda_sft.runs.plot import plot  # matplotlib: only when drawing

    # The base model's dir holds evaluations only: it has no training curve to draw.
    runs = [r for r in _runs_under(output_root) if not r.base]
    target = output or output_root / "runs_loss.png"
    if target.suffix.lower() != ".png":
        raise UsageError(f"--output {target} must end in .png")
    result = plot(runs, target)
    if not result.drawn:
        raise UsageError(f"no run under {output_root} has logged a loss yet: nothing to plot")
    typer.echo(f"wrote {target} ({len(result.drawn)} of {len(runs)} runs)")
    for run, what in result.as_points:
        typer.echo(one_line(f"{run.path}: {what}"), err=True)
    for run, reason in result.left_out:
        typer.echo(one_line(f"left out {run.path}: {reason}"), err=True)
