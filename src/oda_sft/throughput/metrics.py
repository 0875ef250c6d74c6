"""What a benchmark run achieved: real tokens/s in the steady state, MFU with attention counted the
way LLaMA-Factory attends, peak memory against the memory model, and the loss at every step."""

from __future__ import annotations

import itertools
import json
import math
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from oda_sft.cards import peak_for
from oda_sft.cost.accounting import StepWork, hardware_flops, packed_step, unpacked_step
from oda_sft.runs import trainer_log
from oda_sft.shapes import ModelShape, shape_from_hf_config
from oda_sft.throughput.spec import BenchSpec
from oda_sft.train.memory import GIB, estimate, train_shape_from_config
from oda_sft.train.profile import CHECKPOINT_LAYERS_ENV, overlap_comm, zero_stage
from oda_sft.train.request import LaunchOptions
from oda_sft.util.hardware import visible_gpu_count


@dataclass
class RunResult:
    data: str
    variant: str
    rc: int
    wall_s: float
    log: str
    config: dict[str, Any] = field(default_factory=dict)
    steps: list[int] = field(default_factory=list)
    losses: list[float] = field(default_factory=list)
    tokens_per_s: float | None = None  # real tokens only, steady state
    steady_steps: list[int] = field(default_factory=list)
    real_token_fraction: float | None = None  # real / counted tokens (packed rows count their padding)
    flops_per_token: float | None = None
    mfu: float | None = None
    peak_allocated_gib: float | None = None
    predicted_peak_gib: float | None = None
    memory_rel_error: float | None = None
    speedup_vs_raw: float | None = None
    max_abs_loss_diff_vs_raw: float | None = None
    # What a step costs: steady seconds per optimizer step, and the step's computed work
    # (cost/accounting.py) as FLOPs; efficiency = those FLOPs / (step time x peak x GPUs).
    step_time_s: float | None = None
    work: dict[str, float] | None = None
    hardware_flops_per_step: float | None = None
    efficiency: float | None = None
    # How it ran: the decision behind a fast@NODE variant, and the trainer patches it needed.
    decision: str = ""
    decision_notes: list[str] = field(default_factory=list)
    trainer_env: dict[str, str] = field(default_factory=dict)
    num_layers: int = 0
    checkpointed_layers: int = 0
    overlap_comm: bool = False
    same_as: list[str] = field(default_factory=list)  # other variants whose config was this very one
    skipped: str = ""  # why the run did not happen (time budget)


@dataclass(frozen=True)
class RowStats:
    """What the tokenized dataset says about real tokens and attention, per counted token."""

    real_fraction: float  # real tokens / tokens the trainer counts
    pairs_per_real_token: float  # sum over attention spans of L(L+1), per real token
    longest_row: int  # tokens in the longest row (padding to cutoff included when packed)
    real_lengths: tuple[int, ...] = ()  # per sample (unpacked) or per row (packed): real tokens
    sample_lengths: tuple[int, ...] = ()  # per sample, packed or not


def row_stats(input_lengths: list[int], position_ids: list[list[int]] | None, packed: bool, neat: bool) -> RowStats:
    """Per-row accounting, following LLaMA-Factory 0.9.4:

    - unpacked rows are one sample each; the collator pads a micro-batch to its longest row, and the
      attention mask (so the trainer's count) covers real tokens only;
    - packed rows are padded to cutoff_len+1 with position 0 and, without neat_packing, mask 1: the
      trainer counts that padding, and every real token attends causally across the samples of its row;
    - with neat_packing each sample attends only within itself.
    """
    counted = real = pairs = 0
    longest = max(input_lengths, default=0)
    spans: list[int] = []
    samples: list[int] = []
    for i, length in enumerate(input_lengths):
        if not packed or position_ids is None:
            counted += length
            real += length
            pairs += length * (length + 1)
            spans.append(length)
            samples.append(length)
            continue
        pos = position_ids[i]
        pad = 0
        while pad < len(pos) and pos[len(pos) - 1 - pad] == 0:
            pad += 1
        span = length - pad
        spans.append(span)
        real += span
        counted += span if neat else length
        starts = [j for j in range(span) if pos[j] == 0] + [span]
        samples.extend(b - a for a, b in itertools.pairwise(starts))
        if neat:
            pairs += sum((b - a) * (b - a + 1) for a, b in itertools.pairwise(starts))
        else:
            pairs += span * (span + 1)
    if real == 0:
        return RowStats(1.0, 0.0, longest, tuple(spans), tuple(samples))
    return RowStats(real / counted, pairs / real, longest, tuple(spans), tuple(samples))


def tokenized_stats(path: Path, packed: bool, neat: bool) -> RowStats | None:
    if not path.is_dir():
        return None
    from datasets import load_from_disk  # type: ignore[import-untyped]

    loaded: Any = load_from_disk(str(path))
    train = loaded.get("train", loaded)
    lengths = [len(x) for x in train["input_ids"]]
    positions = train["position_ids"] if packed and "position_ids" in train.column_names else None
    return row_stats(lengths, positions, packed, neat)


