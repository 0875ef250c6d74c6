"""`oda-sft bench` for real: the three variants on the tiny shape, on the CPU."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from oda_sft.throughput.spec import LOSS_TOL

from conftest import Cli


def test_bench_runs_on_the_tiny_shape(cli: Cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """How CI exercises the benchmark: the three variants on packed long data, a few steps, on a CPU."""
    monkeypatch.setenv("ODA_SFT_GPU_COUNT", "0")
    out = tmp_path / "bench"
    r = cli(
        "bench",
        "--out",
        str(out),
        "--shape",
        "tiny",
        "--data",
        "long",
        "--steps",
        "4",
        "--warmup-steps",
        "1",
        "--scale",
        "16",
    )
    assert r.code == 0, r.err[-3000:]
    report = json.loads((out / "bench.json").read_text())
    runs = {run["variant"]: run for run in report["runs"]}
    assert set(runs) == {"raw", "default", "fast"} and report["host"]["device"] == "cpu"
    for run in runs.values():
        assert run["rc"] == 0 and run["steps"] == [1, 2, 3, 4]
        assert run["tokens_per_s"] > 0 and 0.5 < run["real_token_fraction"] < 1  # packed rows carry padding
        assert run["config"]["cutoff_len"] == 32768 // 16 and run["config"]["max_steps"] == 4
        assert run["mfu"] is None and run["peak_allocated_gib"] is None  # a CPU has neither
    assert runs["fast"]["config"]["disable_gradient_checkpointing"] is True
    assert "disable_gradient_checkpointing" not in runs["default"]["config"]
    assert runs["raw"]["config"]["overwrite_output_dir"] is True  # upstream's value, not oda-sft's
    for variant in ("default", "fast"):
        assert runs[variant]["max_abs_loss_diff_vs_raw"] <= LOSS_TOL["cpu"]
        assert runs[variant]["speedup_vs_raw"] > 0
    table = (out / "bench.txt").read_text()
    assert table.splitlines()[0].startswith("data  variant") and len(table.splitlines()) == 4
    assert "results:" in r.out and "same loss as raw" in r.out


def test_bench_decides_for_named_nodes_and_runs_twins_once(
    cli: Cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """--decide-for: fast as decided for 8 GPUs of each card, applied to the bench's model. The tiny
    preset fits either card, so both decisions are the same config: trained once, reported twice.
    On std the decision is one sample per micro-batch, and the loss stays the raw recipe's."""
    monkeypatch.setenv("ODA_SFT_GPU_COUNT", "0")
    out = tmp_path / "bench"
    r = cli(
        "bench", "--out", str(out), "--shape", "tiny", "--data", "std", "--variants", "raw,fast",
        "--decide-for", "8xH100-80GB,8xH200", "--steps", "4", "--warmup-steps", "1", "--scale", "16",
    )  # fmt: skip
    assert r.code == 0, r.err[-3000:]
    report = json.loads((out / "bench.json").read_text())
    runs = {run["variant"]: run for run in report["runs"]}
    assert list(runs) == ["raw", "fast@8xH100-80GB", "fast@8xH200"]
    h100, h200 = runs["fast@8xH100-80GB"], runs["fast@8xH200"]
    assert h200["same_as"] == ["fast@8xH100-80GB"] and h200["steps"] == h100["steps"]
    assert "the same config as fast@8xH100-80GB" in r.err
    assert (h100["config"]["per_device_train_batch_size"], h100["config"]["gradient_accumulation_steps"]) == (1, 16)
    assert h100["config"]["disable_gradient_checkpointing"] is True and h100["checkpointed_layers"] == 0
    assert h100["decision"].startswith("1x16, ckpt off")
    assert any("micro-batch 1 x accumulation 16" in n for n in h100["decision_notes"])
    assert h100["max_abs_loss_diff_vs_raw"] <= LOSS_TOL["cpu"]
    assert h100["step_time_s"] > 0 and h100["work"]["micro_batches"] == 16
    assert runs["raw"]["work"]["micro_batches"] == 4
    assert h100["work"]["computed_tokens"] < runs["raw"]["work"]["computed_tokens"]  # the padding is gone
    assert len(report["fixture"]["lengths"]["std"]) == report["fixture"]["data"]["std"]["samples"]
    assert report["fixture"]["data"]["std"]["samples"] % 32 == 0  # the split is exact for 8 ranks
    table = (out / "bench.txt").read_text()
    assert "1x16 ckpt off" in table and "(= fast@8xH100-80GB)" in table
    checks = {c["check"] for c in report["checks"]}
    assert "std/fast@8xH100-80GB: tokens/s vs raw" in checks
