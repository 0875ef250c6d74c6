"""Math neutrality, for real: the tiny model trains the same loss at every step under default and fast,
with every lever fast has on a CPU: one sample per micro-batch (1 x 16 instead of 4 x 4, no padding)
and gradient checkpointing off."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import yaml


def _train(
    tmp_path: Path, data_dir: Path, profile: str, *extra: str, env: dict[str, str] | None = None
) -> tuple[list[tuple[int, float]], str, dict[str, object]]:
    root = tmp_path / profile
    argv = [
        sys.executable,
        "-m",
        "oda_sft",
        "train",
        "--model",
        "tiny",
        "--dataset",
        "oda_demo",
        "--dataset-dir",
        str(data_dir),
        "--output-root",
        str(root),
        "--profile",
        profile,
        "--verbose",  # the trainer's own output here too (it says whether gradient checkpointing is on)
        "--",
        "logging_steps=1",
        *extra,
    ]
    full_env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", **(env or {})}
    tmp_path.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(argv, capture_output=True, text=True, timeout=900, env=full_env, cwd=tmp_path)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    run = root / "tiny" / "full" / "sft-oda_demo" / "seed-42"
    rows = [json.loads(line) for line in (run / "trainer_log.jsonl").read_text().splitlines()]
    losses = [(int(r["current_steps"]), float(r["loss"])) for r in rows if "loss" in r]
    config = yaml.safe_load((run / "oda_sft_config.yaml").read_text())
    return losses, done.stdout + done.stderr, config


def test_fast_profile_trains_the_same_losses_as_default(tmp_path: Path, data_dir: Path) -> None:
    """The tiny model on the CPU, through the real oda-sft train and llamafactory-cli, the recipe's
    whole 3 epochs (128 samples, 16 a step: 24 steps).

    Tolerance 1e-4: in fp32 on a CPU a checkpointed layer recomputes exactly the forward it
    replaces, sdpa is what `auto` resolves to, and the loss of a step is normalised by the label
    tokens of the whole step whatever its micro-batches; summing 16 one-sample gradients instead
    of 4 four-sample ones only reorders fp32 additions, below the 4-decimal rounding of the log.
    """
    default, default_out, default_cfg = _train(tmp_path, data_dir, "default")
    fast, fast_out, fast_cfg = _train(tmp_path, data_dir, "fast")
    # The switches really took effect: checkpointing in one run only, and one sample per micro-batch.
    assert "Gradient checkpointing enabled" in default_out
    assert "Gradient checkpointing enabled" not in fast_out
    assert fast_cfg["disable_gradient_checkpointing"] is True and "disable_gradient_checkpointing" not in default_cfg
    assert (default_cfg["per_device_train_batch_size"], default_cfg["gradient_accumulation_steps"]) == (4, 4)
    assert (fast_cfg["per_device_train_batch_size"], fast_cfg["gradient_accumulation_steps"]) == (1, 16)
    assert "Instantaneous batch size per device = 1" in fast_out and "Gradient Accumulation steps = 16" in fast_out
    assert [s for s, _ in default] == [s for s, _ in fast] == list(range(1, 25))
    worst = max(abs(a - b) for (_, a), (_, b) in zip(default, fast, strict=True))
    assert worst <= 1e-4, (default, fast)
    # And training did something: the losses are not a constant that would match trivially.
    assert len({loss for _, loss in default}) > 1


def test_partial_checkpointing_trains_the_same_losses(tmp_path: Path, data_dir: Path) -> None:
    """The partial_checkpointing trainer patch (fast's lever when checkpointing cannot go entirely):
    the tiny model with 1 of its 2 layers checkpointed logs the same loss at every step as with
    both checkpointed (the recipe), and the patch really ran."""
    from oda_sft.train.patches import trainer_env

    env = trainer_env({"partial_checkpointing": {"ODA_SFT_CHECKPOINT_LAYERS": "1"}}, os.environ.get("PYTHONPATH"))
    full, full_out, _ = _train(tmp_path / "all", data_dir, "default", "max_steps=12")
    partial, partial_out, _ = _train(tmp_path / "partial", data_dir, "default", "max_steps=12", env=env)
    assert "Gradient checkpointing enabled" in full_out and "Gradient checkpointing enabled" in partial_out
    assert "partial checkpointing: 1 of 2 decoder layers checkpointed, 1 keep their activations" in partial_out
    assert "partial checkpointing" not in full_out
    assert [s for s, _ in full] == [s for s, _ in partial] == list(range(1, 13))
    worst = max(abs(a - b) for (_, a), (_, b) in zip(full, partial, strict=True))
    assert worst <= 1e-4, (full, partial)
    assert len({loss for _, loss in full}) > 1


def test_deepspeed_on_two_ranks_with_every_lever_on_trains_the_same_losses(tmp_path: Path, data_dir: Path) -> None:
    """ZeRO-2 on 2 CPU ranks (gloo): the recipe (4 x 4, checkpointing on, overlap_comm off) against
    what fast decides for 2 ranks with room to spare: every lever at once (1 x 16, checkpointing
    off, ds_z2_fast_config.json with overlap_comm on, sdpa pinned), on 127 samples, so accelerate
    pads every epoch's last step with a repeated sample; the rule says that padding is the same
    with one sample per micro-batch. Every step's loss is the same.

    bf16 and liger need a GPU; on a CPU this runs fp32 without liger, and DeepSpeed's CPU
    accelerator has no side streams, so it checks overlap_comm's bookkeeping (double buffers),
    not its concurrency."""
    from oda_sft.presets import PRESETS
    from oda_sft.tiny_model import ensure_model
    from oda_sft.train import launcher
    from oda_sft.train.profile import apply_decision, decide_fast
    from oda_sft.train.render import RenderSpec, dump_yaml, render
    from oda_sft.train.request import LaunchOptions
    from oda_sft.util.hardware import DeviceMemory

    samples = json.loads((data_dir / "oda_demo.json").read_text())[:127]
    (data_dir / "demo127.json").write_text(json.dumps(samples))
    info = json.loads((data_dir / "dataset_info.json").read_text())
    info["demo127"] = {"file_name": "demo127.json"}
    (data_dir / "dataset_info.json").write_text(json.dumps(info))
    preset = PRESETS["tiny"]
    spec = RenderSpec(preset, "standard", "demo127", 42, data_dir, tmp_path, str(ensure_model()), False, {})
    recipe = render(spec)
    roomy = DeviceMemory("gpu", "test", 64 * 1024**3, 64 * 1024**3, "test")
    decision = decide_fast(recipe, preset.shape, world=2, gpu_count=2, device=lambda: roomy, samples=127)
    fast = apply_decision(recipe, decision)
    assert (fast["per_device_train_batch_size"], fast["gradient_accumulation_steps"]) == (1, 16)
    assert Path(fast["deepspeed"]).name == "ds_z2_fast_config.json"
    assert fast["disable_gradient_checkpointing"] is True and fast["flash_attn"] == "sdpa"

    site = Path(__file__).resolve().parent / "trainer_site"
    env = {
        "PYTHONPATH": os.pathsep.join([str(site), os.environ.get("PYTHONPATH", "")]),
        "CUDA_VISIBLE_DEVICES": "",
        "DS_ACCELERATOR": "cpu",
        "HF_HUB_OFFLINE": "1",
        "HF_DATASETS_OFFLINE": "1",
        "TOKENIZERS_PARALLELISM": "false",
    }
    losses = {}
    for name, config in (("recipe", recipe), ("fast", fast)):
        run = {
            **config,
            "bf16": False,
            "use_liger_kernel": False,
            "output_dir": str(tmp_path / name),
            "logging_steps": 1,
            "save_strategy": "no",
            "preprocessing_num_workers": 1,
            "report_to": "none",  # as oda-sft renders it: else transformers logs to every tracker installed
        }
        path = tmp_path / f"{name}.yaml"
        path.write_text(dump_yaml(run))
        argv, launch_env = launcher.build_command(path, LaunchOptions(nproc_per_node=2), 0, deepspeed=True)
        done = subprocess.run(
            argv, capture_output=True, text=True, timeout=900, env={**os.environ, **launch_env, **env}, cwd=tmp_path
        )
        out = done.stdout + done.stderr
        assert done.returncode == 0, out[-4000:]
        assert "world size: 2" in out and "DeepSpeed info" in out
        assert ("Gradient checkpointing enabled" in out) == (name == "recipe")
        rows = [json.loads(line) for line in (tmp_path / name / "trainer_log.jsonl").read_text().splitlines()]
        losses[name] = [(int(r["current_steps"]), float(r["loss"])) for r in rows if "loss" in r]
    # 127 samples + 1 repeated = 128 a epoch, 32 a step: 4 steps an epoch, 12 in 3 epochs.
    assert [s for s, _ in losses["recipe"]] == [s for s, _ in losses["fast"]] == list(range(1, 13))
    worst = max(abs(a - b) for (_, a), (_, b) in zip(losses["recipe"], losses["fast"], strict=True))
    assert worst <= 1e-4, losses
