"""What a benchmark run achieved: real tokens/s in the steady state, MFU with attention counted the
way LLaMA-Factory attends, peak memory against the memory model, and the loss at every step."""

from __future__ import annotations

import itertools
import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from oda_sft.bench.spec import PEAK_BF16, BenchSpec
from oda_sft.runs import trainer_log
from oda_sft.shapes import ModelShape, shape_from_hf_config
from oda_sft.train.hardware import visible_gpu_count
from oda_sft.train.memory import GIB, estimate, train_shape_from_config
from oda_sft.train.profile import zero_stage
from oda_sft.train.request import LaunchOptions


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


@dataclass(frozen=True)
class RowStats:
    """What the tokenized dataset says about real tokens and attention, per counted token."""

    real_fraction: float  # real tokens / tokens the trainer counts
    pairs_per_real_token: float  # sum over attention spans of L(L+1), per real token
    longest_row: int  # tokens in the longest row (padding to cutoff included when packed)


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
    for i, length in enumerate(input_lengths):
        if not packed or position_ids is None:
            counted += length
            real += length
            pairs += length * (length + 1)
            continue
        pos = position_ids[i]
        pad = 0
        while pad < len(pos) and pos[len(pos) - 1 - pad] == 0:
            pad += 1
        span = length - pad
        real += span
        counted += span if neat else length
        if neat:
            starts = [j for j in range(span) if pos[j] == 0] + [span]
            pairs += sum((b - a) * (b - a + 1) for a, b in itertools.pairwise(starts))
        else:
            pairs += span * (span + 1)
    if real == 0:
        return RowStats(1.0, 0.0, longest)
    return RowStats(real / counted, pairs / real, longest)


def _tokenized_stats(path: Path, packed: bool, neat: bool) -> RowStats | None:
    if not path.is_dir():
        return None
    from datasets import load_from_disk  # type: ignore[import-untyped]

    loaded: Any = load_from_disk(str(path))
    train = loaded.get("train", loaded)
    lengths = [len(x) for x in train["input_ids"]]
    positions = train["position_ids"] if packed and "position_ids" in train.column_names else None
    return row_stats(lengths, positions, packed, neat)


def peak_flops(gpu_name: str | None, override_tflops: float | None) -> float | None:
    if override_tflops:
        return override_tflops * 1e12
    if not gpu_name:
        return None
    for key, value in PEAK_BF16:
        if key.lower() in gpu_name.lower():
            return value
    return None


def flops_per_real_token(shape: ModelShape, pairs_per_real_token: float) -> float:
    """Model FLOPs per trained token: 6 x matmul parameters, plus causal attention
    (QK^T and AV: 2 x 2 x q_dim per attended pair, halved by causality, x3 for forward and backward).
    Recomputation under gradient checkpointing is not model work, so it is not counted."""
    return 6.0 * shape.matmul_params + 6.0 * shape.num_layers * shape.q_dim * pairs_per_real_token


def steady_rate(rows: list[dict[str, Any]], warmup: int) -> tuple[float, list[int]] | None:
    """Counted tokens/s between the first logged step after warm-up and the last one.

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
    if last[2] <= first[2]:
        return None
    return (last[1] - first[1]) / (last[2] - first[2]), [first[0], last[0]]


def read_metrics(result: RunResult, log_path: Path, tokenized: Path, spec: BenchSpec) -> None:
    rows = trainer_log.read(log_path)
    losses = [r for r in rows if isinstance(r.get("loss"), int | float) and "current_steps" in r]
    result.steps = [int(r["current_steps"]) for r in losses]
    result.losses = [float(r["loss"]) for r in losses]
    cfg = result.config
    stats = _tokenized_stats(tokenized, bool(cfg.get("packing")), bool(cfg.get("neat_packing")))
    shape = _fixture_shape(Path(str(cfg.get("model_name_or_path", ""))), spec)
    rate = steady_rate(rows, spec.warmup_steps)
    if rate is not None and stats is not None:
        result.real_token_fraction = round(stats.real_fraction, 4)
        result.tokens_per_s = round(rate[0] * stats.real_fraction, 1)
        result.steady_steps = rate[1]
        result.flops_per_token = flops_per_real_token(shape, stats.pairs_per_real_token)
    # On a CPU LLaMA-Factory logs 0: there is no device memory to report.
    vram = [float(r["vram_allocated"]) for r in rows if isinstance(r.get("vram_allocated"), int | float)]
    vram = [v for v in vram if v > 0]
    if vram:
        result.peak_allocated_gib = max(vram)
    stage = zero_stage(cfg)
    world = LaunchOptions(spec.nproc_per_node).world_size(visible_gpu_count())
    if stage is not None and stats is not None:
        train = train_shape_from_config(cfg, stage, world)
        if not cfg.get("packing"):
            # The collator pads to the longest row of a micro-batch, in multiples of 8.
            train = train.__class__(**{**asdict(train), "tokens_per_row": math.ceil(stats.longest_row / 8) * 8})
        result.predicted_peak_gib = round(estimate(shape, train).peak_allocated / GIB, 2)
        if result.peak_allocated_gib:
            result.memory_rel_error = round(result.predicted_peak_gib / result.peak_allocated_gib - 1, 3)


def _fixture_shape(model_dir: Path, spec: BenchSpec) -> ModelShape:
    cfg_file = model_dir / "config.json"
    if cfg_file.is_file():
        return shape_from_hf_config(spec.model_shape().name, json.loads(cfg_file.read_text(encoding="utf-8")))
    return spec.model_shape()
