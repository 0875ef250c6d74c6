"""Standard or long-CoT: which one, and why, in words a user can check.

The decision never measures. When only a measurement can tell, it says so (`needs_measurement`),
and planning's `settle_mode` measures once and stores the result where later runs find it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from oda_sft.data.registry.dataset_dir import ResolvedDataset
from oda_sft.datasets_catalog.advice import add_command
from oda_sft.eras import CURRENT, RecipeEra
from oda_sft.errors import ConfigError
from oda_sft.presets import Mode, ModelPreset
from oda_sft.train.request import RequestedMode
from oda_sft.util.paths import data_command


@dataclass(frozen=True)
class ModeDecision:
    mode: Mode
    # What decided: "flag", "preset", "catalog", "cached", "recorded", "measured", "unmeasured", "default".
    source: str
    reason: str
    warning: str = ""
    notes: tuple[str, ...] = ()  # things the user should know that did not decide

    @property
    def needs_measurement(self) -> bool:
        return self.source == "unmeasured"


def decide_mode(
    requested: RequestedMode,
    preset: ModelPreset,
    dataset: ResolvedDataset,
    tokenizer: str,
    rule: dict[str, Any],
    recipe: RecipeEra = CURRENT,
) -> ModeDecision:
    """auto: the catalog, then a stored analysis of this very content under this rule, then a mode
    written into the entry by hand; else the data must be measured (or, with no file, standard)."""
    name = dataset.name
    where = None if dataset.builtin else dataset.dir  # what a printed command needs as --dataset-dir
    # `data inspect` measures under the run's template: the 2025 era's differs (data/measure/token_counter.py)
    inspect = ("--model", preset.name, *(("--recipe", recipe) if recipe != CURRENT else ()))
    if len(preset.modes) == 1:
        only = preset.modes[0]
        why = f": {preset.note}" if preset.note else ""
        if requested not in ("auto", only):
            raise ConfigError(f"preset {preset.name!r} has only the {only} config{why}: use --mode {only} or auto")
        return ModeDecision(only, "preset", f"{preset.name} has one config, {only}{why}")

    cached, notes = dataset.current_analysis(tokenizer, rule)
    recorded = dataset.recorded_mode()
    if requested != "auto":
        known = dataset.catalog.mode if dataset.catalog else cached.mode if cached else recorded and recorded[0]
        warning = ""
        if known == "long" and requested == "standard":
            warning = (
                f"{name} is long-CoT data; --mode standard truncates every sample at 4096 tokens "
                "and long chains of thought lose their answers"
            )
        return ModeDecision(requested, "flag", f"--mode {requested}", warning)
    if dataset.catalog is not None:
        return ModeDecision(dataset.catalog.mode, "catalog", f"{name} is one of the recipe's 17 long-CoT datasets")
    if cached is not None:
        warning = ""
        if cached.tokenizer != tokenizer:
            warning = (
                f"{name} was measured with the {cached.tokenizer} tokenizer, not {tokenizer}: "
                f"`{data_command('inspect', name, where, *inspect)}` measures it with the "
                f"{preset.name} tokenizer"
            )
        return ModeDecision(
            cached.mode,
            "cached",
            f"cached analysis of this file in dataset_info.json ({cached.tokenizer}, {cached.measured_at}): "
            f"{cached.reason}",
            warning,
            notes,
        )
    if recorded is not None:
        return ModeDecision(recorded[0], "recorded", f"{recorded[1]} (dataset_info.json)", notes=notes)
    if dataset.sha256 is not None:
        return ModeDecision(
            "standard",
            "unmeasured",
            f"length of {name} is not measured by a dry run, so this shows standard: the real run measures it "
            f"with the {preset.name} tokenizer first and stores the answer "
            f"(`{data_command('inspect', name, where, *inspect)}` measures it now)",
            warning=f"the mode of {name} is decided when the run starts; this dry run may show the wrong one",
            notes=notes,
        )
    return ModeDecision(
        "standard",
        "default",
        f"length of {name} is unknown (no data file), so standard is assumed: register its data with "
        f"`{add_command(name, where)}`, or pass --mode long",
        notes=notes,
    )
