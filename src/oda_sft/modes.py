"""Standard or long-CoT: which one, and why, in words a user can check."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from oda_sft.catalog import DATASETS, Mode, ModelPreset
from oda_sft.errors import ConfigError, OdaSftError
from oda_sft.registry import DatasetDir

RequestedMode = Literal["auto", "standard", "long"]


@dataclass(frozen=True)
class ModeDecision:
    mode: Mode
    source: str  # what decided: "flag", "preset", "catalog", "cached", "recorded", "measured", "default"
    reason: str
    warning: str = ""
    notes: tuple[str, ...] = ()  # things the user should know that did not decide


def decide_mode(
    requested: RequestedMode,
    preset: ModelPreset,
    dataset: str,
    datasets: DatasetDir,
    model_path: Path | None = None,
    measure: bool = True,
) -> ModeDecision:
    """auto: the catalog, then a cached analysis of this very file, then a hand-recorded mode,
    then a fresh measurement (measure=True), else standard with a warning-worthy reason."""
    catalog = DATASETS.get(dataset)
    from oda_sft.lengths import Rule  # light: the rule only reads the environment

    recorded = datasets.recorded_mode(dataset, Rule.parse().as_json())
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

    # Imported here: lengths pulls in nothing heavy itself, but only auto on unknown data needs it.
    from oda_sft import lengths

    tokenizer = lengths.tokenizer_ident(preset, model_path)
    cached, stale = datasets.cached_analysis(dataset, tokenizer)
    notes = (stale,) if stale else ()
    rule = lengths.Rule.parse().as_json()
    if cached is not None and cached.rule is not None and cached.rule != rule:
        # Decided under another threshold or percentage (a one-off --long-percent, say): not this rule's answer.
        notes = (*notes, f"the cached length analysis of {dataset} used another rule ({cached.rule}); ignored")
        cached = None
    if cached is not None:
        warning = ""
        if cached.tokenizer != tokenizer:
            warning = (
                f"{dataset} was measured with the {cached.tokenizer} tokenizer, not {tokenizer}: "
                f"`oda-sft data inspect {dataset} --model {preset.name}` measures it with this model's"
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
    data_file = datasets.data_file(dataset)
    if measure and data_file is not None and data_file.is_file():
        from oda_sft.alpaca import Columns

        try:
            counter = lengths.LengthCounter.load(preset, model_path)
        except OdaSftError as exc:
            raise type(exc)(
                f"cannot measure {dataset} to decide --mode auto: {exc}; or pass --mode standard or --mode long"
            ) from None
        report = lengths.measure_file(
            data_file,
            counter,
            lengths.Rule.parse(),
            Columns.from_entry(dataset, datasets.entry(dataset) or {}),
            label=f"dataset {dataset} ({data_file})",
            fix=f"fix these records, or re-register the data with `oda-sft data add {dataset} SOURCE --force`",
        )
        return ModeDecision(
            report.mode,
            "measured",
            f"fresh analysis with the {counter.ref.label} tokenizer: {report.reason}",
            notes=(*notes, f"run `oda-sft data inspect {dataset} --model {preset.name}` once to cache this analysis"),
        )
    if not measure and data_file is not None and data_file.is_file():
        return ModeDecision(
            "standard",
            "unmeasured",
            f"length of {dataset} is not measured by a dry run, so this shows standard: the real run measures it "
            f"with the {preset.name} tokenizer first (`oda-sft data inspect {dataset} --model {preset.name}` "
            "caches the answer)",
            warning=f"the mode of {dataset} is decided when the run starts; this dry run may show the wrong one",
            notes=notes,
        )
    return ModeDecision(
        "standard",
        "default",
        f"length of {dataset} is unknown, so standard is assumed: measure it with "
        f"`oda-sft data inspect {dataset}` or pass --mode long",
        notes=notes,
    )
