"""`--profile`: default is the recipe exactly; fast changes only math-neutral switches, and proves it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from oda_sft.presets import PRESETS
from oda_sft.train.memory import GIB
from oda_sft.train.profile import FAST_KEYS, apply_profile, choose_attention
from oda_sft.train.request import LaunchOptions
from oda_sft.util import hardware as gpuinfo
from oda_sft.util import subproc
from oda_sft.util.hardware import DeviceMemory

from conftest import Cli
from hf_configs import QWEN25_05B

REPO = Path(__file__).resolve().parents[1]


def dry_run(cli: Cli, data_dir: Path, *args: str) -> tuple[dict[str, object], str]:
    r = cli("train", "--dataset", "oda_demo", "--dataset-dir", str(data_dir), "--dry-run", *args)
    assert r.code == 0, r.err
    return yaml.safe_load(r.out), r.err


@pytest.mark.parametrize(("model", "mode"), [(p.name, m) for p in PRESETS.values() for m in p.modes])
def test_default_profile_is_the_recipe_unchanged(cli: Cli, data_dir: Path, model: str, mode: str) -> None:
    implicit, _ = dry_run(cli, data_dir, "--model", model, "--mode", mode)
    explicit, err = dry_run(cli, data_dir, "--model", model, "--mode", mode, "--profile", "default")
    assert explicit == implicit
    assert not set(FAST_KEYS) & set(explicit)
    assert "profile" not in err


def test_fast_profile_changes_only_math_neutral_keys(cli: Cli, data_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ODA_SFT_GPU_COUNT", "1")
    monkeypatch.setenv("ODA_SFT_GPU_FREE_MIB", str(80 * 1024))
    default, _ = dry_run(cli, data_dir, "--model", "qwen", "--mode", "long")
    fast, err = dry_run(cli, data_dir, "--model", "qwen", "--mode", "long", "--profile", "fast")
    changed = {k for k in set(default) | set(fast) if default.get(k) != fast.get(k)}
    assert changed <= set(FAST_KEYS) and fast["flash_attn"] == "sdpa"
    # A 7B model at 32k tokens does not fit 80 GiB without checkpointing: it stays on, and we say why.
    assert "disable_gradient_checkpointing" not in fast
    assert "gradient checkpointing stays on: without it a rank needs about" in err and "80.0 GiB free" in err


def test_fast_turns_checkpointing_off_on_the_cpu_tiny_run(cli: Cli, data_dir: Path) -> None:
    fast, err = dry_run(cli, data_dir, "--model", "tiny", "--profile", "fast")
    assert fast["disable_gradient_checkpointing"] is True and fast["flash_attn"] == "sdpa"
    assert "gradient checkpointing off" in err and "host RAM" in err


def test_an_explicit_override_wins_over_the_profile(cli: Cli, data_dir: Path) -> None:
    fast, err = dry_run(
        cli, data_dir, "--model", "tiny", "--profile", "fast", "--", "disable_gradient_checkpointing=false"
    )
    assert fast["disable_gradient_checkpointing"] is False
    assert "kept from your override" in err


def test_an_unknown_profile_is_a_usage_error(cli: Cli, data_dir: Path) -> None:
    r = cli("train", "--model", "tiny", "--dataset", "oda_demo", "--dataset-dir", str(data_dir), "--profile", "turbo")
    assert r.code == 2


def _tiny_config(tmp_path: Path) -> dict[str, object]:
    model = tmp_path / "model"
    model.mkdir()
    (model / "config.json").write_text(json.dumps(QWEN25_05B))
    return {
        "model_name_or_path": str(model),
        "cutoff_len": 32768,
        "packing": True,
        "per_device_train_batch_size": 1,
        "bf16": True,
        "use_liger_kernel": True,
    }


def _gpu(free_gib: float) -> DeviceMemory:
    return DeviceMemory("gpu", "NVIDIA H100 80GB HBM3", int(free_gib * GIB), 80 * GIB, "test")


def test_fast_decides_by_free_memory(tmp_path: Path) -> None:
    config = _tiny_config(tmp_path)  # the 0.5B shape, long config, no DeepSpeed file: ZeRO stage 0
    kwargs = {"preset": PRESETS["qwen"], "gpu_count": 1, "launch": LaunchOptions(), "fa2_installed": False}
    roomy = apply_profile("fast", config, probe=lambda: _gpu(79), **kwargs)  # type: ignore[arg-type]
    tight = apply_profile("fast", config, probe=lambda: _gpu(20), **kwargs)  # type: ignore[arg-type]
    unknown = apply_profile("fast", config, probe=lambda: None, **kwargs)  # type: ignore[arg-type]
    assert roomy.config["disable_gradient_checkpointing"] is True
    assert roomy.memory is not None and roomy.memory.fits(79 * GIB) and not roomy.memory.fits(20 * GIB)
    assert "disable_gradient_checkpointing" not in tight.config
    assert any("more than NVIDIA H100 80GB HBM3: 20.0 GiB free" in n for n in tight.notes)
    assert "disable_gradient_checkpointing" not in unknown.config
    assert any("ODA_SFT_GPU_FREE_MIB" in n for n in unknown.notes)
    assert "disable_gradient_checkpointing" not in config  # the input is never mutated
    assert apply_profile("default", config, **kwargs).config is config  # type: ignore[arg-type]


def test_unknown_model_shape_keeps_checkpointing(tmp_path: Path) -> None:
    checkpoint = tmp_path / "ckpt"
    checkpoint.mkdir()
    (checkpoint / "config.json").write_text('{"model_type": "mystery"}')  # no sizes to compute memory from
    config = {"model_name_or_path": str(checkpoint), "cutoff_len": 4096}
    result = apply_profile(
        "fast",
        config,
        preset=PRESETS["qwen"],
        gpu_count=1,
        launch=LaunchOptions(),
        probe=lambda: _gpu(79),
        fa2_installed=False,
    )
    assert "disable_gradient_checkpointing" not in result.config
    assert any("shape is unknown" in n for n in result.notes)


def test_the_split_note_says_what_padding_is_left() -> None:
    """One sample per micro-batch computes no padding; two per micro-batch still pad to the longer one."""
    config = {"cutoff_len": 4096, "per_device_train_batch_size": 4, "gradient_accumulation_steps": 4}
    args = {"preset": PRESETS["qwen"], "gpu_count": 8, "probe": lambda: None, "fa2_installed": False}
    one = apply_profile("fast", config, launch=LaunchOptions(), samples=64, **args)  # type: ignore[arg-type]
    assert any("micro-batch 1 x accumulation 16" in n and "no padding computed" in n for n in one.notes), one.notes
    # 20 samples on 8 ranks: accelerate repeats 12 to fill the last step, the same with micro-batches of 2 only.
    two = apply_profile("fast", config, launch=LaunchOptions(), samples=20, **args)  # type: ignore[arg-type]
    note = next(n for n in two.notes if "micro-batch 2 x accumulation 8" in n)
    assert "no padding computed" not in note and "2 samples padded together, not 4" in note


def test_flash_attention_only_where_it_attends_like_the_recipe() -> None:
    std, packed, neat = {"packing": False}, {"packing": True}, {"packing": True, "neat_packing": True}
    assert choose_attention(std, 1, fa2_installed=True)[0] == "fa2"
    assert choose_attention(neat, 1, fa2_installed=True)[0] == "fa2"
    # Packed rows attend across samples in the recipe; FA2 would split them at the reset position ids.
    value, why = choose_attention(packed, 1, fa2_installed=True)
    assert value == "sdpa" and "cross-sample" in why
    assert choose_attention(std, 1, fa2_installed=False)[0] == "sdpa"
    assert choose_attention(std, 0, fa2_installed=True)[0] == "sdpa"


def test_gpu_memory_from_nvidia_smi(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ODA_SFT_GPU_FREE_MIB", raising=False)
    monkeypatch.setattr(gpuinfo.shutil, "which", lambda name: "/usr/bin/nvidia-smi")
    seen: list[list[str]] = []
    out = "0, NVIDIA H100 80GB HBM3, 81559, 80000\n1, NVIDIA H100 80GB HBM3, 81559, 30000\ngarbage\n"

    def fake(argv: list[str]) -> subproc.Captured:
        seen.append(argv)
        return subproc.Captured(0, out, "")

    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    mem = gpuinfo.gpu_memory(fake)
    assert seen[0] == [
        "/usr/bin/nvidia-smi",
        "--query-gpu=index,name,memory.total,memory.free",
        "--format=csv,noheader,nounits",
    ]
    assert mem is not None and mem.free_bytes == 30000 * 1024**2 and "GPU 1" in mem.source
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0")
    only0 = gpuinfo.gpu_memory(fake)
    assert only0 is not None and only0.free_bytes == 80000 * 1024**2
    assert gpuinfo.gpu_memory(lambda argv: subproc.Captured(9, "", "NVIDIA-SMI has failed")) is None
    assert gpuinfo.gpu_memory(lambda argv: None) is None
    monkeypatch.setenv("ODA_SFT_GPU_FREE_MIB", "1024")
    forced = gpuinfo.gpu_memory(fake)
    assert forced is not None and forced.free_bytes == GIB and len(seen) == 2  # no query when forced


def test_host_memory_reads_meminfo(tmp_path: Path) -> None:
    meminfo = tmp_path / "meminfo"
    meminfo.write_text("MemTotal:       16384000 kB\nMemFree:  100 kB\nMemAvailable:    8192000 kB\n")
    mem = gpuinfo.host_memory(meminfo)
    assert mem is not None and mem.free_bytes == 8192000 * 1024 and mem.kind == "cpu"
    assert gpuinfo.host_memory(tmp_path / "absent") is None


# ------------------------------------------------------------------------------ math neutrality, for real
