"""An estimate for a planned run: the plan's config and mode, the dataset's token stats, the card.

`estimate_plan` is what `oda-sft estimate` prints, and what `sweep --dry-run` sums over its grid.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from oda_sft.cards import Card
from oda_sft.cost.estimate import ProfileCost, fast_settings, profile_cost, recipe_settings
from oda_sft.cost.table import Table
from oda_sft.cost.tokens import TokenStats, cached, measure
from oda_sft.data.measure.token_counter import tokenizer_ident
from oda_sft.errors import UsageError
from oda_sft.train.memory import GIB
from oda_sft.train.plan import TrainPlan
from oda_sft.train.profile import FastDecision, known_sample_count, model_shape


@dataclass(frozen=True)
class PlanEstimate:
    plan: TrainPlan
    gpus: int
    card: Card
    stats: TokenStats
    default: ProfileCost
    fast: ProfileCost
    decision: FastDecision

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
            "profiles": {c.profile: _cost_json(c) for c in (self.default, self.fast)},
        }


def _cost_json(c: ProfileCost) -> dict[str, Any]:
    p = c.prediction
    return {
        "micro_batch": c.settings.micro_batch,
        "gradient_accumulation_steps": c.settings.accumulation,
        "checkpointing": c.settings.describe_checkpointing(),
        "overlap_comm": c.settings.overlap_comm,
        "optimizer_steps": c.steps,
        "step_time_s": _sig(p.step_time_s),
        "compute_s": _sig(p.compute_s),
        "communication_s": _sig(p.comm_s),
        "wall_clock_s": round(c.wall_s, 1),
        "gpu_hours": round(c.gpu_hours, 2),
        "padding_fraction": round(p.work.padding_fraction, 4),
        "rests_on": p.measurement.describe(),
        "caveats": list(p.caveats),
    }


def _sig(x: float) -> float:
    return float(f"{x:.4g}")


def token_stats(plan: TrainPlan, measure_if_needed: bool, say: Callable[[str], None]) -> TokenStats | None:
    """The dataset's token stats: cached for this file and tokenizer, else measured (when allowed)."""
    ident = tokenizer_ident(plan.preset, plan.request.model_path)
    found = cached(plan.dataset, ident)
    if found is not None or not measure_if_needed:
        return found
    from oda_sft.data.measure.token_counter import LengthCounter

    say(f"measuring {plan.dataset.name} with the {plan.preset.name} tokenizer (a random sample; cached)")
    return measure(plan.dataset, LengthCounter.load(plan.preset, plan.request.model_path))


def estimate_plan(plan: TrainPlan, stats: TokenStats, gpus: int, card: Card, table: Table) -> PlanEstimate:
    if gpus < 1:
        raise UsageError(f"--gpus {gpus} must be at least 1")
    config = plan.config
    shape = model_shape(plan.preset, str(config.get("model_name_or_path", "")))
    if shape is None:
        raise UsageError(
            f"the shape of {config.get('model_name_or_path')} is unknown (its config.json cannot be read): "
            "pass --model-path with a model directory that has one, or leave it out for the preset's"
        )
    preset = plan.preset.name
    base = recipe_settings(config, shape)
    default = profile_cost("default", table, preset, shape, config, base, stats, gpus, card)
    # The record count `train` itself would know (not the token stats'), so fast is decided as train decides it.
    samples = known_sample_count(plan.dataset.meta, plan.dataset.sha256)
    settings, decision = fast_settings(config, shape, gpus, card, samples)
    fast = profile_cost("fast", table, preset, shape, config, settings, stats, gpus, card, decision.notes)
    return PlanEstimate(plan, gpus, card, stats, default, fast, decision)
