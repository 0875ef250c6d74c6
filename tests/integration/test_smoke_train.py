"""Smoke: a real `llamafactory-cli train` of the tiny model through `oda-sft train`. No mocks."""

from __future__ import annotations

import json
from pathlib import Path

import yaml

from realproc import oda_sft

OUT_DIR = Path("tiny/full/sft-oda_demo/seed-42")


def test_tiny_model_trains_keeps_its_config_and_is_never_overwritten(data_dir: Path, tmp_path: Path) -> None:
    common = ["--model", "tiny", "--dataset", "oda_demo", "--dataset-dir", str(data_dir), "--output-root", "saves"]
    dry = oda_sft("train", *common, "--dry-run", cwd=tmp_path)
    assert dry.returncode == 0, dry.stderr
    rendered = yaml.safe_load(dry.stdout)

    first = oda_sft("train", *common, cwd=tmp_path)
    assert first.returncode == 0, first.stdout[-3000:] + first.stderr[-3000:]
    run = tmp_path / "saves" / OUT_DIR
    # The recipe's outputs: logged loss, saved weights, loss plot, results.
    log = [json.loads(line) for line in (run / "trainer_log.jsonl").read_text().splitlines()]
    losses = [entry["loss"] for entry in log if "loss" in entry]
    assert losses and all(0 < loss < 20 for loss in losses)
    assert (run / "model.safetensors").stat().st_size > 100_000
    assert (run / "training_loss.png").stat().st_size > 1000
    assert json.loads((run / "all_results.json").read_text())["epoch"] == 3.0
    assert [p.name for p in run.glob("checkpoint-*")] == ["checkpoint-24"]  # save_total_limit 1, once per epoch
    # The kept YAML is exactly what was rendered, and it is what LLaMA-Factory trained with.
    kept = yaml.safe_load((run / "oda_sft_config.yaml").read_text())
    assert Path(kept.pop("tokenized_path")).parent.name == "tokenized"  # oda-sft's cache, not the recipe
    assert kept == rendered
    assert "no GPU visible: tiny runs on the CPU" in first.stderr

    again = oda_sft("train", *common, cwd=tmp_path)
    assert again.returncode == 0
    assert "skipped:" in again.stderr and "holds a finished run" in again.stderr
    assert (run / "model.safetensors").exists()

    weights_before = (run / "model.safetensors").read_bytes()
    forced = oda_sft("train", *common, "--force", cwd=tmp_path)
    assert forced.returncode == 0, forced.stderr[-3000:]
    moved = [p for p in run.parent.iterdir() if p.name.startswith("seed-42.replaced-")]
    assert len(moved) == 1, "the earlier run is moved aside, never deleted"
    assert (moved[0] / "model.safetensors").read_bytes() == weights_before
    assert (run / "all_results.json").exists()
