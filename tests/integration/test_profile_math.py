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


def _train(tmp_path: Path, data_dir: Path, profile: str) -> tuple[list[tuple[int, float]], str, dict[str, object]]:
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
        "--",
        "logging_steps=1",
        "save_strategy=no",
    ]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}
    done = subprocess.run(argv, capture_output=True, text=True, timeout=900, env=env, cwd=tmp_path)
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
