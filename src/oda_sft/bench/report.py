"""Run the benchmark and report it: every variant on every kind of data, compared with `raw`,
checked against targets, written to bench.json and bench.txt."""

from __future__ import annotations

import json
import os
import platform
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any

from oda_sft import __version__
from oda_sft.bench.fixture import build_fixture
from oda_sft.bench.metrics import RunResult, peak_flops
from oda_sft.bench.spec import LOSS_TOL, TARGETS, BenchError, BenchSpec
from oda_sft.bench.variants import run_variant
from oda_sft.train.hardware import gpu_memory, visible_gpu_count
from oda_sft.train.request import LaunchOptions
from oda_sft.util import tables
from oda_sft.util.clock import utc_now
from oda_sft.util.fs import atomic_write_json, atomic_write_text


def compare(
    results: list[RunResult], device: str, peak: float | None, world: int, targets: dict[str, float] = TARGETS
) -> list[dict[str, Any]]:
    """Fill in the comparisons to raw, and return the checks against `targets`."""
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
            checks.append(_check(f"{r.data}/default: tokens/s vs raw", r.speedup_vs_raw, targets["default_vs_raw"]))
        if r.variant == "fast" and r.data == "long":
            checks.append(_check("long/fast: tokens/s vs raw", r.speedup_vs_raw, targets["fast_vs_raw_long"]))
    for r in results:
        if r.memory_rel_error is not None:
            checks.append(
                _check(
                    f"{r.data}/{r.variant}: memory model vs measured peak",
                    abs(r.memory_rel_error),
                    targets["memory_rel_error"],
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
    return tables.format_table(headers, rows)


def run_bench(spec: BenchSpec, log: Callable[[str], None]) -> dict[str, Any]:
    """Build the fixture, run every variant on every dataset, write bench.json and bench.txt."""
    gpu_count = visible_gpu_count()
    spec.validate(gpu_count)
    world = LaunchOptions(spec.nproc_per_node).world_size(gpu_count)
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
        "date": utc_now(),
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
