"""What an eval evaluates: a finished training run, or a preset's untuned base model (once per preset)."""

from __future__ import annotations

import shlex
from dataclasses import dataclass, replace
from pathlib import Path

from oda_sft import tiny_model
from oda_sft.eras import CURRENT, RecipeEra, era_of
from oda_sft.errors import RunStateError, UsageError
from oda_sft.eval.opencompass import cached_snapshot, hf_cache_dir
from oda_sft.presets import PRESETS, ModelPreset
from oda_sft.runs import manifest
from oda_sft.runs.outdir import inspect_output_dir, weights_problem
from oda_sft.train.render import output_dir_for

BASE_DIR = "base"


@dataclass(frozen=True)
class Target:
    run_dir: Path  # where the eval's records and files go
    model_dir: Path | None  # the weights (None: the tiny model, not built yet, in a dry run)
    preset: ModelPreset
    base: bool
    era: RecipeEra = CURRENT  # a run's: its manifest's; a base model's: --recipe (oda_sft/eras.py)

    @property
    def abbr(self) -> str:
        """OpenCompass's name for the model (its column in the summary): never says "instruct"."""
        return f"{self.preset.save_name}-{'base' if self.base else 'sft'}"


def preset_named(name: str) -> ModelPreset:
    if name not in PRESETS:
        raise UsageError(f"unknown --model {name!r}: choose one of {', '.join(PRESETS)}")
    return PRESETS[name]


def run_for(preset: ModelPreset, output_root: Path, dataset: str, seed: int) -> Path:
    return output_dir_for(output_root, preset, dataset, seed)


def trained(run_dir: Path, preset_name: str | None, train_command: str | None = None) -> Target:
    """A finished run of `oda-sft train`; its manifest names the preset it was trained with."""
    how = f" (`{train_command}` trains it)" if train_command else ""
    if not run_dir.is_dir():
        raise UsageError(f"no run at {run_dir}{how}")
    record, problem = manifest.examine(run_dir / manifest.MANIFEST_NAME)
    if record is None and not (run_dir / manifest.MANIFEST_NAME).exists():
        raise UsageError(f"{run_dir} holds no {manifest.MANIFEST_NAME}: it is not a run oda-sft trained{how}")
    if record is None:  # there, but corrupt: said so, not "no manifest"
        raise UsageError(f"{problem}: restore the run's record from a copy, or train it again{how}")
    model = record.get("model") if isinstance(record.get("model"), dict) else {}
    name = str(model.get("preset", "")) if model else ""
    if name not in PRESETS:
        raise UsageError(f"{run_dir}/{manifest.MANIFEST_NAME} names no known preset ({name!r})")
    if preset_name is not None and preset_name != name:
        raise UsageError(f"{run_dir} was trained with --model {name}, not {preset_name}: pass --model {name}")
    finished = record.get("status") == "finished" or inspect_output_dir(run_dir).kind == "finished"
    if record.get("base") or not finished:
        status = "a base model's dir" if record.get("base") else f"status {record.get('status', 'unknown')}"
        rerun = record.get("rerun")
        fix = f"finish it first (`{rerun}`)" if isinstance(rerun, str) and rerun else "finish it first"
        raise RunStateError(f"{run_dir} is not a finished training run ({status}): {fix}")
    problem = weights_problem(run_dir)
    if problem is not None:  # else OpenCompass would run a while, then score nothing
        again = _with_force(record.get("rerun")) or (f"{train_command} --force" if train_command else None)
        fix = f"train it again (`{again}`; the run is moved aside)" if again else "train it again with --force"
        raise RunStateError(f"{run_dir} holds {problem}: restore the run's weights, or {fix}")
    era = era_of(record, f"{run_dir}/{manifest.MANIFEST_NAME}")
    run_dir = run_dir.absolute()  # OpenCompass's tasks run in other processes: no relative paths
    return Target(run_dir, run_dir, PRESETS[name], base=False, era=era)


def in_era(found: Target, asked: RecipeEra | None) -> Target:
    """The target evaluated in the era asked for (--recipe): a run only in its own, a base model in any."""
    if asked is None or asked == found.era:
        return found
    if found.base:
        return replace(found, era=asked)
    raise UsageError(f"{found.run_dir} was trained in the {found.era} recipe era, so it is evaluated in it: leave "
                     f"out --recipe, or pass --recipe {found.era}")  # fmt: skip


def _with_force(rerun: object) -> str | None:
    """The run's recorded command with --force (before any `--` overrides), or None without one."""
    if not isinstance(rerun, str) or not rerun:
        return None
    try:
        argv = shlex.split(rerun)
    except ValueError:
        return None
    if "--force" not in argv:
        cut = argv.index("--") if "--" in argv else len(argv)
        argv[cut:cut] = ["--force"]
    return shlex.join(argv)


def base_dir(preset: ModelPreset, output_root: Path) -> Path:
    """Where a preset's base model is evaluated: <output_root>/<preset dir>/base/."""
    return (output_root / preset.save_name / BASE_DIR).absolute()


def base(preset: ModelPreset, output_root: Path, dry_run: bool = False) -> Target:
    """The untuned base model, evaluated into base_dir."""
    run_dir = base_dir(preset, output_root)
    if preset.embedded:
        if dry_run and not tiny_model.is_built():
            return Target(run_dir, None, preset, base=True)
        return Target(run_dir, tiny_model.ensure_model(), preset, base=True)
    local = cached_snapshot(preset.base_model)
    if local is None:
        raise UsageError(
            f"the {preset.name} base model {preset.base_model} is not in the Hugging Face cache ({hf_cache_dir()}): "
            f"`huggingface-cli download {preset.base_model}` fetches it"
        )
    problem = weights_problem(local)
    if problem is not None:  # a download cut short: the cache has its config but not (all) its weights
        raise UsageError(f"the {preset.name} base model in {local} has {problem}: `huggingface-cli download "
                         f"{preset.base_model}` fetches the rest")  # fmt: skip
    return Target(run_dir, local, preset, base=True)
