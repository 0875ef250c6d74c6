"""`oda-sft bench`: token and FLOP accounting, the raw-recipe baseline, and a real run on the tiny shape."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from oda_sft.errors import UsageError
from oda_sft.presets import PRESETS
from oda_sft.throughput.metrics import RunResult, flops_per_real_token, peak_flops, row_stats, steady_rate
from oda_sft.throughput.report import compare
from oda_sft.throughput.spec import EXTRA_SHAPES, LOSS_TOL, BenchSpec
from oda_sft.throughput.variants import raw_config

from conftest import Cli

REPO_SRC = Path(__file__).resolve().parents[2] / "src" / "oda_sft"
QWEN05 = EXTRA_SHAPES["qwen2.5-0.5b"][0]


def test_row_stats_count_real_tokens_as_llamafactory_attends() -> None:
    # Unpacked: one sample per row, no padding stored; attention over the sample alone.
    plain = row_stats([3, 5], None, packed=False, neat=False)
    assert plain.real_fraction == 1.0 and plain.pairs_per_real_token == (3 * 4 + 5 * 6) / 8
    # Packed to cutoff 8 (+1): samples of 3 and 4 tokens, then 2 pad tokens at position 0.
    pos = [[0, 1, 2, 0, 1, 2, 3, 0, 0]]
    crossing = row_stats([9], pos, packed=True, neat=False)
    assert crossing.real_fraction == 7 / 9  # the trainer counts the pad, whose mask is 1
    assert crossing.pairs_per_real_token == 7 * 8 / 7  # one causal span across both samples
    neat = row_stats([9], pos, packed=True, neat=True)
    assert neat.real_fraction == 1.0 and neat.pairs_per_real_token == (3 * 4 + 4 * 5) / 7
    assert crossing.longest_row == 9


def test_flops_reproduce_the_kit_mfu() -> None:
    """The kit: 36,214 and 44,028 tokens/s on the long config (full 32k rows) are about 26% and 32%
    MFU on an H200, counting causal attention over the packed rows."""
    per_token = flops_per_real_token(QWEN05, 32769 + 1)  # L(L+1)/L for one 32,769-token row
    peak = peak_flops("NVIDIA H200", None)
    assert peak is not None
    assert round(36214 * per_token / peak, 2) == 0.26
    assert round(44028 * per_token / peak, 2) == 0.32
    assert peak_flops("NVIDIA H100 PCIe", None) == 756e12 and peak_flops("Tesla T4", None) is None
    assert peak_flops(None, 100.0) == 100e12


def test_steady_rate_uses_the_logged_throughput() -> None:
    rows = [
        {"current_steps": s, "loss": 1.0, "total_tokens": 1000 * s, "throughput": 1000 * s / (2.0 + s)}
        for s in range(1, 7)
    ]
    rate = steady_rate(rows, warmup=2)
    assert rate is not None
    assert rate[0] == pytest.approx(1000.0) and rate[1] == [3, 6]
    assert steady_rate(rows[:1], warmup=2) is None


def test_compare_flags_loss_and_speed() -> None:
    raw = RunResult("long", "raw", 0, 1.0, "", steps=[1, 2], losses=[2.0, 1.5], tokens_per_s=100.0)
    fast = RunResult(
        "long",
        "fast",
        0,
        1.0,
        "",
        steps=[1, 2],
        losses=[2.0, 1.5005],
        tokens_per_s=130.0,
        flops_per_token=1e9,
        peak_allocated_gib=10.0,
        memory_rel_error=-0.2,
    )
    checks = {c["check"]: c for c in compare([raw, fast], "gpu", peak=1e12, world=1)}
    assert fast.speedup_vs_raw == 1.3 and fast.max_abs_loss_diff_vs_raw == pytest.approx(5e-4)
    assert fast.mfu == 0.13
    assert checks["long/fast: tokens/s vs raw"]["passed"] is True
    assert checks["long/fast: same loss as raw at every step"]["passed"] is True  # within the GPU tolerance
    assert checks["long/fast: memory model vs measured peak"]["passed"] is False
    compare([raw, fast], "cpu", peak=None, world=1)
    assert fast.max_abs_loss_diff_vs_raw > LOSS_TOL["cpu"]


def test_raw_baseline_is_the_upstream_recipe_and_oda_sft_default_keeps_its_math(
    cli: Cli, tmp_path: Path, data_dir: Path
) -> None:
    """Every key that decides the math is the same in the raw upstream values and oda-sft's config."""
    math_keys = (
        "cutoff_len",
        "packing",
        "per_device_train_batch_size",
        "gradient_accumulation_steps",
        "learning_rate",
        "warmup_ratio",
        "num_train_epochs",
        "lr_scheduler_type",
        "bf16",
        "template",
        "use_liger_kernel",
        "finetuning_type",
        "stage",
    )
    cases = [(p, mode) for p in PRESETS.values() if not p.embedded for mode in p.upstream]
    for preset, mode in cases:
        family, data, values = preset.name, "long" if mode == "long" else "std", preset.upstream[mode]
        spec = BenchSpec(out_dir=tmp_path, shape=preset.shape.name, preset=family)
        raw = raw_config(spec, data, tmp_path, tmp_path / "run", cpu=False)
        r = cli(
            "train",
            "--model",
            family,
            "--dataset",
            "oda_demo",
            "--dataset-dir",
            str(data_dir),
            "--mode",
            mode,
            "--dry-run",
        )
        assert r.code == 0, r.err
        rendered = yaml.safe_load(r.out)
        for key in math_keys:
            # An absent `packing` is LLaMA-Factory's default for sft: off, like an explicit false.
            want, got = (
                (bool(raw.get(key)), bool(rendered.get(key))) if key == "packing" else (raw.get(key), rendered.get(key))
            )
            assert got == want, (family, data, key)
        assert raw["seed"] == 42 if "seed" in values else "seed" not in raw  # upstream qwen long has no seed
        assert Path(raw["deepspeed"]).name == ("ds_z3_config.json" if family == "qwen3" else "ds_z2_config.json")
        assert raw["max_steps"] == 15 and raw["logging_steps"] == 1


