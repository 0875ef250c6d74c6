"""`oda-sft eval`: ODA's OpenCompass evaluation of a finished run (or of a preset's base model)."""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from oda_sft.cli.options import optional
from oda_sft.eras import CURRENT, RecipeEra
from oda_sft.errors import OdaSftError, UsageError
from oda_sft.presets import preset_help
from oda_sft.util.console import say

if TYPE_CHECKING:  # the eval job's module is imported when asked for, not by --help
    from oda_sft.cluster.evaljob import EvalArgs

SUITE_HELP = "general, math, code, reasoning or all (ODA's domains)."


def rerun_command(run_dir: Path, base: bool, model: str, output_root: Path, suite: str, names: list[str] | None,
           opencompass: Path | None, era: RecipeEra = CURRENT) -> str:  # fmt: skip
    """The command that evaluates the same thing again, as printed advice (it works as printed)."""
    argv = ["oda-sft", "eval"]
    argv += ["--model", model, "--base", "--output-root", str(output_root)] if base else ["--run", str(run_dir)]
    if base and era != CURRENT:  # a run is evaluated in its own era, read from its manifest
        argv += ["--recipe", era]
    if names:
        argv += ["--benchmarks", ",".join(names)]
    elif suite != "all":
        argv += ["--suite", suite]
    if opencompass is not None:
        argv += ["--opencompass", str(opencompass)]
    return shlex.join(argv)


def eval_args(model: str | None, dataset: str | None, seed: int, output_root: Path, run: Path | None, base: bool,
              suite: str, benchmarks: str | None, opencompass: Path | None, force: bool,
              dry_run: bool, recipe: RecipeEra | None = None) -> EvalArgs:  # fmt: skip
    """What `eval` was asked, after its first refusals (`oda-sft slurm -- eval ...` plans it with these too)."""
    from oda_sft.cluster.evaljob import EvalArgs

    if run is not None and (dataset is not None or base):
        raise UsageError("--run names the run itself: leave out --dataset and --base")
    if run is None and model is None:
        raise UsageError("name the run: --model M --dataset D [--seed S], or --run DIR, or --model M --base")
    if run is None and not base and dataset is None:
        raise UsageError(f"--model {model} needs --dataset D (the run to evaluate), or --base for the base model")
    names = [n.strip() for n in benchmarks.split(",") if n.strip()] if benchmarks else None
    return EvalArgs(model, dataset, seed, output_root, run, base, suite, tuple(names) if names else None,
                    opencompass, force, dry_run, recipe)  # fmt: skip


def eval_command(
    model: Annotated[str | None, optional("--model", "-m", help=preset_help())] = None,
    dataset: Annotated[str | None, optional("--dataset", "-d", help="The dataset the run was trained on.")] = None,
    seed: Annotated[int, typer.Option(help="The run's training seed.")] = 42,
    output_root: Annotated[Path, typer.Option(help="Root of the <model>/full/sft-DATASET/seed-SEED tree.")] = Path(
        "saves"
    ),
    run: Annotated[
        Path | None, typer.Option("--run", help="Evaluate this run dir (instead of --model/--dataset/--seed).")
    ] = None,
    base: Annotated[
        bool, typer.Option("--base", help="Evaluate the preset's untuned base model (<root>/<model>/base/).")
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
    dry_run: Annotated[bool, typer.Option(help="Show the model config and the command; write nothing.")] = False,
    recipe: Annotated[
        RecipeEra | None,
        optional("--recipe", help="Recipe era [default: the run's own, from its manifest; 2026 for --base]."),
    ] = None,
) -> None:
    """Evaluate a finished run with ODA's OpenCompass benchmarks (docs/eval.md)."""
    from oda_sft.eval import benchmarks as bench
    from oda_sft.eval import opencompass as oc
    from oda_sft.eval import runner, target
    from oda_sft.names import check_name

    asked = eval_args(model, dataset, seed, output_root, run, base, suite, benchmarks, opencompass, force, dry_run,
                      recipe)  # fmt: skip
    names = list(asked.benchmarks) if asked.benchmarks else None
    if run is not None:
        chosen_target = target.trained(run, model)
    else:
        assert model is not None
        preset = target.preset_named(model)
        if base:
            chosen_target = target.base(preset, output_root, dry_run=dry_run)
        else:
            assert dataset is not None
            run_dir = target.run_for(preset, output_root, check_name("dataset", dataset), seed)
            train = shlex.join(["oda-sft", "train", "--model", model, "--dataset", dataset, "--seed", str(seed),
                                "--output-root", str(output_root)])  # fmt: skip
            chosen_target = target.trained(run_dir, model, train)
    chosen_target = target.in_era(chosen_target, recipe)
    eval_preset = bench.for_preset(chosen_target.preset)
    chosen = bench.select(eval_preset, suite, names)
    plan = runner.plan(chosen_target, eval_preset, suite, chosen)
    rerun = rerun_command(
        chosen_target.run_dir,
        base,
        chosen_target.preset.name,
        output_root,
        suite,
        names,
        opencompass,
        chosen_target.era,
    )
    if dry_run:
        try:
            install: oc.Install | None = oc.describe(oc.locate(opencompass))
        except OdaSftError as exc:
            install = None
            say(f"warning: a real eval would stop: {exc}")
        program = install.program if install is not None else Path("opencompass")
        typer.echo(plan.config_text().rstrip())
        typer.echo(f"\n# model config file: {plan.layout.model_config(plan.id)}")
        typer.echo(f"# settings {plan.id}: {', '.join(b.name for b in chosen)}")
        try:
            action: runner.Action = runner.decide(plan, force, rerun)
        except OdaSftError as exc:
            action = "start"
            say(f"warning: a real eval would stop: {exc}")
        typer.echo(f"# command: {shlex.join(plan.command(program, plan.stamp(action)))}")
        if install is not None:
            try:
                runner.check(plan, install)
            except OdaSftError as exc:
                say(f"warning: a real eval would stop: {exc}")
        return
    install = oc.describe(oc.locate(opencompass))
    runner.check(plan, install)
    code = runner.run(plan, install, force, rerun)
    if code:
        raise typer.Exit(code)
