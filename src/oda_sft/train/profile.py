"""Training profiles: `default` is the recipe exactly; `fast` changes only how fast the same math runs.

`fast` may:
- turn gradient checkpointing off (`disable_gradient_checkpointing: true`) when the memory model
  says the activations fit. Recomputing a layer's forward in backward gives the same values,
  so this changes speed and memory only (measured: +22-23% tokens/s, losses equal to 4 decimals).
- pin the attention kernel: flash-attn 2 where it is installed and gives the same attention
  as the recipe, else sdpa (what LLaMA-Factory's `auto` resolves to on transformers 4.5x).

It never touches data order, batch, learning rate, precision, sequence length or the loss.
"""

from __future__ import annotations

import importlib.util
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from oda_sft.catalog import ModelPreset
from oda_sft.shapes import ModelShape, shape_from_hf_config
from oda_sft.train.hardware import DeviceMemory, gpu_memory, host_memory
from oda_sft.train.memory import GIB, MemoryEstimate, estimate, train_shape_from_config
from oda_sft.train.request import LaunchOptions, Profile

# The keys `fast` may set; anything else in a config diff between profiles is a bug.
FAST_KEYS = ("disable_gradient_checkpointing", "flash_attn")


@dataclass(frozen=True)
class ProfileResult:
    config: dict[str, Any]
    notes: list[str] = field(default_factory=list)
    memory: MemoryEstimate | None = None  # with checkpointing off, when it was judged


def model_shape(preset: ModelPreset, model_name_or_path: str) -> ModelShape | None:
    """The shape of the model a config trains: a local checkpoint's config.json, else the preset's."""
    cfg_file = Path(model_name_or_path).expanduser() / "config.json"
    if cfg_file.is_file():
        try:
            return shape_from_hf_config(Path(model_name_or_path).name, json.loads(cfg_file.read_text(encoding="utf-8")))
        except (ValueError, KeyError, TypeError):
            return None
    return preset.shape


def zero_stage(config: dict[str, Any]) -> int | None:
    """The DeepSpeed ZeRO stage the config uses: 0 without DeepSpeed, None when unreadable."""
    path = config.get("deepspeed")
    if not path:
        return 0
    try:
        ds = json.loads(Path(str(path)).read_text(encoding="utf-8"))
        return int(ds.get("zero_optimization", {}).get("stage", 0))
    except (OSError, ValueError, TypeError, AttributeError):
        return None


def flash_attn_installed() -> bool:
    # find_spec looks for the package without importing it (importing it loads CUDA).
    return importlib.util.find_spec("flash_attn") is not None


def choose_attention(config: dict[str, Any], gpu_count: int, fa2_installed: bool) -> tuple[str, str]:
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
) -> ProfileResult:
    """The config under `profile`, and notes saying what changed and why. Never mutates `config`.

    Keys the user set with `-- key=value` win over the profile.
    """
    if profile == "default":
        return ProfileResult(config)
    if profile != "fast":
        raise ValueError(f"unknown profile {profile!r}")
    out = dict(config)
    notes: list[str] = []

    attn, why = choose_attention(config, gpu_count, flash_attn_installed() if fa2_installed is None else fa2_installed)
    if "flash_attn" in user_keys:
        notes.append(f"profile fast: flash_attn={config.get('flash_attn')!r} kept from your override")
    else:
        out["flash_attn"] = attn
        notes.append(f"profile fast: attention {attn} ({why})")

    memory: MemoryEstimate | None = None
    if "disable_gradient_checkpointing" in user_keys:
        notes.append(
            "profile fast: disable_gradient_checkpointing="
            f"{config.get('disable_gradient_checkpointing')!r} kept from your override"
        )
    else:
        keep_reason, memory, device = _checkpointing_verdict(config, preset, gpu_count, launch, cpu_run, probe)
        if keep_reason or memory is None or device is None:
            notes.append(f"profile fast: gradient checkpointing stays on: {keep_reason}")
        else:
            out["disable_gradient_checkpointing"] = True
            notes.append(
                f"profile fast: gradient checkpointing off: a rank needs about {memory.required / GIB:.1f} GiB "
                f"({memory.describe()}); {device.describe()}"
            )
    return ProfileResult(out, notes, memory)


def _checkpointing_verdict(
    config: dict[str, Any],
    preset: ModelPreset,
    gpu_count: int,
    launch: LaunchOptions,
    cpu_run: bool,
    probe: Callable[[], DeviceMemory | None] | None,
) -> tuple[str, MemoryEstimate | None, DeviceMemory | None]:
    """('', estimate, device) when checkpointing can go; (why not, estimate, device) otherwise."""
    shape = model_shape(preset, str(config.get("model_name_or_path", "")))
    if shape is None:
        why = "the model's shape is unknown (no config.json at model_name_or_path), so its memory cannot be judged"
        return why, None, None
    stage = zero_stage(config)
    if stage is None:
        return f"cannot read the DeepSpeed config {config.get('deepspeed')}", None, None
    world = launch.world_size(gpu_count)
    memory = estimate(shape, train_shape_from_config(config, stage, world, gradient_checkpointing=False))
    if probe is None:
        probe = host_memory if cpu_run else gpu_memory
    device = probe()
    if device is None:
        where = "host" if cpu_run else "GPU"
        return (
            f"{where} memory is unknown (no GPU visible here, or nvidia-smi failed); needs "
            f"{memory.required / GIB:.1f} GiB free per device: set ODA_SFT_GPU_FREE_MIB to judge it",
            memory,
            None,
        )
    if not memory.fits(device.free_bytes):
        return (
            f"without it a rank needs about {memory.required / GIB:.1f} GiB ({memory.describe()}), "
            f"more than {device.describe()}",
            memory,
            device,
        )
    return "", memory, device
