"""An estimate for a planned run: the plan's config and mode, the dataset's token stats, the card.

`estimate_plan` is what `oda-sft estimate` prints, and what `sweep --dry-run` sums over its grid.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from oda_sft.cards import CARDS, Card
from oda_sft.cost.estimate import (
    MAX_GPUS,
    CostInputs,
    ProfileCost,
    Settings,
    epoch_units,
    fast_settings,
    fewest_gpus,
    profile_cost,
    recipe_settings,
)
from oda_sft.cost.table import Table
from oda_sft.cost.tokens import TokenStats, cached, measure
from oda_sft.data.measure.token_counter import tokenizer_ident
from oda_sft.errors import DatasetError, UsageError
from oda_sft.shapes import ModelShape
from oda_sft.train.memory import GIB
from oda_sft.train.plan import TrainPlan
from oda_sft.train.profile import FastDecision, known_sample_count, model_shape
from oda_sft.util.console import say
from oda_sft.util.paths import data_command

MIN_MEASURED = 100  # token lengths below which padding and attention work are guesses
MIN_STEPS = 50  # optimizer steps below which the fixed costs (loading, tokenizing) outweigh the training


@dataclass(frozen=True)
class PlanEstimate:
    plan: TrainPlan
    gpus: int
    card: Card
    stats: TokenStats
    default: ProfileCost
    fast: ProfileCost
    decision: FastDecision
    unfit: Mapping[str, str] = field(default_factory=dict)  # profile -> why it does not fit, and what would

    @property
    def rough(self) -> tuple[str, ...]:
        """Why the numbers rest on next to nothing, if they do: too few token lengths, or too short a run."""
        reasons = []
        measured = len(self.stats.lengths)
        if measured < MIN_MEASURED:
            reasons.append(
                f"the token lengths come from {measured} sample{'' if measured == 1 else 's'}, too few to say "
                "how much padding and attention a step computes"
            )
        steps = min(self.default.steps, self.fast.steps)
        if steps < MIN_STEPS:
            reasons.append(
                f"the run is {steps} optimizer step{'' if steps == 1 else 's'}: loading the model and the data, "
                "which this does not count, may take as long as the training itself"
            )
        return tuple(reasons)

    @property
    def checkpointing_verdict(self) -> str:
        """Whether fast turns checkpointing off on this card, and why (the memory model's numbers)."""
        d = self.decision
        if not d.checkpointing:
            return f"yes: without it a rank needs about {d.memory.required / GIB:.1f} GiB" if d.memory else "yes"
        why = next((n for n in d.notes if n.startswith("gradient checkpointing stays on")), "")
        return "no" + (f" ({why.removeprefix('gradient checkpointing stays on: ')})" if why else "")

    def as_json(self) -> dict[str, Any]:
        return {
            "preset": self.plan.preset.name,
            "dataset": self.plan.dataset.name,
            "mode": self.plan.decision.mode,
            "mode_reason": self.plan.decision.reason,
            "gpus": self.gpus,
            "gpu": self.card.name,
            "samples": self.stats.records,
            "tokens": round(self.stats.total_tokens),
            "tokens_exact": self.stats.exact,
            "tokens_source": self.stats.source,
            "fast_turns_checkpointing_off": not self.decision.checkpointing,
            "fast_checkpointing_verdict": self.checkpointing_verdict,
            "fast_decision": list(self.decision.notes),
            "rough": list(self.rough),
            "does_not_fit": dict(self.unfit),
            "profiles": {c.profile: _cost_json(c) for c in (self.default, self.fast)},
        }


def _cost_json(c: ProfileCost) -> dict[str, Any]:
    p = c.prediction
    timed = c.fits  # a profile that does not fit has no step time
    return {
        "micro_batch": c.settings.micro_batch,
        "gradient_accumulation_steps": c.settings.accumulation,
        "checkpointing": c.settings.describe_checkpointing(),
        "overlap_comm": c.settings.overlap_comm,
        "fits": c.fits,
        "memory_required_gib": round(c.memory.required / GIB, 1) if c.memory else None,
        "optimizer_steps": c.steps,
        "step_time_s": _sig(p.step_time_s) if timed else None,
        "compute_s": _sig(p.compute_s) if timed else None,
        "communication_s": _sig(p.comm_s) if timed else None,
        "wall_clock_s": round(c.wall_s, 1) if timed else None,
        "gpu_hours": round(c.gpu_hours, 2) if timed else None,
        "padding_fraction": round(p.work.padding_fraction, 4),
        "rests_on": p.measurement.describe(),
        "caveats": list(p.caveats),
    }


def _sig(x: float) -> float:
    return float(f"{x:.4g}")


def token_stats(plan: TrainPlan, measure_if_needed: bool) -> TokenStats | None:
    """The dataset's token stats: cached for this file and tokenizer, else measured (when allowed)."""
    dataset = plan.dataset
    if not dataset.registered and dataset.catalog is not None:
        if not measure_if_needed:
            return None
        raise DatasetError(
            f"{dataset.name} is in the catalog but not registered in {dataset.info_path}, so it has no tokens to "
            f"count yet: `{data_command('add', dataset.name, plan.request.dataset_dir)}` fetches and converts it "
            f"(source: {dataset.catalog.hf_id})"
        )
    ident = tokenizer_ident(plan.preset, plan.request.model_path, plan.request.recipe)
    found = cached(plan.dataset, ident)
    if found is not None or not measure_if_needed:
        return found
    from oda_sft.data.measure.token_counter import LengthCounter

    say(f"measuring {plan.dataset.name} with the {plan.preset.name} tokenizer (a random sample; cached)")
    return measure(plan.dataset, LengthCounter.load(plan.preset, plan.request.model_path, plan.request.recipe))


def check_gpus(gpus: int) -> None:
    """Before anything is measured: a GPU count no run can have."""
    if gpus < 1:
        raise UsageError(f"--gpus {gpus} must be at least 1")


def estimate_plan(plan: TrainPlan, stats: TokenStats, gpus: int, card: Card, table: Table) -> PlanEstimate:
    check_gpus(gpus)
    config = plan.config
    units = epoch_units(config, stats)
    what = "packed rows" if config.get("packing") else "samples"
    if gpus > units:
        raise UsageError(
            f"--gpus {gpus:,} is more GPUs than dataset {plan.dataset.name!r} has {what} ({units:,}): every GPU needs "
            f"one of its own in each step; pass --gpus {units:,} or fewer"
        )
    shape = model_shape(plan.preset, str(config.get("model_name_or_path", "")))
    if shape is None:
        raise UsageError(
            f"the shape of {config.get('model_name_or_path')} is unknown (its config.json cannot be read): "
            "pass --model-path with a model directory that has one, or leave it out for the preset's"
        )
    preset = plan.preset.name
    base = recipe_settings(config, shape)
    inputs = CostInputs(table, preset, shape, config, stats, gpus, card)
    default = profile_cost("default", inputs, base)
    # The record count `train` itself would know (not the token stats'), so fast is decided as train decides it.
    samples = known_sample_count(plan.dataset.meta, plan.dataset.sha256)
    settings, decision = fast_settings(config, shape, gpus, card, samples)
    fast = profile_cost("fast", inputs, settings, decision.notes)
    if not default.fits and not fast.fits:  # fast needs the least memory: what would fit it is the advice
        raise UsageError(does_not_fit(plan, shape, fast, card, "under either profile", base, (units, what)))
    unfit = {
        c.profile: does_not_fit(plan, shape, c, card, f"under the {c.profile} profile", base, (units, what))
        for c in (default, fast)
        if not c.fits
    }
    return PlanEstimate(plan, gpus, card, stats, default, fast, decision, unfit)


def does_not_fit(
    plan: TrainPlan,
    shape: ModelShape,
    cost: ProfileCost,
    card: Card,
    which: str,
    recipe: Settings,
    units: tuple[int, str],
) -> str:
    """Why `cost`'s settings do not fit on its GPUs of `card`, and what would: another card, or as many GPUs
    as the recipe's own settings need (fast may keep those on more GPUs: then default still fits there),
    and no more than the data's `units` (samples or packed rows) can fill."""
    assert cost.memory is not None
    free = cost.free_bytes / GIB
    line = (
        f"{plan.preset.name} does not fit on {cost.gpus:,} x {card.name} {which}: a rank needs about "
        f"{cost.memory.required / GIB:.0f} GiB with the {cost.profile} profile's settings ({cost.memory.describe()}), "
        f"more than the {free:.1f} GiB a GPU has free"
    )
    remedies = []
    limit = min(units[0], MAX_GPUS)
    fewest = fewest_gpus(plan.config, shape, recipe, card, cost.gpus + 1, limit)
    if fewest is not None:
        remedies.append(f"--gpus {fewest} or more (DeepSpeed ZeRO shards the model states over them)")
    remedies += [
        f"--gpu {other.name}"
        for other in CARDS.values()
        if other is not card and cost.memory.fits(other.memory(other.name).free_bytes)
    ]
    if not remedies:
        why = f" (the data fills no more: {units[0]:,} {units[1]})" if limit == units[0] else ""
        on = "1 GPU" if limit == 1 else f"up to {limit:,} GPUs"
        return f"{line}; no card oda-sft knows fits it on {on}{why}"
    return f"{line}: it fits with " + ", or ".join(remedies)
