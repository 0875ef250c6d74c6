"""Training profiles: `default` is the recipe exactly; `fast` changes only how fast the same math runs.

`fast` may:
- split the standard config's padded micro-batch (4 samples padded to the longest) into smaller
  ones with proportionally more gradient accumulation (1 x 16 instead of 4 x 4), when that provably
  puts the same samples in every optimizer step (see `split_micro_batch`). Each micro-batch is then
  one sample: no padding is computed, and activations shrink 4x. The loss is normalised by the
  number of label tokens of the whole accumulation window (transformers >= 4.46 `num_items_in_batch`,
  with DeepSpeed told not to divide by the accumulation steps again), so the sum is the same sum.
- turn gradient checkpointing off (`disable_gradient_checkpointing: true`) when the memory model
  says the activations fit. Recomputing a layer's forward in backward gives the same values,
  so this changes speed and memory only (measured: +22-23% tokens/s, losses equal to 4 decimals).
- on more than one rank with ZeRO-2, use `ds_z2_fast_config.json`: the recipe's DeepSpeed config
  with `overlap_comm: true`. ZeRO-2 reduces the gradients after every micro-batch; overlapping that
  reduction with the rest of backward hides it. The buckets (5e8 elements) and the partitioning
  are unchanged, so the same tensors are summed in the same groups.
- pin the attention kernel: flash-attn 2 where it is installed and gives the same attention
  as the recipe, else sdpa (what LLaMA-Factory's `auto` resolves to on transformers 4.5x).

It never touches data order, the samples of a step, learning rate, precision, sequence length or the loss.

A run's kept config is compared with a new plan key by key (train/run.py). Only FAST_KEYS are
ignored there: they change neither the math nor resuming. The micro-batch split is not among them:
a checkpoint saved under one split cannot resume under another (the trainer counts micro-batches).
"""

from __future__ import annotations

import importlib.util
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from oda_sft.data.registry.dataset_dir import stored_analyses
from oda_sft.presets import ModelPreset
from oda_sft.shapes import ModelShape, shape_from_hf_config
from oda_sft.train.memory import GIB, MemoryEstimate, estimate, train_shape_from_config
from oda_sft.train.request import LaunchOptions, Profile
from oda_sft.util.hardware import DeviceMemory, gpu_memory, host_memory

# Keys `fast` sets for speed alone: a run that differs from its kept config only in these is the same run.
FAST_KEYS = ("disable_gradient_checkpointing", "flash_attn")
# Keys `fast` sets that change how a step is cut into micro-batches: same math, but not the same run
# for resuming, so train/run.py must compare them.
BATCH_KEYS = ("per_device_train_batch_size", "gradient_accumulation_steps")
# Every key `fast` may set; anything else in a config diff between profiles is a bug.
PROFILE_KEYS = (*FAST_KEYS, *BATCH_KEYS, "deepspeed")
# The partial-checkpointing patch's setting (train/patches/partial_checkpointing.py).
CHECKPOINT_LAYERS_ENV = "ODA_SFT_CHECKPOINT_LAYERS"
# Whether `oda-sft train` can apply a decision's trainer patches. It cannot yet: the launcher does
# not pass them (see train/patches/__init__.py for what it must set). The benchmark applies them
# itself. Until then `train --profile fast` and `estimate` keep checkpointing all-or-none.
PARTIAL_CHECKPOINTING_IN_TRAIN = False
# The DeepSpeed config `fast` uses instead of the recipe's, on more than one rank.
FAST_DEEPSPEED = {"ds_z2_config.json": "ds_z2_fast_config.json"}


@dataclass(frozen=True)
class FastDecision:
    """What `fast` does for one run: the settings, and the notes saying why."""

    micro_batch: int
    accumulation: int
    checkpointing: bool
    overlap_comm: bool
    attention: str | None  # None: leave the config's
    memory: MemoryEstimate | None  # the estimate the checkpointing verdict rests on
    notes: tuple[str, ...] = ()
    kept_layers: int = 0  # with checkpointing on: decoder layers that keep their activations
    num_layers: int = 0

    @property
    def trainer_patches(self) -> dict[str, dict[str, str]]:
        """The trainer-side patches this decision needs (train/patches), with their settings."""
        if self.checkpointing and self.kept_layers > 0:
            return {"partial_checkpointing": {CHECKPOINT_LAYERS_ENV: str(self.num_layers - self.kept_layers)}}
        return {}

    def describe_checkpointing(self) -> str:
        if not self.checkpointing:
            return "off"
        if self.kept_layers > 0:
            return f"{self.num_layers - self.kept_layers} of {self.num_layers} layers"
        return f"all {self.num_layers} layers" if self.num_layers else "on"

    def for_layers(self, layers: int) -> FastDecision:
        """This decision on a model cut to `layers` decoder layers (the bench's proxy): the same
        settings, and the same share of layers keeping their activations."""
        kept = self.kept_layers
        if kept and self.num_layers:
            kept = min(layers - 1, max(1, round(kept * layers / self.num_layers)))
        return replace(self, kept_layers=kept, num_layers=layers)


