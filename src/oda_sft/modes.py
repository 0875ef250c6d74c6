"""Standard or long-CoT: which one, and why, in words a user can check."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from oda_sft.catalog import DATASETS, Mode, ModelPreset
from oda_sft.errors import ConfigError
from oda_sft.registry import DatasetDir

RequestedMode = Literal["auto", "standard", "long"]


@dataclass(frozen=True)
class ModeDecision:
    mode: Mode
    source: str  # what decided: "flag", "preset", "catalog", "recorded", "default"
    reason: str
    warning: str = ""


def decide_mode(requested: RequestedMode, preset: ModelPreset, dataset: str, datasets: DatasetDir) -> ModeDecision:
    catalog = DATASETS.get(dataset)
    recorded = datasets.recorded_mode(dataset)
    known: Mode | None = catalog.mode if catalog else (recorded[0] if recorded else None)

    if len(preset.modes) == 1:
        only = preset.modes[0]
        if requested not in ("auto", only):
            raise ConfigError(
                f"preset {preset.name!r} has only the {only} config ({preset.note}): use --mode {only} or auto"
            )
        return ModeDecision(only, "preset", f"{preset.name} has one config: {preset.note}")

    if requested != "auto":
        warning = ""
        if known == "long" and requested == "standard":
            warning = (
                f"{dataset} is long-CoT data; --mode standard truncates every sample at 4096 tokens "
                "and long chains of thought lose their answers"
            )
        return ModeDecision(requested, "flag", f"--mode {requested}", warning)
    if catalog is not None:
        return ModeDecision(catalog.mode, "catalog", f"{dataset} is one of the recipe's 17 long-CoT datasets")
    if recorded is not None:
        return ModeDecision(recorded[0], "recorded", f"{recorded[1]} (dataset_info.json)")
    return ModeDecision(
        "standard",
        "default",
        f"length of {dataset} is unknown, so standard is assumed: measure it with "
        f"`oda-sft data inspect {dataset}` or pass --mode long",
    )
