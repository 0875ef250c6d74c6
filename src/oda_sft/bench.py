"""`oda-sft bench`: the raw upstream recipe against oda-sft's rendered configs, back to back.

It builds an offline fixture (a random-weight model of a chosen shape, and synthetic std and long
data with realistic length mixes), trains each variant for a few steps with the real
llamafactory-cli, and reports per run: tokens/s over real tokens only, MFU with attention counted
the way LLaMA-Factory attends, peak GPU memory (and the memory model's prediction), and the loss
curve with its largest difference to the raw recipe.

torch, transformers, tokenizers and datasets are imported inside the functions that need them.
"""

from __future__ import annotations

import itertools
import json
import math
import os
import platform
import random
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml

from oda_sft import __version__, launch, subproc, tiny
from oda_sft.errors import OdaSftError, UsageError
from oda_sft.fsutil import atomic_write_json, atomic_write_text
from oda_sft.gpuinfo import gpu_memory
from oda_sft.hardware import visible_gpu_count
from oda_sft.memory_model import GIB, SHAPES, ModelShape, estimate, shape_from_hf_config, train_shape_from_config
from oda_sft.paths import train_config_dir
from oda_sft.profiles import zero_stage
from oda_sft.recipe import CPU_FALLBACK, dump_yaml

VARIANTS = ("raw", "default", "fast")
DATASETS = ("std", "long")
SHAPE_PRESET = {
    "tiny": "tiny",
    "qwen2.5-0.5b": "qwen",
    "qwen2.5-1.5b": "qwen",
    "qwen2.5-7b": "qwen",
    "llama3.1-8b": "llama",
    "qwen3-8b": "qwen3",
}
# Token-length mixes, log-uniform between the bounds (rendered through the `default` template).
# std: ODA's standard sets are mostly short instructions with a long tail (median about 700 tokens).
# long: long-CoT traces beyond 4096 tokens, median about 10k, a few near 24k.
LENGTH_MIX = {"std": (150, 3500), "long": (4500, 24000)}
# Loss parity tolerances. On a CPU in fp32 the fast profile runs the same ops in the same order
# (a checkpointed layer recomputes exactly its forward), so only the 4-decimal rounding of the
# logged loss can differ. On GPUs bf16 and non-deterministic reductions move the 4th decimal
# (the kit saw 11.8658 vs 11.8656 after 15 steps).
LOSS_TOL = {"cpu": 1e-4, "gpu": 2e-3}
# Dense bf16 peak (FLOP/s) by GPU name; --peak-tflops overrides it.
PEAK_BF16 = (("H200", 989.4e12), ("H100 PCIe", 756.0e12), ("H100", 989.4e12), ("A100", 312.0e12), ("L40S", 362.05e12))
TARGETS = {"default_vs_raw": 0.98, "fast_vs_raw_long": 1.2, "memory_rel_error": 0.15}
FIXTURE_VERSION = 1

# The upstream recipe as upstream wrote it (RECIPE.md), before oda-sft's fixes; tiny is llama at toy scale.
_RAW_SHARED: dict[str, Any] = {
    "trust_remote_code": True,
    "stage": "sft",
    "do_train": True,
    "finetuning_type": "full",
    "template": "default",
    "overwrite_cache": True,
    "preprocessing_num_workers": 16,
    "logging_steps": 10,
    "save_strategy": "epoch",
    "save_only_model": True,
    "save_total_limit": 1,
    "plot_loss": True,
    "overwrite_output_dir": True,
    "num_train_epochs": 3.0,
    "lr_scheduler_type": "cosine",
    "bf16": True,
    "ddp_timeout": 180000000,
    "use_liger_kernel": True,
}
_STD = {"cutoff_len": 4096, "per_device_train_batch_size": 4, "gradient_accumulation_steps": 4}
_LONG = {"cutoff_len": 32768, "packing": True, "per_device_train_batch_size": 1, "gradient_accumulation_steps": 2}
RAW_RECIPE: dict[tuple[str, str], dict[str, Any]] = {
    ("llama", "std"): {**_STD, "learning_rate": 2.0e-5, "warmup_ratio": 0.03, "seed": 42},
    ("llama", "long"): {**_LONG, "learning_rate": 3.0e-5, "warmup_ratio": 0.03, "seed": 42},
    ("qwen", "std"): {**_STD, "learning_rate": 5.0e-6, "warmup_ratio": 0.1, "seed": 42},
    ("qwen", "long"): {**_LONG, "learning_rate": 5.0e-5, "warmup_ratio": 0.1},  # upstream has no seed here
    ("qwen3", "long"): {
        **_LONG,
        "per_device_train_batch_size": 2,
        "learning_rate": 5.0e-5,
        "warmup_ratio": 0.1,
        "seed": 42,
    },
}
_DEEPSPEED = {"llama": "ds_z2_config.json", "qwen": "ds_z2_config.json", "qwen3": "ds_z3_config.json"}


