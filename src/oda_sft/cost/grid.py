"""The total cost of a sweep's grid, for `sweep --dry-run`: what the runs it would start will take.

A dry run never measures, so a dataset counts only when its token stats are cached (`oda-sft
estimate` measures them once); the others are named, with the command that measures them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from oda_sft.cards import CARDS, Card, card_of_device
from oda_sft.cost.estimate import ProfileCost, format_duration
from oda_sft.cost.plan_cost import estimate_plan, token_stats
from oda_sft.cost.table import Table
from oda_sft.errors import OdaSftError, one_line
from oda_sft.train.plan import TrainPlan
from oda_sft.util.hardware import gpu_names

COUNTED = ("train", "replace", "resume")  # cells that would start a run (a resumed one costs at most a whole run)


@dataclass
class GridTotal:
    profile: str
    gpus: int
    card: Card
    card_assumed: bool
    runs: int = 0  # every run the plan would start
    costed: int = 0  # those the steps and hours cover
    steps: int = 0
    wall_s: float = 0.0
    gpu_hours: float = 0.0
    other_gpu_hours: float = 0.0  # the same runs under the other profile
    other_unfit: bool = False  # some of them do not fit under the other profile
    resumed: int = 0
    unknown: list[str] = field(default_factory=list)  # datasets without token stats
    failed: list[str] = field(default_factory=list)  # cells whose estimate failed, with why

    def describe(self, estimate_command: str) -> list[str]:
        """Lines for the user; `estimate_command` is the estimate command for this grid, less --dataset."""
        other = "default" if self.profile == "fast" else "fast"
        on = f"{self.gpus} x {self.card.name}" + (" (assumed: no known GPU visible here)" if self.card_assumed else "")
        theirs = "does not fit" if self.other_unfit else f"{self.other_gpu_hours:,.1f} GPU-hours"
        lines = [
            f"total ({self.profile} profile, on {on}): {self.runs} runs to start, {self.steps:,} optimizer steps, "
            f"{format_duration(self.wall_s)} one after another, {self.gpu_hours:,.1f} GPU-hours "
            f"({other} profile: {theirs})"
        ]
        if self.costed < self.runs:
            lines.append(f"  the steps and hours cover {self.costed} of the {self.runs} runs: the rest are not counted")
        if self.resumed:
            lines.append(f"  {self.resumed} of them resume: counted whole, an upper bound")
        if self.unknown:
            names = sorted(set(self.unknown))
            lines.append(
                f"  not counted, no token count yet: {', '.join(names)} (measure each once: "
                f"`{estimate_command} --dataset {names[0]}`)"
            )
        lines.extend(f"  not counted: {f}" for f in self.failed)
        return lines


def grid_total(
    cells: Sequence[tuple[TrainPlan | str, str]], profile: str, gpus: int, table: Table, card: Card | None = None
) -> GridTotal:
    """Sum the estimates of the cells (plan, dry-run verb) that would start a run."""
    assumed = False
    if card is None:
        names = gpu_names()
        card = card_of_device(names[0]) if names else None
        if card is None:
            card, assumed = CARDS["H100-80GB"], True
    total = GridTotal(profile, gpus, card, assumed)
    by_dataset: dict[str, tuple[ProfileCost, ProfileCost] | None] = {}
    for plan, verb in cells:
        if isinstance(plan, str) or verb not in COUNTED:
            continue
        total.runs += 1
        name = plan.dataset.name
        if name not in by_dataset:  # every seed of a dataset costs the same
            by_dataset[name] = _costs(plan, gpus, card, table, total)
        costs = by_dataset[name]
        if costs is None:
            continue
        mine, other = costs
        total.costed += 1
        total.resumed += verb == "resume"
        total.steps += mine.steps
        total.wall_s += mine.wall_s
        total.gpu_hours += mine.gpu_hours
        total.other_gpu_hours += other.gpu_hours
        total.other_unfit |= not other.fits
    return total


def _costs(
    plan: TrainPlan, gpus: int, card: Card, table: Table, total: GridTotal
) -> tuple[ProfileCost, ProfileCost] | None:
    """(this profile's cost, the other profile's) of one run, or None (noted in `total`)."""
    stats = token_stats(plan, measure_if_needed=False)
    if stats is None:
        total.unknown.append(plan.dataset.name)
        return None
    try:
        est = estimate_plan(plan, stats, gpus, card, table)
    except (OdaSftError, LookupError) as exc:
        total.failed.append(f"{plan.dataset.name}: {one_line(str(exc))}")
        return None
    mine, other = (est.fast, est.default) if total.profile == "fast" else (est.default, est.fast)
    if not mine.fits:  # no step time for settings that do not fit
        total.failed.append(f"{plan.dataset.name}: {est.unfit[mine.profile]}")
        return None
    return mine, other
