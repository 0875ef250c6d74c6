"""What one benchmark measures: the model shape, the recipe preset, the data, the variants."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from oda_sft.cards import parse_node
from oda_sft.errors import OdaSftError, UsageError
from oda_sft.presets import PRESETS, Mode, ModelPreset
from oda_sft.shapes import ModelShape

VARIANTS = ("raw", "default", "fast")
# `fast@8xH100-80GB`: the fast profile as decided for the full-size preset on 8 such GPUs (--decide-for).
DECIDED = "fast@"
DATA_KINDS = ("std", "long")
DATA_MODE: dict[str, Mode] = {"std": "standard", "long": "long"}
# Shapes the bench builds besides the presets' own, each with the preset whose recipe it trains.
EXTRA_SHAPES: dict[str, tuple[ModelShape, str]] = {
    s.name: (s, "qwen")
    for s in (
        ModelShape("qwen2.5-0.5b", 896, 4864, 24, 14, 2, 151936, tie_word_embeddings=True, attention_bias=True),
        ModelShape("qwen2.5-1.5b", 1536, 8960, 28, 12, 2, 151936, tie_word_embeddings=True, attention_bias=True),
    )
}
# A preset trains its own shape with its own recipe (a proxy preset of an extra shape too).
SHAPES: dict[str, tuple[ModelShape, str]] = EXTRA_SHAPES | {p.shape.name: (p.shape, p.name) for p in PRESETS.values()}
# Token-length mixes, log-uniform between the bounds (rendered through the `default` template).
# std: ODA's standard sets are mostly short instructions with a long tail (median about 700 tokens).
# long: long-CoT traces beyond 4096 tokens, median about 10k, a few near 24k.
LENGTH_MIX = {"std": (150, 3500), "long": (4500, 24000)}
# Loss parity tolerances. On a CPU in fp32 the fast profile runs the same ops in the same order
# (a checkpointed layer recomputes exactly its forward), so only the 4-decimal rounding of the
# logged loss can differ. On GPUs bf16 and non-deterministic reductions move the 4th decimal
# (the kit saw 11.8658 vs 11.8656 after 15 steps).
LOSS_TOL = {"cpu": 1e-4, "gpu": 2e-3}
# Issue 13's goals: fast >= 1.5x raw on std and >= 1.15x on long, default >= 0.98x raw,
# the memory model within 15% of every measured peak.
TARGETS = {"default_vs_raw": 0.98, "fast_vs_raw_std": 1.5, "fast_vs_raw_long": 1.15, "memory_rel_error": 0.15}
# v2: sample counts rounded up to a multiple of 32 (4 samples x 8 ranks), so that the fast
# profile's micro-batch split is exact for a decision made for 8 GPUs.
FIXTURE_VERSION = 2
SPLIT_MULTIPLE = 32


class BenchError(OdaSftError):
    """A benchmark that could not be set up or whose runs failed."""


@dataclass(frozen=True)
class BenchSpec:
    out_dir: Path
    shape: str = "tiny"
    layers: int | None = None
    preset: str | None = None
    datasets: tuple[str, ...] = DATA_KINDS
    variants: tuple[str, ...] = VARIANTS
    steps: int = 15
    warmup_steps: int = 4  # logged steps left out of the steady state (compilation, allocator growth)
    scale: int = 1  # divide the length mixes and cutoff_len by this (the CPU tiny run uses 16)
    nproc_per_node: int | None = None
    peak_tflops: float | None = None
    run_timeout_s: float = 1800.0
    seed: int = 42
    decide_for: tuple[str, ...] = ()  # e.g. ("8xH100-80GB", "8xH200"): fast as decided for those nodes
    time_budget_s: float | None = None  # skip runs that would not finish inside it

    @property
    def runs(self) -> tuple[str, ...]:
        """The variants to run: `fast` becomes one fast@NODE per --decide-for node."""
        out: list[str] = []
        for v in self.variants:
            if v == "fast" and self.decide_for:
                out.extend(f"{DECIDED}{node}" for node in self.decide_for)
            else:
                out.append(v)
        return tuple(out)

    @property
    def preset_name(self) -> str:
        return self.preset or SHAPES[self.shape][1]

    @property
    def recipe(self) -> ModelPreset:
        return PRESETS[self.preset_name]

    def upstream(self, data: str) -> dict[str, Any]:
        """The raw upstream config of this preset for one kind of data."""
        return self.recipe.upstream_config(DATA_MODE[data])

    def validate(self, gpu_count: int) -> None:
        if self.shape not in SHAPES:
            raise UsageError(f"unknown shape {self.shape!r}: use one of {', '.join(SHAPES)}")
        if self.preset_name not in PRESETS:
            raise UsageError(f"unknown preset {self.preset_name!r}: use one of {', '.join(PRESETS)}")
        for d in self.datasets:
            if d not in DATA_KINDS:
                raise UsageError(f"unknown bench data {d!r}: use std and/or long")
            if DATA_MODE[d] not in self.recipe.upstream:
                raise UsageError(f"preset {self.preset_name} has no {d} config in the recipe: use --data long")
        for v in self.variants:
            if v not in VARIANTS:
                raise UsageError(f"unknown variant {v!r}: use raw, default and/or fast")
        if self.steps < 2 or self.warmup_steps < 0 or self.scale < 1:
            raise UsageError("--steps must be at least 2, --warmup-steps at least 0 and --scale at least 1")
        if self.layers is not None and self.layers < 1:
            raise UsageError("--layers must be at least 1")
        for node in self.decide_for:
            parse_node(node)
        if gpu_count == 0 and not self.recipe.embedded:
            raise UsageError(
                f"preset {self.preset_name} needs a GPU (bf16, DeepSpeed, liger): on a CPU use --preset tiny"
            )

    def model_shape(self) -> ModelShape:
        base = SHAPES[self.shape][0]
        return base.with_layers(self.layers) if self.layers else base