class BenchError(OdaSftError):
    """A benchmark that could not be set up or whose runs failed."""


@dataclass(frozen=True)
class BenchSpec:
    out_dir: Path
    shape: str = "tiny"
    layers: int | None = None
    preset: str | None = None
    datasets: tuple[str, ...] = DATASETS
    variants: tuple[str, ...] = VARIANTS
    steps: int = 15
    warmup_steps: int = 4  # logged steps left out of the steady state (compilation, allocator growth)
    scale: int = 1  # divide the length mixes and cutoff_len by this (the CPU tiny run uses 16)
    nproc_per_node: int | None = None
    peak_tflops: float | None = None
    run_timeout_s: float = 1800.0
    seed: int = 42

    @property
    def preset_name(self) -> str:
        return self.preset or SHAPE_PRESET[self.shape]

    def validate(self, gpu_count: int) -> None:
        if self.shape not in SHAPES:
            raise UsageError(f"unknown shape {self.shape!r}: use one of {', '.join(SHAPES)}")
        if self.preset_name not in _DEEPSPEED and self.preset_name != "tiny":
            raise UsageError(f"unknown preset {self.preset_name!r}: use tiny, llama, qwen or qwen3")
        for d in self.datasets:
            if d not in DATASETS:
                raise UsageError(f"unknown bench data {d!r}: use std and/or long")
            if (_raw_family(self.preset_name), d) not in RAW_RECIPE:
                raise UsageError(f"preset {self.preset_name} has no {d} config in the recipe: use --data long")
        for v in self.variants:
            if v not in VARIANTS:
                raise UsageError(f"unknown variant {v!r}: use raw, default and/or fast")
        if self.steps < 2 or self.warmup_steps < 0 or self.scale < 1:
            raise UsageError("--steps must be at least 2, --warmup-steps at least 0 and --scale at least 1")
        if self.layers is not None and self.layers < 1:
            raise UsageError("--layers must be at least 1")
        if gpu_count == 0 and self.preset_name != "tiny":
            raise UsageError(
                f"preset {self.preset_name} needs a GPU (bf16, DeepSpeed, liger): on a CPU use --preset tiny"
            )

    def model_shape(self) -> ModelShape:
        base = SHAPES[self.shape]
        return base.with_layers(self.layers) if self.layers else base


def _raw_family(preset: str) -> str:
    return "llama" if preset == "tiny" else preset


# ---------------------------------------------------------------------------------------------- fixture


def fixture_key(spec: BenchSpec) -> str:
    shape = spec.model_shape()
    return f"{shape.name}-s{spec.scale}-n{spec.steps}-seed{spec.seed}-v{FIXTURE_VERSION}"


def sample_counts(spec: BenchSpec, world: int) -> dict[str, int]:
    """Enough samples that the measured steps never wrap into a second epoch."""
    counts: dict[str, int] = {}
    for d in spec.datasets:
        raw = RAW_RECIPE[(_raw_family(spec.preset_name), d)]
        rows = spec.steps * raw["per_device_train_batch_size"] * raw["gradient_accumulation_steps"] * world
        lo, hi = LENGTH_MIX[d]
        mean = (hi - lo) / math.log(hi / lo)  # mean of a log-uniform distribution
        per_row = raw["cutoff_len"] / mean if raw.get("packing") else 1.0
        counts[d] = math.ceil(rows * max(per_row, 1.0) * 1.25) + 8
    return counts


