"""`oda-sft bench` for real: the three variants on the tiny shape, on the CPU."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from oda_sft.bench.spec import LOSS_TOL

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