def test_bench_refuses_what_it_cannot_run(cli: Cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ODA_SFT_GPU_COUNT", "0")
    r = cli("bench", "--out", str(tmp_path), "--shape", "qwen2.5-0.5b")
    assert r.code == 2 and "needs a GPU" in r.err and "--preset tiny" in r.err
    r = cli("bench", "--out", str(tmp_path), "--shape", "qwen3-8b", "--data", "std")
    assert r.code == 2 and "no std config" in r.err
    r = cli("bench", "--out", str(tmp_path), "--data", "medium")
    assert r.code == 2
    assert not (tmp_path / "bench.json").exists()


def test_every_bench_option_reaches_the_spec(cli: Cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The spec is built from the options of the same names (cli/options.spec_from) plus the ones bench parses."""
    import oda_sft.throughput.report as report

    seen: list[BenchSpec] = []

    def capture(spec: BenchSpec, log: object) -> dict[str, object]:
        seen.append(spec)
        return {"table": "", "checks": []}

    monkeypatch.setattr(report, "run_bench", capture)
    r = cli(
        "bench", "--out", str(tmp_path), "--shape", "qwen2.5-0.5b", "--layers", "2", "--preset", "qwen",
        "--data", "long", "--variants", "raw,fast", "--steps", "7", "--warmup-steps", "2", "--scale", "16",
        "--nproc-per-node", "3", "--peak-tflops", "989.5", "--run-timeout", "60", "--decide-for", "8xH200",
        "--time-budget", "600",
    )  # fmt: skip
    assert r.code == 0, r.err
    assert seen == [
        BenchSpec(
            out_dir=tmp_path, shape="qwen2.5-0.5b", layers=2, preset="qwen", datasets=("long",),
            variants=("raw", "fast"), steps=7, warmup_steps=2, scale=16, nproc_per_node=3, peak_tflops=989.5,
            run_timeout_s=60.0, decide_for=("8xH200",), time_budget_s=600.0,
        )
    ]  # fmt: skip


def test_a_spec_field_no_option_names_is_a_programming_error() -> None:
    import click
    import typer

    from oda_sft.cli.options import spec_from

    ctx = typer.Context(click.Command("x"))
    ctx.params = {"steps": 3, "unrelated": 1}
    assert spec_from(BenchSpec, ctx, out_dir=Path("o")) == BenchSpec(out_dir=Path("o"), steps=3)
    with pytest.raises(TypeError, match="no field run_timeout"):
        spec_from(BenchSpec, ctx, out_dir=Path("o"), run_timeout=1.0)


STORED_BENCH = Path(__file__).resolve().parents[1] / "data" / "bench_h200_qwen05_issue13.json"


def test_save_table_from_a_stored_gpu_bench(cli: Cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`bench --save-table --from-json` adds a bench.json's GPU runs to a table; estimate then reads it."""
    table = tmp_path / "table.json"
    r = cli("bench", "--save-table", "--from-json", str(STORED_BENCH), "--table", str(table))
    assert r.code == 0, r.err
    assert "6 measurements added" in r.err
    saved = json.loads(table.read_text())["measurements"]
    shipped = json.loads((REPO_SRC / "cost" / "throughput.json").read_text())["measurements"]
    # A new table starts from the shipped one; the same runs replace theirs rather than pile up.
    assert len(saved) == len(shipped)
    run = next(m for m in saved if m["mode"] == "standard" and m["variant"] == "fast")
    assert (run["gpu"], run["card"], run["micro_batch"], run["checkpointed_layers"]) == ("NVIDIA H200", "H200", 4, 0)
    assert run["versions"]["deepspeed"] == "0.18.9" and run["source"] == str(STORED_BENCH)
    monkeypatch.setenv("ODA_SFT_THROUGHPUT_TABLE", str(table))
    from oda_sft.cost import table as throughput

    assert len(throughput.load().measurements) == len(saved)


def test_save_table_refuses_what_is_not_a_gpu_bench(cli: Cli, tmp_path: Path) -> None:
    cpu = json.loads(STORED_BENCH.read_text())
    cpu["host"] = {**cpu["host"], "device": "cpu", "gpu": None}
    path = tmp_path / "bench.json"
    path.write_text(json.dumps(cpu))
    r = cli("bench", "--save-table", "--from-json", str(path), "--table", str(tmp_path / "t.json"))
    assert r.code != 0 and "GPU measurements only" in r.err and not (tmp_path / "t.json").exists()
    r = cli("bench", "--save-table", "--from-json", str(tmp_path / "absent.json"))
    assert r.code != 0 and "does not exist: run `oda-sft bench` first" in r.err
    r = cli("bench", "--from-json", str(STORED_BENCH))
    assert r.code == 2 and "--from-json only goes with --save-table" in r.err


def test_decide_for_names_and_runs() -> None:
    spec = BenchSpec(out_dir=Path("x"), variants=("raw", "fast", "default"), decide_for=("8xH100-80GB", "8xH200"))
    assert spec.runs == ("raw", "fast@8xH100-80GB", "fast@8xH200", "default")
    with pytest.raises(UsageError):
        BenchSpec(out_dir=Path("x"), decide_for=("8xV100",)).validate(1)
