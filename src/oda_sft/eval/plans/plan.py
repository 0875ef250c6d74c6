"""One eval, planned once: what it evaluates (target.py), its settings and benchmarks (runner.py), and the
command that evaluates it again. `oda-sft eval`, its dry run and `oda-sft slurm -- eval` (on the login node)
all plan here, so they cannot disagree (issue 23, item 1).

A preview (a dry run, or an eval job waiting for the training job that makes its run) plans what does not exist
yet: a run not trained, a base model not downloaded. Its target is a placeholder holding no weights; the plan
says what is missing, each with the command that makes it (the real eval's own refusal, which names it).
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass
from pathlib import Path

from oda_sft.eras import CURRENT, RecipeEra, era_of
from oda_sft.errors import ConfigError, RunStateError, UsageError
from oda_sft.eval import benchmarks as bench
from oda_sft.eval import runner, target
from oda_sft.eval.opencompass import cached_snapshot
from oda_sft.eval.template import default_template, template_for
from oda_sft.names import check_name
from oda_sft.runs import manifest

# The EOS token written into a preview's template when the model's own is not on this machine yet.
_UNKNOWN_EOS = "<eos>"


@dataclass(frozen=True)
class EvalArgs:
    """What `oda-sft eval` was asked, as its own parser read it (`oda-sft slurm -- eval` captures it, unrun)."""

    model: str | None
    datasets: tuple[str, ...]  # --dataset(s): with --seed(s), the runs named by what trained them
    seeds: tuple[int, ...]
    output_root: Path
    run: Path | None
    base: bool
    every: bool  # --all: every finished run under the output root not yet evaluated with these settings
    suite: str
    benchmarks: tuple[str, ...] | None
    opencompass: Path | None
    force: bool
    dry_run: bool
    recipe: RecipeEra | None
    judge_urls: tuple[str, ...] = ()  # --judge-url: Omni-MATH's Omni-Judge servers (eval/judges/omni.py)

    @property
    def names(self) -> list[str] | None:
        return list(self.benchmarks) if self.benchmarks else None

    @property
    def many(self) -> bool:
        """Several evals in one process (a table at the end), rather than the one eval named."""
        return self.every or len(self.datasets) * len(self.seeds) > 1


@dataclass(frozen=True)
class Pick:
    """One thing to evaluate, as it was named: a run dir, a run by what trained it, or a preset's base model."""

    run: Path | None = None
    model: str | None = None
    dataset: str | None = None
    seed: int = 42
    base: bool = False


@dataclass(frozen=True)
class Planned:
    eval: runner.EvalPlan
    rerun: str  # the command that evaluates the same thing again (printed advice: it works as printed)
    missing: tuple[str, ...] = ()  # a preview's: what the real eval needs first, each naming the command
    provisional: bool = False  # the settings id depends on a chat template not on this machine yet

    @property
    def run_dir(self) -> Path:
        return self.eval.target.run_dir


def picks(args: EvalArgs) -> list[Pick]:
    """What the arguments name, in order (--all is found on disk: batch.find_runs)."""
    if args.run is not None:
        return [Pick(run=args.run, model=args.model)]
    if args.base:
        return [Pick(model=args.model, base=True)]
    return [Pick(model=args.model, dataset=d, seed=s) for d in args.datasets for s in args.seeds]


def plan_eval(args: EvalArgs, pick: Pick | None = None, trained_by: str | None = None, here: bool = True) -> Planned:
    """The eval of `pick` (default: the one the arguments name). `trained_by` names the preset of the training job
    an eval job waits for: its run need not exist yet. here=False plans for another node (a Slurm job): the tiny
    model is built there, not here."""
    pick = pick or picks(args)[0]
    preview = args.dry_run or trained_by is not None
    found, missing = _target(args, pick, preview, trained_by, here)
    found = target.in_era(found, args.recipe)
    eval_preset = bench.for_preset(found.preset)
    chosen = bench.select(eval_preset, args.suite, args.names)
    template, provisional = _template(found)
    plan = runner.plan(found, eval_preset, args.suite, chosen, template, args.judge_urls)
    rerun = rerun_command(found.run_dir, found.base, found.preset.name, args.output_root, args.suite, args.names,
                          args.opencompass, found.era, plan.judge_urls)  # fmt: skip
    return Planned(plan, rerun, tuple(missing), provisional)


