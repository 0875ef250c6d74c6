"""`oda-sft eval`: ODA's OpenCompass evaluation of a finished run (or of a preset's base model)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from oda_sft.cli.options import optional
from oda_sft.eras import RecipeEra
from oda_sft.errors import UsageError
from oda_sft.presets import preset_help
from oda_sft.util.console import set_verbose

if TYPE_CHECKING:  # the planning is imported when an eval is asked for, not by --help
    from oda_sft.eval.plans.plan import EvalArgs

DEFAULT_SEED = "42"

SUITE_HELP = "general, math, code, reasoning or all (ODA's domains)."


def eval_args(model: str | None, dataset: str | None, seed: str, output_root: Path, run: Path | None, base: bool,
              every: bool, suite: str, benchmarks: str | None, opencompass: Path | None, force: bool, dry_run: bool,
              recipe: RecipeEra | None, judge_url: list[str] | None = None) -> EvalArgs:  # fmt: skip
    """What `eval` was asked, after its first refusals: the one place its arguments are read (`oda-sft slurm --
    eval ...` reads them here too, from eval's own parser)."""
    from oda_sft.eval.judges.omni import check_url
    from oda_sft.eval.plans.plan import EvalArgs
    from oda_sft.train.sweep import parse_list, parse_seeds

    for url in judge_url or ():
        check_url(url)

    datasets = tuple(parse_list(dataset, "datasets")) if dataset is not None else ()
    seeds = tuple(parse_seeds(seed))
    named = [flag for flag, given in (("--run", run), ("--base", base), ("--all", every)) if given]
    if len(named) > 1:
        raise UsageError(f"{named[0]} and {named[1]} each name what to evaluate: give one of them")
    if named and datasets:
        raise UsageError(f"{named[0]} names what to evaluate itself: leave out --dataset")
    if run is None and model is None and not every:
        raise UsageError("name the run: --model M --dataset D [--seed S], or --run DIR, or --model M --base, "
                         "or --all (every finished run under --output-root)")  # fmt: skip
    if not named and not datasets:
        raise UsageError(f"--model {model} needs --dataset D (the run to evaluate), or --base for the base model")
    if seed != DEFAULT_SEED and not datasets:
        raise UsageError(f"--seed picks a run with --dataset: {named[0]} names what to evaluate itself")
    names = [n.strip() for n in benchmarks.split(",") if n.strip()] if benchmarks else None
    return EvalArgs(model, datasets, seeds, output_root, run, base, every, suite, tuple(names) if names else None,
                    opencompass, force, dry_run, recipe, tuple(judge_url or ()))  # fmt: skip


def eval_command(
    model: Annotated[str | None, optional("--model", "-m", help=preset_help())] = None,
    dataset: Annotated[
        str | None,
        optional("--dataset", "--datasets", "-d", help="The dataset the run was trained on; several: a,b (a sweep's)."),
    ] = None,
    seed: Annotated[str, typer.Option("--seed", "--seeds", help="The run's training seed; several: 1,2.")] = (
        DEFAULT_SEED
    ),
    output_root: Annotated[Path, typer.Option(help="Root of the <model>/full/sft-DATASET/seed-SEED tree.")] = Path(
        "saves"
    ),
    run: Annotated[
        Path | None, typer.Option("--run", help="Evaluate this run dir (instead of --model/--dataset/--seed).")
    ] = None,
    base: Annotated[
        bool, typer.Option("--base", help="Evaluate the preset's untuned base model (<root>/<model>/base/).")
    ] = False,
    every: Annotated[
        bool,
        typer.Option(
            "--all",
            help="Every finished run under --output-root (with --model: that preset's) not yet evaluated with "
            "these settings.",
        ),
    ] = False,
    suite: Annotated[str, typer.Option(help=SUITE_HELP)] = "all",
    benchmarks: Annotated[
        str | None, typer.Option(help="Comma-separated benchmark names (docs/eval.md), instead of --suite.")
    ] = None,
    opencompass: Annotated[
        Path | None,
        optional(
            help="The opencompass program or its venv [default: $ODA_SFT_OPENCOMPASS, else opencompass on PATH, "
            "else the checkout's .venv-opencompass]."
        ),
    ] = None,
    force: Annotated[
        bool, typer.Option(help="Evaluate again, or with other settings (earlier evals are kept, never deleted).")
    ] = False,
    dry_run: Annotated[
        bool,
        typer.Option(help="Show the model config, the benchmarks, the command and what is missing; write nothing."),
    ] = False,
    recipe: Annotated[
        RecipeEra | None,
        optional("--recipe", help="Recipe era [default: the run's own, from its manifest; 2026 for --base]."),
    ] = None,
    judge_url: Annotated[
        list[str] | None,
        optional(
            "--judge-url",
            help="Omni-MATH's Omni-Judge server, http://HOST:PORT (repeat for several) [default: served on this "
            "node's GPU after inference].",
        ),
    ] = None,
    verbose: Annotated[
        bool, typer.Option("--verbose", "-v", help="Show OpenCompass's own output as it runs, not a progress line.")
    ] = False,
) -> None:
    """Evaluate finished runs with ODA's OpenCompass benchmarks (docs/eval.md)."""
    set_verbose(verbose)
    from oda_sft.eval.plans.batch import evaluate

    asked = eval_args(model, dataset, seed, output_root, run, base, every, suite, benchmarks, opencompass, force,
                      dry_run, recipe, judge_url)  # fmt: skip
    code = evaluate(asked, typer.echo)
    if code:
        raise typer.Exit(code)