@dataclass(frozen=True)
class ProfileResult:
    config: dict[str, Any]
    notes: list[str] = field(default_factory=list)
    memory: MemoryEstimate | None = None  # the estimate the checkpointing verdict rests on
    decision: FastDecision | None = None


def model_shape(preset: ModelPreset, model_name_or_path: str) -> ModelShape | None:
    """The shape of the model a config trains: a local checkpoint's config.json, else the preset's."""
    cfg_file = Path(model_name_or_path).expanduser() / "config.json"
    if cfg_file.is_file():
        try:
            return shape_from_hf_config(Path(model_name_or_path).name, json.loads(cfg_file.read_text(encoding="utf-8")))
        except (ValueError, KeyError, TypeError):
            return None
    return preset.shape


def _deepspeed_json(config: Mapping[str, Any]) -> dict[str, Any] | None:
    path = config.get("deepspeed")
    if not path:
        return {}
    try:
        data = json.loads(Path(str(path)).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def zero_stage(config: Mapping[str, Any]) -> int | None:
    """The DeepSpeed ZeRO stage the config uses: 0 without DeepSpeed, None when unreadable."""
    ds = _deepspeed_json(config)
    if ds is None:
        return None
    try:
        return int(ds.get("zero_optimization", {}).get("stage", 0))
    except (ValueError, TypeError, AttributeError):
        return None


def overlap_comm(config: Mapping[str, Any]) -> bool:
    ds = _deepspeed_json(config) or {}
    zero = ds.get("zero_optimization")
    return bool(zero.get("overlap_comm")) if isinstance(zero, dict) else False


def recipe_equivalent(config: Mapping[str, Any]) -> dict[str, Any]:
    """The config with `fast`'s DeepSpeed file named by the recipe's: what a run comparison sees."""
    out = dict(config)
    path = out.get("deepspeed")
    if isinstance(path, str):
        recipe = {v: k for k, v in FAST_DEEPSPEED.items()}.get(Path(path).name)
        if recipe is not None:
            out["deepspeed"] = str(Path(path).with_name(recipe))
    return out


def flash_attn_installed() -> bool:
    # find_spec looks for the package without importing it (importing it loads CUDA).
    return importlib.util.find_spec("flash_attn") is not None


def choose_attention(config: Mapping[str, Any], gpu_count: int, fa2_installed: bool) -> tuple[str, str]:
    """(flash_attn value, why)."""
    crosses_samples = bool(config.get("packing")) and not bool(config.get("neat_packing"))
    if fa2_installed and gpu_count > 0 and not crosses_samples:
        return "fa2", "flash-attn 2 is installed; unpadded FA2 attends exactly as sdpa with a padding mask"
    if fa2_installed and gpu_count > 0:
        # transformers drops an all-ones mask for FA2 and then splits packed rows at the reset
        # position_ids: samples would stop attending to each other, which the recipe's sdpa does.
        return "sdpa", "flash-attn 2 is installed but not used: on packed rows it would stop cross-sample attention"
    if gpu_count > 0:
        return "sdpa", "flash-attn 2 is not installed"
    return "sdpa", "no GPU, and flash-attn 2 needs one"


def split_micro_batch(micro_batch: int, accumulation: int, world: int, samples: int | None) -> tuple[int, str]:
    """The smallest micro-batch m dividing `micro_batch` such that every optimizer step trains the
    same samples as the recipe, with the reason; `micro_batch` itself when no smaller one is exact.

    Steps are cut from one global stream of samples in blocks of micro_batch x accumulation x world,
    whatever the split. On one rank the stream is the sampler's permutation and an epoch's last step
    takes what is left, the same for every split. On W > 1 ranks accelerate (even_batches) pads the
    stream with its own first samples up to a multiple of m x W; the last step of each epoch is the
    same only when the padding is: (-N mod micro_batch*W) < m*W, with N the samples per epoch.
    """
    if micro_batch <= 1:
        return micro_batch, "the micro-batch is already one sample"
    candidates = [m for m in range(1, micro_batch) if micro_batch % m == 0]
    if world == 1:
        return 1, "one rank: each step takes the same consecutive samples of the shuffled order"
    if samples is None:
        return micro_batch, (
            f"on {world} ranks the last step of an epoch depends on the sample count, which is unknown "
            "(register the data with `oda-sft data add`, or measure it once with `oda-sft data inspect`)"
        )
    pad = -samples % (micro_batch * world)
    for m in candidates:
        if pad < m * world:
            return m, (
                f"{samples:,} samples on {world} ranks: every epoch's last step gets the same {pad} repeated "
                f"samples with micro-batches of {m} as with {micro_batch}"
            )
    return micro_batch, (
        f"{samples:,} samples on {world} ranks: a smaller micro-batch would change the {pad} samples "
        "accelerate repeats to fill the last step of an epoch"
    )


def decide_fast(
    config: Mapping[str, Any],
    shape: ModelShape | None,
    *,
    world: int,
    gpu_count: int,
    device: Callable[[], DeviceMemory | None],
    samples: int | None = None,
    user_keys: frozenset[str] = frozenset(),
    fa2_installed: bool = False,
    where: str = "GPU",
    allow_partial: bool = False,
) -> FastDecision:
    """What `fast` does for `config` on `world` ranks whose devices `device()` describes.

    Pure apart from calling `device` (an nvidia-smi query, /proc/meminfo, or a named card).
    allow_partial: when checkpointing cannot go, keep as many layers' activations as fit
    (needs the partial_checkpointing trainer patch)."""
    notes: list[str] = []
    micro = int(config.get("per_device_train_batch_size", 1))
    accum = int(config.get("gradient_accumulation_steps", 1))
    stage = zero_stage(config)

    attention: str | None = None
    if "flash_attn" in user_keys:
        notes.append(f"flash_attn={config.get('flash_attn')!r} kept from your override")
    else:
        attention, why = choose_attention(config, gpu_count, fa2_installed)
        notes.append(f"attention {attention} ({why})")

    if config.get("packing") or micro <= 1:
        pass  # packed rows carry no padding to remove; one sample per micro-batch cannot be split
    elif set(BATCH_KEYS) & user_keys:
        notes.append("micro-batch and accumulation kept from your override")
    else:
        new_micro, why = split_micro_batch(micro, accum, world, samples)
        if new_micro < micro:
            factor = micro // new_micro
            padding = "no padding computed" if new_micro == 1 else f"{new_micro} samples padded together, not {micro}"
            notes.append(
                f"micro-batch {new_micro} x accumulation {accum * factor} instead of {micro} x {accum} "
                f"({padding}; the same samples in every step: {why})"
            )
            micro, accum = new_micro, accum * factor
        else:
            notes.append(f"micro-batch stays {micro} x {accum}: {why}")

    overlap = overlap_comm(config)
    if (
        world > 1
        and stage == 2
        and "deepspeed" not in user_keys
        and Path(str(config.get("deepspeed", ""))).name in FAST_DEEPSPEED
    ):
        overlap = True
        notes.append(
            f"DeepSpeed ZeRO-2 overlap_comm on ({FAST_DEEPSPEED['ds_z2_config.json']}): the gradient reduction "
            f"after each of the {accum} micro-batches overlaps backward; same buckets, same sums"
        )

    checkpointing = not bool(config.get("disable_gradient_checkpointing", False))
    memory: MemoryEstimate | None = None
    kept = 0
    if "disable_gradient_checkpointing" in user_keys:
        notes.append(
            f"disable_gradient_checkpointing={config.get('disable_gradient_checkpointing')!r} kept from your override"
        )
    elif shape is None:
        notes.append(
            "gradient checkpointing stays on: the model's shape is unknown (no config.json at "
            "model_name_or_path), so its memory cannot be judged"
        )
    elif stage is None:
        notes.append(f"gradient checkpointing stays on: cannot read the DeepSpeed config {config.get('deepspeed')}")
    else:
        planned = {**config, "per_device_train_batch_size": micro}
        memory = estimate(
            shape,
            train_shape_from_config(planned, stage, world, gradient_checkpointing=False, overlap_comm=overlap),
        )
        dev = device()
        if dev is None:
            notes.append(
                f"gradient checkpointing stays on: {where} memory is unknown (no GPU visible here, or nvidia-smi "
                f"failed); needs {memory.required / GIB:.1f} GiB free per device: set ODA_SFT_GPU_FREE_MIB to judge it"
            )
        elif not memory.fits(dev.free_bytes):
            notes.append(
                f"gradient checkpointing stays on: without it a rank needs about {memory.required / GIB:.1f} GiB "
                f"({memory.describe()}), more than {dev.describe()}"
            )
        else:
            checkpointing = False
            notes.append(
                f"gradient checkpointing off: a rank needs about {memory.required / GIB:.1f} GiB "
                f"({memory.describe()}); {dev.describe()}"
            )
        if checkpointing and allow_partial and dev is not None:
            kept, partial = _most_layers_kept(shape, planned, stage, world, overlap, dev.free_bytes)
            if kept > 0 and partial is not None:
                memory = partial
                notes.append(
                    f"partial checkpointing: {shape.num_layers - kept} of {shape.num_layers} layers checkpointed, "
                    f"{kept} keep their activations: a rank needs about {partial.required / GIB:.1f} GiB "
                    f"({partial.describe()}); {dev.describe()}"
                )
    layers = shape.num_layers if shape is not None else 0
    return FastDecision(micro, accum, checkpointing, overlap, attention, memory, tuple(notes), kept, layers)


def _most_layers_kept(
    shape: ModelShape, config: Mapping[str, Any], stage: int, world: int, overlap: bool, free: int
) -> tuple[int, MemoryEstimate | None]:
    """The most decoder layers that can keep their activations (the rest checkpointed) and still fit."""
    best: tuple[int, MemoryEstimate | None] = (0, None)
    for kept in range(1, shape.num_layers):
        train = train_shape_from_config(
            dict(config), stage, world, gradient_checkpointing=True, kept_layers=kept, overlap_comm=overlap
        )
        est = estimate(shape, train)
        if not est.fits(free):
            break
        best = (kept, est)
    return best


def apply_decision(config: Mapping[str, Any], decision: FastDecision) -> dict[str, Any]:
    """`config` with a FastDecision's settings; keys it leaves alone stay as they were."""
    out = dict(config)
    if decision.attention is not None:
        out["flash_attn"] = decision.attention
    if int(out.get("per_device_train_batch_size", 1)) != decision.micro_batch:
        out["per_device_train_batch_size"] = decision.micro_batch
        out["gradient_accumulation_steps"] = decision.accumulation
    if not decision.checkpointing and not out.get("disable_gradient_checkpointing"):
        out["disable_gradient_checkpointing"] = True
    if decision.overlap_comm and not overlap_comm(out):
        path = Path(str(out["deepspeed"]))
        out["deepspeed"] = str(path.with_name(FAST_DEEPSPEED[path.name]))
    return out


def apply_profile(
    profile: Profile,
    config: dict[str, Any],
    *,
    preset: ModelPreset,
    gpu_count: int,
    launch: LaunchOptions,
    user_keys: frozenset[str] = frozenset(),
    cpu_run: bool = False,
    probe: Callable[[], DeviceMemory | None] | None = None,
    fa2_installed: bool | None = None,
    samples: int | None = None,
) -> ProfileResult:
    """The config under `profile`, and notes saying what changed and why. Never mutates `config`.

    Keys the user set with `-- key=value` win over the profile. `samples` is the dataset's record
    count when known (it decides whether the micro-batch can be split on more than one rank).
    """
    if profile == "default":
        return ProfileResult(config)
    if profile != "fast":
        raise ValueError(f"unknown profile {profile!r}")
    if probe is None:
        probe = host_memory if cpu_run else gpu_memory
    decision = decide_fast(
        config,
        model_shape(preset, str(config.get("model_name_or_path", ""))),
        world=launch.world_size(gpu_count),
        gpu_count=gpu_count,
        device=probe,
        samples=samples,
        user_keys=user_keys,
        fa2_installed=flash_attn_installed() if fa2_installed is None else fa2_installed,
        where="host" if cpu_run else "GPU",
        allow_partial=PARTIAL_CHECKPOINTING_IN_TRAIN,
    )
    notes = [f"profile fast: {n}" for n in decision.notes]
    return ProfileResult(apply_decision(config, decision), notes, decision.memory, decision)


def known_sample_count(meta: Mapping[str, Any], sha256: str | None) -> int | None:
    """A dataset's record count, as `data add` or a length analysis recorded it for this very file."""
    if not sha256:
        return None
    if meta.get("sha256") == sha256 and isinstance(meta.get("records"), int):
        return int(meta["records"])
    counted = [a.count for a in stored_analyses(meta) if a.sha256 == sha256 and a.count is not None]
    return counted[0] if counted else None