def build_fixture(spec: BenchSpec, world: int, log: Callable[[str], None]) -> Path:
    """Model and data under out_dir/fixture/<key>; reused when already complete."""
    root = spec.out_dir / "fixture" / fixture_key(spec)
    done = root / "fixture.json"
    if done.is_file():
        log(f"fixture: reusing {root}")
        return root
    t0 = time.time()
    tok = _train_tokenizer(1024 if spec.shape == "tiny" else 8192, spec.seed)
    tok.save_pretrained(root / "model")
    shape = spec.model_shape()
    n_params = _build_model(root / "model", shape, tok, spec.seed)
    log(f"fixture: {shape.name} model, {n_params / 1e6:.1f}M parameters ({time.time() - t0:.0f}s)")
    rng = random.Random(spec.seed)
    stats: dict[str, Any] = {}
    info: dict[str, Any] = {}
    for d, n in sample_counts(spec, world).items():
        lo, hi = (max(8, x // spec.scale) for x in LENGTH_MIX[d])
        samples, lengths = _make_samples(tok, rng, n, lo, hi)
        atomic_write_text(root / "data" / f"{d}.json", json.dumps(samples, ensure_ascii=False))
        info[d] = {
            "file_name": f"{d}.json",
            "oda_sft": {"mode": "long" if d == "long" else "standard", "reason": "oda-sft bench fixture"},
        }
        lengths.sort()
        stats[d] = {
            "samples": n,
            "tokens": sum(lengths),
            "min": lengths[0],
            "p50": lengths[n // 2],
            "max": lengths[-1],
            "mix": [lo, hi],
        }
        log(f"fixture: {d} {stats[d]}")
    atomic_write_json(root / "data" / "dataset_info.json", info)
    atomic_write_json(done, {"shape": asdict(shape), "params": n_params, "data": stats, "key": fixture_key(spec)})
    return root


_WORD_TEXT = (
    "the of and to in is that for it as with was on be by this are or from at which an have not but we "
    "can all their has more one will two if there so when first then value sum answer result step "
    "therefore because number equation solve check let each prove case term list code function return "
    "loop array string integer prime factor total compute given find show since thus hence assume"
)
_WORDS = tuple(_WORD_TEXT.split())


def _text(rng: random.Random, n_words: int) -> str:
    words = [rng.choice(_WORDS) if rng.random() < 0.8 else str(rng.randint(0, 9999)) for _ in range(max(1, n_words))]
    out, line = [], 0
    for w in words:
        out.append(w)
        line += 1
        if line >= rng.randint(8, 24):
            out[-1] += "." if rng.random() < 0.8 else ".\n\n"
            line = 0
    return " ".join(out)


def _render(sample: dict[str, str]) -> str:
    # LLaMA-Factory's `default` template, which the recipe uses.
    prompt = sample["instruction"] + (f"\n{sample['input']}" if sample.get("input") else "")
    return f"Human: {prompt}\nAssistant:{sample['output']}"


def _make_samples(tok: Any, rng: random.Random, n: int, lo: int, hi: int) -> tuple[list[dict[str, str]], list[int]]:
    """n Alpaca samples whose rendered token lengths follow a log-uniform mix between lo and hi."""
    probe = _text(rng, 4000)
    words_per_token = len(probe.split()) / len(tok(probe, add_special_tokens=False)["input_ids"])
    samples, lengths = [], []
    for _ in range(n):
        target = math.exp(rng.uniform(math.log(lo), math.log(hi)))
        instruction = _text(rng, rng.randint(4, 30))
        budget = max(4, int(target * words_per_token) - len(instruction.split()))
        inp = _text(rng, int(budget * rng.uniform(0.1, 0.5))) if rng.random() < 0.4 else ""
        sample = {"instruction": instruction, "input": inp, "output": _text(rng, budget - len(inp.split()))}
        samples.append(sample)
        lengths.append(len(tok(_render(sample), add_special_tokens=False)["input_ids"]) + 2)  # two eos
    return samples, lengths


def _train_tokenizer(vocab: int, seed: int) -> Any:
    rng = random.Random(seed)
    corpus = [_text(rng, 200) for _ in range(400)] + ["Human: ", "\nAssistant:"]
    special = {"bos_token": "<s>", "eos_token": "</s>", "pad_token": "<pad>"}
    return tiny.train_byte_bpe(corpus, vocab, special, 65536)


def _build_model(out: Path, shape: ModelShape, tok: Any, seed: int) -> int:
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM, Qwen2Config, Qwen2ForCausalLM

    vocab = shape.vocab_size if shape.vocab_size >= len(tok) else math.ceil(len(tok) / 64) * 64
    common: dict[str, Any] = {
        "vocab_size": vocab,
        "hidden_size": shape.hidden_size,
        "intermediate_size": shape.intermediate_size,
        "num_hidden_layers": shape.num_layers,
        "num_attention_heads": shape.num_heads,
        "num_key_value_heads": shape.num_kv_heads,
        "max_position_embeddings": 65536,
        "tie_word_embeddings": shape.tie_word_embeddings,
        "bos_token_id": tok.bos_token_id,
        "eos_token_id": tok.eos_token_id,
        "pad_token_id": tok.pad_token_id,
    }
    config: Any
    if shape.attention_bias:  # the Qwen2 family
        config = Qwen2Config(**common, rope_theta=1_000_000.0, use_sliding_window=False)  # type: ignore[no-untyped-call]
        cls: Any = Qwen2ForCausalLM
    else:
        config = LlamaConfig(**common, rope_theta=500_000.0, head_dim=shape.dim_head)  # type: ignore[no-untyped-call]
        cls = LlamaForCausalLM
    torch.manual_seed(seed)
    dtype = torch.float32 if shape.name.startswith("tiny") else torch.bfloat16
    # On the CPU, always: a CUDA context and cached blocks in this process would stay for the whole
    # benchmark, taking GPU memory from the runs and from the fast profile's free-memory check.
    device = "cpu"
    previous = torch.get_default_dtype()
    torch.set_default_dtype(dtype)
    try:
        with torch.device(device):
            model = cls(config)
    finally:
        torch.set_default_dtype(previous)
    model.save_pretrained(out, safe_serialization=True)
    return int(sum(p.numel() for p in model.parameters()))


# ---------------------------------------------------------------------------------------------- runs


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


def bench_knobs(spec: BenchSpec, data: str) -> dict[str, Any]:
    """Settings every variant gets alike, passed as ordinary `-- key=value` overrides."""
    knobs: dict[str, Any] = {
        "max_steps": spec.steps,
        "logging_steps": 1,
        "save_strategy": "no",  # saving a random model measures the disk, not training
        "report_to": "none",
        # Preprocessing is outside the measured window; more workers than cores only slows it.
        "preprocessing_num_workers": max(1, min(16, os.cpu_count() or 1)),
    }
    if spec.scale > 1:
        knobs["cutoff_len"] = RAW_RECIPE[(_raw_family(spec.preset_name), data)]["cutoff_len"] // spec.scale
    return knobs


def measurement_knobs(run_dir: Path) -> dict[str, Any]:
    """What makes a run measurable; set on the final config, since oda-sft reserves tokenized_path."""
    return {
        # Counts attention_mask: exact real tokens, except the padding of packed rows (corrected below).
        "include_num_input_tokens_seen": "non_padding",
        # Kept to count real tokens and attention spans per row, exactly as LLaMA-Factory built them.
        "tokenized_path": str(run_dir / "tokenized"),
    }


def raw_config(spec: BenchSpec, data: str, fixture: Path, run_dir: Path, cpu: bool) -> dict[str, Any]:
    family = _raw_family(spec.preset_name)
    config: dict[str, Any] = {
        "model_name_or_path": str(fixture / "model"),
        **_RAW_SHARED,
        # Upstream points at a LLaMA-Factory checkout's examples/; the file content is the same.
        "deepspeed": str(train_config_dir() / _DEEPSPEED.get(family, "ds_z2_config.json")),
        "dataset": data,
        "dataset_dir": str(fixture / "data"),
        "output_dir": str(run_dir / "output"),
        **RAW_RECIPE[(family, data)],
    }
    if cpu:
        for key, value in CPU_FALLBACK.items():
            if value is None:
                config.pop(key, None)
            else:
                config[key] = value
    config.update(bench_knobs(spec, data))
    return config


def oda_argv(spec: BenchSpec, data: str, variant: str, fixture: Path, run_dir: Path) -> list[str]:
    """`oda-sft train --dry-run` for this variant: it prints the exact config oda-sft would train."""
    argv = [sys.executable, "-m", "oda_sft", "train", "--model", spec.preset_name]
    argv += ["--model-path", str(fixture / "model"), "--dataset", data, "--dataset-dir", str(fixture / "data")]
    argv += ["--mode", "long" if data == "long" else "standard", "--seed", str(spec.seed)]
    argv += ["--output-root", str(run_dir / "output"), "--profile", variant, "--dry-run"]
    if spec.nproc_per_node:
        argv += ["--nproc-per-node", str(spec.nproc_per_node)]
    return [*argv, "--", *(f"{k}={v}" for k, v in bench_knobs(spec, data).items())]


RUN_ENV = {
    "RECORD_VRAM": "1",  # LLaMA-Factory logs torch's peak allocated/reserved GiB per step
    "HF_HUB_OFFLINE": "1",
    "HF_DATASETS_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
    "WANDB_MODE": "disabled",
    "PYTHONUNBUFFERED": "1",
}


def oda_config(spec: BenchSpec, data: str, variant: str, fixture: Path, run_dir: Path) -> dict[str, Any]:
    """The config `oda-sft train --profile VARIANT` renders, with its notes kept beside it."""
    done = subproc.capture(oda_argv(spec, data, variant, fixture, run_dir), timeout_s=300)
    if done is None or done.returncode != 0:
        why = done.stderr.strip().splitlines()[-1] if done and done.stderr.strip() else "did not finish"
        raise BenchError(f"oda-sft train --dry-run for {data}/{variant} failed: {why}")
    atomic_write_text(run_dir / "oda_sft_notes.txt", done.stderr)
    config = yaml.safe_load(done.stdout)
    if not isinstance(config, dict):
        raise BenchError(f"oda-sft train --dry-run for {data}/{variant} printed no config")
    return config


def run_variant(spec: BenchSpec, data: str, variant: str, fixture: Path, gpu_count: int) -> RunResult:
    """Train one variant. oda-sft's variants train exactly what `oda-sft train` renders, launched
    as oda-sft launches it; tokens/s is measured inside the trainer, so the wrapper process itself
    cannot show in it, only what it does to the config."""
    run_dir = spec.out_dir / "runs" / fixture_key(spec) / data / variant
    if run_dir.exists():
        run_dir.rename(run_dir.with_name(f"{variant}.old-{datetime.now(UTC):%Y%m%dT%H%M%S%f}"))
    run_dir.mkdir(parents=True)
    if variant == "raw":
        config = raw_config(spec, data, fixture, run_dir, cpu=gpu_count == 0)
    else:
        config = oda_config(spec, data, variant, fixture, run_dir)
    config.update(measurement_knobs(run_dir))
    config_path = run_dir / "config.yaml"
    atomic_write_text(config_path, dump_yaml(config))
    # The launcher decision oda-sft makes, for every variant, so only the config differs.
    options = launch.LaunchOptions(spec.nproc_per_node)
    argv, launch_env = launch.build_command(config_path, options, gpu_count, deepspeed=bool(config.get("deepspeed")))
    log_path = run_dir / "train.log"
    t0 = time.time()
    rc = subproc.run_logged(argv, {**RUN_ENV, **launch_env}, log_path, spec.run_timeout_s)
    result = RunResult(data, variant, rc, round(time.time() - t0, 1), str(log_path), config=config)
    _read_metrics(result, Path(config["output_dir"]) / "trainer_log.jsonl", run_dir / "tokenized", spec)
    return result


def load_trainer_log(path: Path) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    if not path.is_file():
        return rows
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            row = json.loads(line)
        except ValueError:
            continue
        if isinstance(row, dict):
            rows.append(row)
    return rows


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


def _read_metrics(result: RunResult, trainer_log: Path, tokenized: Path, spec: BenchSpec) -> None:
    rows = load_trainer_log(trainer_log)
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
    world = launch.LaunchOptions(spec.nproc_per_node).nproc_per_node or max(visible_gpu_count(), 1)
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


# ---------------------------------------------------------------------------------------------- report


def compare(results: list[RunResult], device: str, peak: float | None, world: int) -> list[dict[str, Any]]:
    """Fill in the comparisons to raw, and return the checks against the issue's targets."""
    checks: list[dict[str, Any]] = []
    tol = LOSS_TOL[device]
    for r in results:
        if r.tokens_per_s and r.flops_per_token and peak:
            r.mfu = round(r.tokens_per_s * r.flops_per_token / (peak * world), 4)
    by_key = {(r.data, r.variant): r for r in results}
    for r in results:
        raw = by_key.get((r.data, "raw"))
        if raw is None or r.variant == "raw":
            continue
        if r.tokens_per_s and raw.tokens_per_s:
            r.speedup_vs_raw = round(r.tokens_per_s / raw.tokens_per_s, 3)
        common = dict(zip(raw.steps, raw.losses, strict=True))
        diffs = [abs(loss - common[s]) for s, loss in zip(r.steps, r.losses, strict=True) if s in common]
        if diffs and len(diffs) == len(raw.steps) == len(r.steps):
            r.max_abs_loss_diff_vs_raw = round(max(diffs), 6)
        checks.append(
            _check(
                f"{r.data}/{r.variant}: same loss as raw at every step",
                r.max_abs_loss_diff_vs_raw,
                tol,
                higher_is_better=False,
            )
        )
        if r.variant == "default":
            checks.append(_check(f"{r.data}/default: tokens/s vs raw", r.speedup_vs_raw, TARGETS["default_vs_raw"]))
        if r.variant == "fast" and r.data == "long":
            checks.append(_check("long/fast: tokens/s vs raw", r.speedup_vs_raw, TARGETS["fast_vs_raw_long"]))
    for r in results:
        if r.memory_rel_error is not None:
            checks.append(
                _check(
                    f"{r.data}/{r.variant}: memory model vs measured peak",
                    abs(r.memory_rel_error),
                    TARGETS["memory_rel_error"],
                    higher_is_better=False,
                )
            )
    return checks


def _check(name: str, value: float | None, threshold: float, higher_is_better: bool = True) -> dict[str, Any]:
    passed = None if value is None else (value >= threshold if higher_is_better else value <= threshold)
    return {"check": name, "value": value, "threshold": threshold, "passed": passed}


def format_table(results: list[RunResult]) -> str:
    headers = ["data", "variant", "rc", "tok/s (real)", "x raw", "MFU", "peak GiB", "model GiB", "max|dloss|", "wall s"]

    def cell(v: float | int | None, fmt: str) -> str:
        return "-" if v is None else format(v, fmt)

    rows = [
        [
            r.data,
            r.variant,
            str(r.rc),
            cell(r.tokens_per_s, ",.0f"),
            cell(r.speedup_vs_raw, ".3f"),
            cell(r.mfu, ".1%"),
            cell(r.peak_allocated_gib, ".2f"),
            cell(r.predicted_peak_gib, ".2f"),
            cell(r.max_abs_loss_diff_vs_raw, ".4f"),
            cell(r.wall_s, ".0f"),
        ]
        for r in results
    ]
    widths = [max(len(h), *(len(row[i]) for row in rows)) for i, h in enumerate(headers)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)).rstrip()]
    lines += ["  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in rows]
    return "\n".join(lines)


def run_bench(spec: BenchSpec, log: Callable[[str], None]) -> dict[str, Any]:
    """Build the fixture, run every variant on every dataset, write bench.json and bench.txt."""
    gpu_count = visible_gpu_count()
    spec.validate(gpu_count)
    world = spec.nproc_per_node or max(gpu_count, 1)
    gpu = gpu_memory() if gpu_count else None
    device = "gpu" if gpu_count else "cpu"
    peak = peak_flops(gpu.name if gpu else None, spec.peak_tflops)
    spec.out_dir.mkdir(parents=True, exist_ok=True)
    fixture = build_fixture(spec, world, log)
    results: list[RunResult] = []
    for data in spec.datasets:
        for variant in spec.variants:
            log(f"run {data}/{variant} ...")
            r = run_variant(spec, data, variant, fixture, gpu_count)
            results.append(r)
            log(f"run {data}/{variant}: rc={r.rc} {r.wall_s:.0f}s tokens/s={r.tokens_per_s} log={r.log}")
    checks = compare(results, device, peak, world)
    report = {
        "oda_sft_version": __version__,
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "host": {
            "node": platform.node(),
            "cpus": os.cpu_count(),
            "device": device,
            "gpu": gpu.name if gpu else None,
            "gpus": gpu_count,
            "world_size": world,
            "peak_bf16_flops": peak,
        },
        "spec": {
            **{k: (str(v) if isinstance(v, Path) else v) for k, v in asdict(spec).items()},
            "preset": spec.preset_name,
        },
        "fixture": json.loads((fixture / "fixture.json").read_text(encoding="utf-8")),
        "loss_tolerance": LOSS_TOL[device],
        "runs": [asdict(r) for r in results],
        "checks": checks,
    }
    table = format_table(results)
    atomic_write_json(spec.out_dir / "bench.json", report)
    atomic_write_text(spec.out_dir / "bench.txt", table + "\n")
    report["table"] = table
    failed = [f"{r.data}/{r.variant} (rc {r.rc}, log {r.log})" for r in results if r.rc != 0 or not r.losses]
    if failed:
        raise BenchError(f"benchmark runs failed: {', '.join(failed)}; results so far in {spec.out_dir / 'bench.json'}")
    return report
