"""`oda-sft estimate`: what a run will cost, for the default and the fast profile, before it starts.

For each profile:
- the settings: the recipe's (default), or what the fast profile decides for the preset on
  `gpus` GPUs of the card (train/profile.py, the memory model: micro-batch split, checkpointing);
- the work of one optimizer step per rank, from the dataset's token lengths (cost/accounting.py);
- the step time: that work's FLOPs at the hardware efficiency measured by `bench` for the closest
  setting (cost/table.py), on this card's peak, plus the gradient communication of ZeRO-2 that a
  single-GPU measurement cannot see (an assumed NVLink / InfiniBand bandwidth, said so);
- optimizer steps over the recipe's epochs, wall-clock and GPU-hours.

Pure arithmetic over values: no torch, no I/O (the CLI loads the table and the token stats).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from oda_sft.cards import Card
from oda_sft.cost.accounting import (
    StepWork,
    greedy_knapsack,
    hardware_flops,
    packed_step,
    steps_per_epoch,
    unpacked_step,
)
from oda_sft.cost.table import Measurement, Table
from oda_sft.cost.tokens import TokenStats
from oda_sft.shapes import ModelShape
from oda_sft.train.memory import MemoryEstimate, train_shape_from_config
from oda_sft.train.memory import estimate as memory_estimate
from oda_sft.train.profile import (
    PARTIAL_CHECKPOINTING_IN_TRAIN,
    FastDecision,
    decide_fast,
    flash_attn_installed,
    zero_stage,
)

# NCCL bus bandwidth assumed for ZeRO-2's gradient reduce-scatter and parameter all-gather (bytes/s):
# within an NVLink node, and across nodes (one 400 Gb/s InfiniBand NIC per GPU). Not measured here.
NVLINK_BUS_BW = {"H100-80GB": 360e9, "H200": 360e9, "A100-80GB": 230e9}
INTER_NODE_BUS_BW = 45e9
GPUS_PER_NODE = 8
MAX_GPUS = 4096  # the most GPUs `estimate` looks at for a run that does not fit on fewer


@dataclass(frozen=True)
class Settings:
    micro_batch: int
    accumulation: int
    checkpointed_layers: int  # of num_layers; 0 = off
    num_layers: int
    overlap_comm: bool

    @property
    def checkpointed_fraction(self) -> float:
        return self.checkpointed_layers / self.num_layers if self.num_layers else 1.0

    def describe_checkpointing(self) -> str:
        if self.checkpointed_layers == 0:
            return "off"
        if self.checkpointed_layers >= self.num_layers:
            return f"all {self.num_layers} layers"
        return f"{self.checkpointed_layers} of {self.num_layers} layers"


@dataclass(frozen=True)
class StepPrediction:
    step_time_s: float
    compute_s: float
    comm_s: float
    work: StepWork
    measurement: Measurement
    caveats: tuple[str, ...]


@dataclass(frozen=True)
class ProfileCost:
    profile: str
    settings: Settings
    steps: int
    prediction: StepPrediction
    gpus: int
    notes: tuple[str, ...] = ()
    memory: MemoryEstimate | None = None  # what a rank needs under these settings; None: not judged
    free_bytes: int = 0  # what a GPU of the card has free

    @property
    def fits(self) -> bool:
        """Whether the memory model says these settings fit on the card (True when it cannot judge)."""
        return self.memory is None or self.memory.fits(self.free_bytes)

    @property
    def wall_s(self) -> float:
        return self.steps * self.prediction.step_time_s

    @property
    def gpu_hours(self) -> float:
        return self.wall_s * self.gpus / 3600


def recipe_settings(config: Mapping[str, Any], shape: ModelShape) -> Settings:
    return Settings(
        int(config.get("per_device_train_batch_size", 1)),
        int(config.get("gradient_accumulation_steps", 1)),
        0 if config.get("disable_gradient_checkpointing") else shape.num_layers,
        shape.num_layers,
        False,
    )


def decide_on_card(
    config: Mapping[str, Any],
    shape: ModelShape,
    gpus: int,
    card: Card,
    samples: int | None,
    *,
    source: str,
    allow_partial: bool = PARTIAL_CHECKPOINTING_IN_TRAIN,
) -> FastDecision:
    """What `fast` decides for `shape` on `gpus` idle GPUs of a named card, without seeing one
    (`estimate --gpu`, `bench --decide-for`); `source` names where the memory figure comes from."""
    return decide_fast(
        config,
        shape,
        world=gpus,
        gpu_count=gpus,
        device=lambda: card.memory(source),
        samples=samples,
        fa2_installed=flash_attn_installed(),
        allow_partial=allow_partial,
    )


def fast_settings(
    config: Mapping[str, Any], shape: ModelShape, gpus: int, card: Card, samples: int | None
) -> tuple[Settings, FastDecision]:
    decision = decide_on_card(config, shape, gpus, card, samples, source=f"{card.name}, idle")
    ckpt = 0 if not decision.checkpointing else shape.num_layers - decision.kept_layers
    settings = Settings(decision.micro_batch, decision.accumulation, ckpt, shape.num_layers, decision.overlap_comm)
    return settings, decision


def profile_memory(
    config: Mapping[str, Any], shape: ModelShape, settings: Settings, gpus: int
) -> MemoryEstimate | None:
    """What a rank needs to train under `settings` on `gpus` GPUs (train/memory.py); None when the
    DeepSpeed config cannot be read."""
    stage = zero_stage(config)
    if stage is None:
        return None
    checkpointed = settings.checkpointed_layers > 0
    kept = settings.num_layers - settings.checkpointed_layers if checkpointed else 0
    planned = {**config, "per_device_train_batch_size": settings.micro_batch}
    train = train_shape_from_config(
        planned, stage, gpus, checkpointed, kept_layers=kept, overlap_comm=settings.overlap_comm
    )
    return memory_estimate(shape, train)


def fewest_gpus(
    config: Mapping[str, Any], shape: ModelShape, settings: Settings, card: Card, start: int, stop: int
) -> int | None:
    """The fewest GPUs of `card`, from `start` to `stop`, on which `settings` fit (ZeRO shards the model
    states over the GPUs); None when none of those counts does."""
    free = card.memory(card.name).free_bytes
    for gpus in range(max(start, 1), stop + 1):
        memory = profile_memory(config, shape, settings, gpus)
        if memory is None or memory.fits(free):
            return gpus
    return None


def step_work(config: Mapping[str, Any], settings: Settings, lengths: Sequence[int]) -> StepWork:
    cutoff = int(config.get("cutoff_len", 2048))
    cut = [min(n, cutoff) for n in lengths]
    if config.get("packing"):
        return packed_step(greedy_knapsack(cut, cutoff), settings.micro_batch, settings.accumulation, cutoff)
    return unpacked_step(cut, settings.micro_batch, settings.accumulation, cutoff)


def epoch_units(config: Mapping[str, Any], stats: TokenStats) -> int:
    """What one epoch iterates: samples, or packed rows (the sample's packing scaled to the dataset)."""
    if not config.get("packing"):
        return stats.records
    cutoff = int(config.get("cutoff_len", 2048))
    rows = greedy_knapsack([min(n, cutoff) for n in stats.lengths], cutoff)
    return max(1, math.ceil(len(rows) * stats.records / max(len(stats.lengths), 1)))


def choose(table: Table, preset: str, shape: ModelShape, mode: str, settings: Settings, card: Card) -> Measurement:
    """The measurement a prediction rests on: the same mode, then the closest shape (the preset's
    own geometry first), micro-batch and share of checkpointed layers, card, and newest."""
    candidates = [m for m in table.measurements if m.mode == mode]
    if not candidates:
        raise LookupError(f"the throughput table {table.path} has no measurement of the {mode} config")

    def key(m: Measurement) -> tuple[int, float, int, tuple[int, ...]]:
        if m.shape.startswith(shape.name) or shape.name.startswith(m.shape):
            family = 0  # the preset's own geometry (full depth or cut)
        elif m.preset == preset:
            family = 1  # the same recipe on another shape
        else:
            family = 2
        setting = abs(m.checkpointed_fraction - settings.checkpointed_fraction)
        setting += 0.5 if m.micro_batch != settings.micro_batch else 0.0
        same_card = 0 if (m.card or m.gpu) == card.name else 1
        return family, round(setting, 6), same_card, tuple(-ord(c) for c in m.date)  # newest first

    return min(candidates, key=key)


def comm_seconds(shape: ModelShape, settings: Settings, gpus: int, card: Card, compute_s: float) -> float:
    """ZeRO-2 communication a single-GPU measurement cannot see: a reduce-scatter of the bf16
    gradients after every micro-batch (exposed unless overlap_comm hides it behind the backward
    of the next buckets), and an all-gather of the updated bf16 weights after every step."""
    if gpus <= 1:
        return 0.0
    bw = NVLINK_BUS_BW.get(card.name, 230e9) if gpus <= GPUS_PER_NODE else INTER_NODE_BUS_BW
    one_pass = 2 * shape.params * (gpus - 1) / gpus / bw
    per_micro = one_pass
    if settings.overlap_comm:
        backward = compute_s / settings.accumulation * 2 / 3
        per_micro = max(0.0, one_pass - backward)  # only what backward cannot hide
    return settings.accumulation * per_micro + one_pass


@dataclass(frozen=True)
class CostInputs:
    """What is costed, under either profile's settings: the preset's rendered config and model shape
    over the dataset's token stats, on `gpus` GPUs of `card`, with `table`'s measured efficiencies."""

    table: Table
    preset: str
    shape: ModelShape
    config: Mapping[str, Any]
    stats: TokenStats
    gpus: int
    card: Card


def predict_step(inputs: CostInputs, settings: Settings) -> StepPrediction:
    shape, card = inputs.shape, inputs.card
    mode = "long" if inputs.config.get("packing") else "standard"
    m = choose(inputs.table, inputs.preset, shape, mode, settings, card)
    work = step_work(inputs.config, settings, inputs.stats.lengths)
    compute = hardware_flops(shape, work) / (m.efficiency * card.peak_bf16)
    comm = comm_seconds(shape, settings, inputs.gpus, card, compute)
    caveats = []
    if not m.shape.startswith(shape.name) and not shape.name.startswith(m.shape):
        caveats.append(
            f"measured on another shape ({m.shape}): its efficiency may not carry over to {shape.name}"
            + (" (a small model is overhead-bound, so this is likely pessimistic)" if "0.5b" in m.shape else "")
        )
    elif m.num_layers != shape.num_layers:
        caveats.append(
            f"measured on {m.shape} ({m.num_layers} layers); the efficiency is assumed to carry to {shape.num_layers}"
        )
    if (m.card or m.gpu) != card.name:
        caveats.append(f"measured on {m.gpu}, scaled to {card.name} by peak FLOP/s")
    if m.micro_batch != settings.micro_batch:
        caveats.append(f"measured with micro-batch {m.micro_batch}, not {settings.micro_batch}")
    if abs(m.checkpointed_fraction - settings.checkpointed_fraction) > 0.13:
        caveats.append(
            f"measured with {m.checkpointed_layers} of {m.num_layers} layers checkpointed, "
            f"not {settings.describe_checkpointing()}"
        )
    if comm:
        caveats.append(f"includes {comm:.2f} s/step of assumed ZeRO-2 communication (not measured)")
    return StepPrediction(compute + comm, compute, comm, work, m, tuple(caveats))


def profile_cost(profile: str, inputs: CostInputs, settings: Settings, notes: Sequence[str] = ()) -> ProfileCost:
    config, gpus = inputs.config, inputs.gpus
    prediction = predict_step(inputs, settings)
    epochs = float(config.get("num_train_epochs", 3.0))
    per_epoch = steps_per_epoch(epoch_units(config, inputs.stats), settings.micro_batch, settings.accumulation, gpus)
    steps = math.ceil(epochs * per_epoch)
    memory = profile_memory(config, inputs.shape, settings, gpus)
    free = inputs.card.memory(inputs.card.name).free_bytes
    return ProfileCost(profile, settings, steps, prediction, gpus, tuple(notes), memory, free)


def format_duration(seconds: float) -> str:
    minutes = seconds / 60
    if 0 < minutes < 1:
        return "<1 min"
    if minutes < 90:
        return f"{minutes:.0f} min"
    hours = minutes / 60
    if hours < 48:
        return f"{hours:.1f} h"
    return f"{hours / 24:.1f} days"