def peak_flops(gpu_name: str | None, override_tflops: float | None) -> float | None:
    """Dense bf16 peak FLOP/s: --peak-tflops, else by the GPU's name (cards.py)."""
    if override_tflops:
        return override_tflops * 1e12
    return peak_for(gpu_name)


def flops_per_real_token(shape: ModelShape, pairs_per_real_token: float) -> float:
    """Model FLOPs per trained token: 6 x matmul parameters, plus causal attention
    (QK^T and AV: 2 x 2 x q_dim per attended pair, halved by causality, x3 for forward and backward).
    Recomputation under gradient checkpointing is not model work, so it is not counted."""
    return 6.0 * shape.matmul_params + 6.0 * shape.num_layers * shape.q_dim * pairs_per_real_token


def steady_rate(rows: list[dict[str, Any]], warmup: int) -> tuple[float, list[int], float] | None:
    """(counted tokens/s, [first, last] step, seconds per step) between the first logged step after
    warm-up and the last one.

    LLaMA-Factory logs throughput = tokens so far / seconds since training began, so the time of
    each step is tokens / throughput."""
    points = [
        (int(r["current_steps"]), float(r["total_tokens"]), float(r["total_tokens"]) / float(r["throughput"]))
        for r in rows
        if r.get("total_tokens") and r.get("throughput") and "current_steps" in r
    ]
    if len(points) < 2:
        return None
    first = points[min(warmup, len(points) - 2)]
    last = points[-1]
    if last[2] <= first[2] or last[0] <= first[0]:
        return None
    return (last[1] - first[1]) / (last[2] - first[2]), [first[0], last[0]], (last[2] - first[2]) / (last[0] - first[0])


def step_work(config: dict[str, Any], stats: RowStats) -> StepWork:
    """One rank's work per optimizer step under `config`, from the tokenized rows it trained on."""
    micro = int(config.get("per_device_train_batch_size", 1))
    accum = int(config.get("gradient_accumulation_steps", 1))
    cutoff = int(config.get("cutoff_len", 2048))
    if config.get("packing"):
        return packed_step([[n] for n in stats.real_lengths], micro, accum, cutoff)
    return unpacked_step(list(stats.real_lengths), micro, accum, cutoff)


def read_metrics(result: RunResult, log_path: Path, tokenized: Path, spec: BenchSpec) -> None:
    rows = trainer_log.read(log_path)
    losses = [r for r in rows if isinstance(r.get("loss"), int | float) and "current_steps" in r]
    result.steps = [int(r["current_steps"]) for r in losses]
    result.losses = [float(r["loss"]) for r in losses]
    cfg = result.config
    stats = tokenized_stats(tokenized, bool(cfg.get("packing")), bool(cfg.get("neat_packing")))
    shape = _fixture_shape(Path(str(cfg.get("model_name_or_path", ""))), spec)
    result.num_layers = shape.num_layers
    checkpointed = result.trainer_env.get(CHECKPOINT_LAYERS_ENV)
    if cfg.get("disable_gradient_checkpointing"):
        result.checkpointed_layers = 0
    else:
        result.checkpointed_layers = min(int(checkpointed), shape.num_layers) if checkpointed else shape.num_layers
    result.overlap_comm = overlap_comm(cfg)
    rate = steady_rate(rows, spec.warmup_steps)
    if rate is not None and stats is not None:
        result.real_token_fraction = round(stats.real_fraction, 4)
        result.tokens_per_s = round(rate[0] * stats.real_fraction, 1)
        result.steady_steps = rate[1]
        result.step_time_s = round(rate[2], 4)
        result.flops_per_token = flops_per_real_token(shape, stats.pairs_per_real_token)
    if stats is not None:
        work = step_work(cfg, stats)
        result.work = {k: round(float(v), 1) for k, v in asdict(work).items()}
        result.hardware_flops_per_step = hardware_flops(shape, work)
    # On a CPU LLaMA-Factory logs 0: there is no device memory to report.
    vram = [float(r["vram_allocated"]) for r in rows if isinstance(r.get("vram_allocated"), int | float)]
    vram = [v for v in vram if v > 0]
    if vram:
        result.peak_allocated_gib = max(vram)
    stage = zero_stage(cfg)
    world = LaunchOptions(spec.nproc_per_node).world_size(visible_gpu_count())
    if stage is not None and stats is not None:
        kept = shape.num_layers - result.checkpointed_layers if result.checkpointed_layers else 0
        train = train_shape_from_config(cfg, stage, world, kept_layers=kept, overlap_comm=result.overlap_comm)
        if not cfg.get("packing"):
            # The collator pads to the longest row of a micro-batch, in multiples of 8.
            train = replace(train, tokens_per_row=math.ceil(stats.longest_row / 8) * 8)
        result.predicted_peak_gib = round(estimate(shape, train).peak_allocated / GIB, 2)
        if result.peak_allocated_gib:
            result.memory_rel_error = round(result.predicted_peak_gib / result.peak_allocated_gib - 1, 3)


def _fixture_shape(model_dir: Path, spec: BenchSpec) -> ModelShape:
    cfg_file = model_dir / "config.json"
    if cfg_file.is_file():
        return shape_from_hf_config(spec.model_shape().name, json.loads(cfg_file.read_text(encoding="utf-8")))
    return spec.model_shape()