def _target(args: EvalArgs, pick: Pick, preview: bool, trained_by: str | None,
            here: bool) -> tuple[target.Target, list[str]]:  # fmt: skip
    era = args.recipe or CURRENT
    if pick.base:
        assert pick.model is not None
        preset = target.preset_named(pick.model)
        try:
            return target.base(preset, args.output_root, dry_run=preview or not here), []
        except UsageError as exc:  # not in the Hugging Face cache (or cut short)
            if not preview:
                raise
            return target.Target(target.base_dir(preset, args.output_root), None, preset, base=True), [str(exc)]
    train = None
    if pick.run is not None:
        run_dir = pick.run
    else:
        assert pick.model is not None and pick.dataset is not None
        dataset = check_name("dataset", pick.dataset)
        run_dir = target.run_for(target.preset_named(pick.model), args.output_root, dataset, pick.seed)
        train = train_command(pick.model, dataset, pick.seed, args.output_root, args.recipe)
    if trained_by is not None:  # the training job makes (or finishes) it before this eval starts
        return target.Target(run_dir.absolute(), None, target.preset_named(trained_by), base=False, era=era), []
    try:
        return target.trained(run_dir, pick.model, train), []
    except (UsageError, RunStateError) as exc:
        absent = isinstance(exc, RunStateError) or not run_dir.is_dir()  # else a dir that is no run, a wrong --model
        if not preview or not absent:
            raise
        recorded = manifest.read(run_dir / manifest.MANIFEST_NAME) if run_dir.is_dir() else None
        model = recorded.get("model") if recorded else None
        name = pick.model or (str(model.get("preset")) if isinstance(model, dict) else None)
        if name is None:
            raise UsageError(f"{exc}; to preview its eval before it is trained, name its preset (--model M)") from None
        era = args.recipe or era_of(recorded, str(run_dir / manifest.MANIFEST_NAME))
        return target.Target(run_dir.absolute(), None, target.preset_named(name), base=False, era=era), [str(exc)]


def _template(found: target.Target) -> tuple[str | None, bool]:
    """A placeholder's chat template (None: runner.plan's own choice) and whether it is only provisional. A run
    evaluates with the `default` template LLaMA-Factory saves, for its base model's EOS token."""
    if found.model_dir is not None or found.era != CURRENT or found.preset.embedded:
        return None, False  # the weights, the 2025 template, or the tiny model's EOS token known without it
    local = cached_snapshot(found.preset.base_model)
    if local is not None:
        try:
            return template_for(local, trained=False), False
        except ConfigError:
            pass
    return default_template(_UNKNOWN_EOS), True


def train_command(model: str, dataset: str, seed: int, output_root: Path, recipe: RecipeEra | None) -> str:
    """The `oda-sft train` that makes the run an eval names (printed advice: it works as printed)."""
    argv = ["oda-sft", "train", "--model", model, "--dataset", dataset, "--seed", str(seed),
            "--output-root", str(output_root)]  # fmt: skip
    if recipe is not None and recipe != CURRENT:
        argv += ["--recipe", recipe]
    return shlex.join(argv)


def eval_argv(run_dir: Path, base: bool, model: str, output_root: Path, suite: str, names: list[str] | None,
              opencompass: Path | None, era: RecipeEra = CURRENT,
              judge_urls: tuple[str, ...] = ()) -> list[str]:  # fmt: skip
    """eval's arguments naming one eval: a run by its dir, or a preset's base model, and the benchmarks."""
    argv = ["--model", model, "--base", "--output-root", str(output_root)] if base else ["--run", str(run_dir)]
    if base and era != CURRENT:  # a run is evaluated in its own era, read from its manifest
        argv += ["--recipe", era]
    if names:
        argv += ["--benchmarks", ",".join(names)]
    elif suite != "all":
        argv += ["--suite", suite]
    if opencompass is not None:
        argv += ["--opencompass", str(opencompass)]
    for url in judge_urls:
        argv += ["--judge-url", url]
    return argv


def rerun_command(run_dir: Path, base: bool, model: str, output_root: Path, suite: str, names: list[str] | None,
                  opencompass: Path | None, era: RecipeEra = CURRENT,
                  judge_urls: tuple[str, ...] = ()) -> str:  # fmt: skip
    """The command that evaluates the same thing again, as printed advice (it works as printed)."""
    return shlex.join(["oda-sft", "eval", *eval_argv(run_dir, base, model, output_root, suite, names, opencompass,
                                                     era, judge_urls)])  # fmt: skip
