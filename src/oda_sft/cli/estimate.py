"""`oda-sft estimate`: tokens, optimizer steps, wall-clock and GPU-hours of a run, default vs fast."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from oda_sft.cards import CARD_NAMES
from oda_sft.cli.options import DatasetDirOpt, JsonOpt, ModelOpt, optional
from oda_sft.train.request import RequestedMode, TrainRequest

# The work is imported inside the command: `--help` and the other commands stay light.
if TYPE_CHECKING:
    from oda_sft.cost.estimate import ProfileCost
    from oda_sft.cost.plan_cost import PlanEstimate


def estimate(
    model: ModelOpt,
    dataset: Annotated[str, typer.Option(help="A dataset registered in the dataset dir.")],
    dataset_dir: DatasetDirOpt,
    gpus: Annotated[int, typer.Option(help="GPUs the run uses (all nodes together).")] = 8,
    gpu: Annotated[str, typer.Option(help=f"The GPU: {CARD_NAMES}.")] = "H100-80GB",
    mode: Annotated[RequestedMode, typer.Option(help="auto decides as train does.")] = "auto",
    model_path: Annotated[Path | None, optional(help="A local checkpoint (its config.json gives the shape).")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Predict a run's tokens, optimizer steps, wall-clock and GPU-hours, for the default and fast profiles."""
    from oda_sft.cards import card
    from oda_sft.cost import table as throughput
    from oda_sft.cost.plan_cost import check_gpus, estimate_plan, token_stats
    from oda_sft.train.plan import plan_train, settle_mode

    chosen = card(gpu)
    check_gpus(gpus)
    request = TrainRequest(model=model, dataset=dataset, mode=mode, model_path=model_path, dataset_dir=dataset_dir)
    plan = settle_mode(plan_train(request))
    stats = token_stats(plan, measure_if_needed=True)
    assert stats is not None  # measure_if_needed
    result = estimate_plan(plan, stats, gpus, chosen, throughput.load())
    if as_json:
        typer.echo(json.dumps(result.as_json(), indent=2))
    else:
        typer.echo(render(result))


def render(e: PlanEstimate) -> str:
    from oda_sft.cost.estimate import format_duration

    d, f = e.default, e.fast
    rough = "~" if e.rough else ""  # marks the times that rest on next to nothing

    def timed(c: ProfileCost, text: str) -> str:
        if not c.fits:
            return "does not fit"
        return text if text.startswith("<") else rough + text

    def hours(h: float) -> str:
        return "<0.1" if 0 < h < 0.05 else f"{h:,.1f}" if h < 100 else f"{h:,.0f}"

    rows = [
        ("micro-batch x accumulation", *(f"{c.settings.micro_batch} x {c.settings.accumulation}" for c in (d, f))),
        ("gradient checkpointing", *(c.settings.describe_checkpointing() for c in (d, f))),
        ("ZeRO-2 overlap_comm", *("on" if c.settings.overlap_comm else "off" for c in (d, f))),
        ("padding computed", *(f"{c.prediction.work.padding_fraction:.0%}" for c in (d, f))),
        ("optimizer steps", *(f"{c.steps:,}" for c in (d, f))),
        ("step time", *(timed(c, f"{c.prediction.step_time_s:.3g} s") for c in (d, f))),
        ("wall-clock", *(timed(c, format_duration(c.wall_s)) for c in (d, f))),
        ("GPU-hours", *(timed(c, hours(c.gpu_hours)) for c in (d, f))),
    ]
    width = max(len(r[0]) for r in rows)
    col = max(12, *(len(v) for r in rows for v in r[1:]))
    lines = [
        f"{e.plan.preset.name} on {e.plan.dataset.name}: {e.gpus} x {e.card.name}",
        f"mode: {e.plan.decision.mode} ({e.plan.decision.reason})",
        f"data: {e.stats.describe()}",
        *(f"rough (~): {why}" for why in e.rough),
        "",
        f"{'':{width}}  {'default':>{col}}  {'fast':>{col}}",
        *(f"{name:{width}}  {a:>{col}}  {b:>{col}}" for name, a, b in rows),
        "",
        *e.unfit.values(),
        f"fast turns gradient checkpointing off on {e.card.name}: {'no' if e.decision.checkpointing else 'yes'}",
        *(f"  fast: {note}" for note in e.decision.notes),
    ]
    if f.wall_s and d.fits and f.fits:
        lines.append(
            f"fast vs default: {d.wall_s / f.wall_s:.2f}x faster, {timed(f, hours(d.gpu_hours - f.gpu_hours))} "
            "GPU-hours saved"
        )
    lines.extend(_rests_on(d, f))
    return "\n".join(lines)


def _rests_on(*costs: ProfileCost) -> list[str]:
    """What each profile's step time rests on, and every caveat once (naming the profiles it applies to)."""
    lines = []
    described = {c.profile: c.prediction.measurement.describe() for c in costs}
    if len(set(described.values())) == 1:
        lines.append(f"{' and '.join(described)} rest on: {next(iter(described.values()))}")
    else:
        lines.extend(f"{profile} rests on: {text}" for profile, text in described.items())
    caveats: dict[str, list[str]] = {}
    for c in costs:
        for caveat in c.prediction.caveats:
            caveats.setdefault(caveat, []).append(c.profile)
    for caveat, profiles in caveats.items():
        only = "" if len(profiles) == len(costs) else f" ({', '.join(profiles)})"
        lines.append(f"  caveat{only}: {caveat}")
    return lines
