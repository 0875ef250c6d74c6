"""`oda-sft rank` and `oda-sft rank plot`: ODA's leaderboard of the evaluated runs under the output roots."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from oda_sft.cli.options import JsonOpt, optional
from oda_sft.cli.results.rank_oda import why_command
from oda_sft.errors import UsageError
from oda_sft.names import suggest

# The work is imported inside the commands: `--help` and the other commands stay light.
if TYPE_CHECKING:
    from oda_sft.eval.leaderboard import Board, Fix

RootsOpt = Annotated[
    list[Path] | None,
    optional("--output-root", help="Where the runs are (repeat for several) [default: saves]."),
]
ModelOpt = Annotated[str | None, optional("--model", "-m", help="Only this base model's runs.")]
ByOpt = Annotated[str, typer.Option("--by", help="Rank by overall or by one domain (general, math, code, reasoning).")]
ConfidenceOpt = Annotated[
    float,
    typer.Option(
        "--confidence", help="Confidence of the interval that separates neighbours (0.5-0.999; alpha = 1 - it)."
    ),
]


def _board(roots: list[Path] | None, model: str | None, by: str, confidence: float = 0.95) -> Board:
    from oda_sft.cli.results.runs import check_root
    from oda_sft.eval.leaderboard import METRICS, board
    from oda_sft.presets import PRESETS

    chosen = roots or [Path("saves")]
    for root in chosen:
        check_root(root)
    if model is not None and model not in PRESETS:
        raise UsageError(f"unknown --model {model!r}{suggest(model, PRESETS)}: choose one of {', '.join(PRESETS)}")
    if by not in METRICS:
        raise UsageError(f"unknown --by {by!r}{suggest(by, METRICS)}: choose one of {', '.join(METRICS)}")
    if not 0.5 <= confidence <= 0.999:
        raise UsageError(f"--confidence {confidence:g} is not between 0.5 and 0.999: 0.95 is the usual one")
    return board(chosen, model, by, confidence)


def _advise(fix: Fix) -> str:
    """The eval that fills a gap, written as `oda-sft eval` itself writes its rerun (it works as printed)."""
    from oda_sft.eval.plans.plan import rerun_command

    names = list(fix.benchmarks) or None
    command = rerun_command(fix.run_dir, fix.base, fix.preset, fix.output_root, fix.suite, names, None)
    return f"{command} --force" if fix.force else command


def _say_empty(board: Board, roots: list[Path] | None) -> None:
    where = ", ".join(str(r) for r in roots or [Path("saves")])
    if not board.manifests:
        typer.echo(f"no runs under {where}: `oda-sft train` writes them there (--output-root)", err=True)
    elif not board.groups:
        typer.echo(f"no evaluated runs under {where} to rank: `oda-sft eval` evaluates one (see below)", err=True)


def rank(
    ctx: typer.Context,
    output_root: RootsOpt = None,
    model: ModelOpt = None,
    by: ByOpt = "overall",
    confidence: ConfidenceOpt = 0.95,
    as_json: JsonOpt = False,
    as_csv: Annotated[bool, typer.Option("--csv", help="Print CSV, one line per dataset and settings.")] = False,
    as_markdown: Annotated[bool, typer.Option("--markdown", help="Print Markdown tables.")] = False,
    oda: Annotated[
        bool,
        typer.Option(
            "--oda", help="Show ODA's published leaderboard (July 2025), with your runs that compare with it."
        ),
    ] = False,
    rules: Annotated[
        str,
        typer.Option("--rules", help="oda-sft, or oda-site: ODA's site's rules (docs/eval.md says how they differ)."),
    ] = "oda-sft",
) -> None:
    """Rank the datasets by their runs' evaluations, per base model and evaluation settings (docs/eval.md)."""
    from oda_sft.eval import leaderboard_output as out
    from oda_sft.util.console import say

    if ctx.invoked_subcommand is not None:
        return
    if as_json + as_csv + as_markdown > 1:
        raise UsageError("choose one of --json, --csv and --markdown")
    if oda or rules != "oda-sft":  # ODA's site's rules (cli/results/rank_oda.py)
        from oda_sft.cli.results.rank_oda import show

        fmt = "json" if as_json else "csv" if as_csv else "markdown" if as_markdown else "text"
        typer.echo(show(output_root, model, by, oda, rules, fmt, _board), nl=False)
        return
    board = _board(output_root, model, by, confidence)
    if as_json:
        typer.echo(out.as_json(board, _advise))
        return
    if as_csv:
        typer.echo(out.as_csv(board), nl=False)
    elif as_markdown:
        typer.echo(out.markdown(board, _advise), nl=False)
        return  # its own "Left out" section
    elif board.groups:
        typer.echo(out.table(board, _advise))
    _say_empty(board, output_root)
    for note in board.left_out:
        say(f"left out {out.note_text(note, _advise)}")


def plot(
    output_root: RootsOpt = None,
    model: ModelOpt = None,
    by: ByOpt = "overall",
    confidence: ConfidenceOpt = 0.95,
    output: Annotated[
        Path | None,
        optional(
            "--out", "-o", "--output", help="PNG to write, SVG beside it [default: <first root>/leaderboard.png]."
        ),
    ] = None,
) -> None:
    """Write the leaderboard as a figure (PNG and SVG): means over seeds, sd error bars, the paired test's verdicts."""
    from oda_sft.eval import leaderboard_output as out
    from oda_sft.eval.leaderboard_plot import plot as draw
    from oda_sft.eval.leaderboard_plot import vector_path
    from oda_sft.util.console import say

    target = output or (output_root or [Path("saves")])[0] / "leaderboard.png"
    if target.suffix.lower() != ".png":
        raise UsageError(f"--out {target} must end in .png")
    board = _board(output_root, model, by, confidence)
    bars = draw(board, target)
    for note in board.left_out:
        say(f"left out {out.note_text(note, _advise)}")
    if not bars:
        raise UsageError(f"no evaluated run under {', '.join(str(r) for r in output_root or [Path('saves')])} has "
                         f"a {by} value: nothing to plot (`{why_command(output_root, model)}` says why)")  # fmt: skip
    typer.echo(f"wrote {target} and {vector_path(target)} ({bars} datasets in {len(board.groups)} group(s))")
