"""Run the benchmark and report it: every variant on every kind of data, compared with `raw`,
checked against targets, written to bench.json and bench.txt."""

from __future__ import annotations

import importlib.metadata
import json
import os
import platform
import time
from collections.abc import Callable
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

from oda_sft import __version__
from oda_sft.throughput.fixture import build_fixture
from oda_sft.throughput.metrics import RunResult, peak_flops, tokenized_stats
from oda_sft.throughput.spec import DECIDED, LOSS_TOL, TARGETS, BenchError, BenchSpec
from oda_sft.throughput.variants import fresh_run_dir, run_variant, variant_config
from oda_sft.train.request import LaunchOptions
from oda_sft.util import tables
from oda_sft.util.clock import utc_now
from oda_sft.util.fs import atomic_write_json, atomic_write_text
from oda_sft.util.hardware import gpu_memory, visible_gpu_count


def compare(
    results: list[RunResult], device: str, peak: float | None, world: int, targets: dict[str, float] = TARGETS
) -> list[dict[str, Any]]:
    """Fill in the comparisons to raw, and return the checks against `targets`."""
    checks: list[dict[str, Any]] = []
    tol = LOSS_TOL[device]
    for r in results:
        if r.tokens_per_s and r.flops_per_token and peak:
            r.mfu = round(r.tokens_per_s * r.flops_per_token / (peak * world), 4)
        if r.step_time_s and r.hardware_flops_per_step and peak:
            r.efficiency = round(r.hardware_flops_per_step / (r.step_time_s * peak * world), 4)
    by_key = {(r.data, r.variant): r for r in results}
    for r in results:
        raw = by_key.get((r.data, "raw"))
        if raw is None or r.variant == "raw" or r.skipped:
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
        if r.variant == "fast" or r.variant.startswith(DECIDED):
            target = targets["fast_vs_raw_long" if r.data == "long" else "fast_vs_raw_std"]
            checks.append(_check(f"{r.data}/{r.variant}: tokens/s vs raw", r.speedup_vs_raw, target))
    for r in results:
        if r.memory_rel_error is not None and not r.same_as:
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
    headers = [
        "data", "variant", "rc", "tok/s (real)", "x raw", "s/step", "MFU", "eff", "peak GiB", "model GiB",
        "max|dloss|", "wall s", "settings",
    ]  # fmt: skip

    def cell(v: float | int | None, fmt: str) -> str:
        return "-" if v is None else format(v, fmt)

    rows = [
        [
            r.data,
            r.variant,
            "skip" if r.skipped else str(r.rc),
            cell(r.tokens_per_s, ",.0f"),
            cell(r.speedup_vs_raw, ".3f"),
            cell(r.step_time_s, ".3f"),
            cell(r.mfu, ".1%"),
            cell(r.efficiency, ".1%"),
            cell(r.peak_allocated_gib, ".2f"),
            cell(r.predicted_peak_gib, ".2f"),
            cell(r.max_abs_loss_diff_vs_raw, ".4f"),
            cell(r.wall_s, ".0f"),
            settings(r) + (f" (= {', '.join(r.same_as)})" if r.same_as else ""),
        ]
        for r in results
    ]
    return tables.format_table(headers, rows)


def settings(r: RunResult) -> str:
    """micro-batch x accumulation, checkpointed layers, overlap: how a run trained."""
    cfg = r.config
    if not cfg:
        return r.skipped
    micro, accum = cfg.get("per_device_train_batch_size", 1), cfg.get("gradient_accumulation_steps", 1)
    if r.checkpointed_layers == 0:
        ck = "off"
    elif r.checkpointed_layers >= r.num_layers:
        ck = "all"
    else:
        ck = f"{r.checkpointed_layers}/{r.num_layers}"
    return f"{micro}x{accum} ckpt {ck}" + (" overlap" if r.overlap_comm else "")


def versions() -> dict[str, str | None]:
    """The training stack's versions, read from package metadata (nothing is imported)."""
    out: dict[str, str | None] = {}
    for name in ("torch", "transformers", "llamafactory", "deepspeed", "liger-kernel", "flash-attn", "accelerate"):
        try:
            out[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            out[name] = None
    return out


def _same_config(a: dict[str, Any], b: dict[str, Any]) -> bool:
    # Two variants train the same thing when their configs agree but for where they write.
    where = ("output_dir", "tokenized_path")
    return {k: v for k, v in a.items() if k not in where} == {k: v for k, v in b.items() if k not in where}


def run_all(
    spec: BenchSpec, fixture: Path, gpu_count: int, log: Callable[[str], None]
) -> tuple[list[RunResult], dict[str, list[int]]]:
    """Every variant on every kind of data. A variant whose config and trainer patches are those of
    one already run (two nodes deciding alike) is reported from that run, not trained again; with
    --time-budget, a run that would not finish inside it (judged by the longest run so far) is
    skipped, and `default` (the one the goals need least) runs after all the others."""
    started = time.monotonic()
    fixture_info = json.loads((fixture / "fixture.json").read_text(encoding="utf-8"))
    results: list[RunResult] = []
    lengths: dict[str, list[int]] = {}
    longest = 0.0
    pairs = [(d, v) for d in spec.datasets for v in spec.runs]
    if spec.time_budget_s is not None:
        pairs.sort(key=lambda p: p[1] == "default")  # stable: otherwise in the order asked
    done: dict[str, list[tuple[dict[str, Any], dict[str, str], RunResult]]] = {d: [] for d in spec.datasets}
    for data, variant in pairs:
        samples = int(fixture_info["data"][data]["samples"])
        run_dir = fresh_run_dir(spec, data, variant, fixture)
        prepared = variant_config(spec, data, variant, fixture, gpu_count, run_dir, samples)
        twin = next((r for cfg, env, r in done[data] if env == prepared[1] and _same_config(cfg, prepared[0])), None)
        if twin is not None:
            log(f"run {data}/{variant}: the same config as {twin.variant}; reported from that run")
            results.append(replace(twin, variant=variant, same_as=[twin.variant]))
            continue
        elapsed = time.monotonic() - started
        if spec.time_budget_s is not None and elapsed + longest > spec.time_budget_s:
            why = (
                f"skipped: {elapsed:.0f} s spent and the longest run took {longest:.0f} s "
                f"(--time-budget {spec.time_budget_s:.0f} s)"
            )
            log(f"run {data}/{variant}: {why}")
            results.append(RunResult(data, variant, 0, 0.0, "", skipped=why))
            continue
        log(f"run {data}/{variant} ...")
        r = run_variant(spec, data, variant, fixture, gpu_count, prepared)
        longest = max(longest, r.wall_s)
        results.append(r)
        done[data].append((prepared[0], prepared[1], r))
        log(f"run {data}/{variant}: rc={r.rc} {r.wall_s:.0f}s tokens/s={r.tokens_per_s} log={r.log}")
        if data not in lengths:
            stats = tokenized_stats(
                run_dir / "tokenized", bool(r.config.get("packing")), bool(r.config.get("neat_packing"))
            )
            if stats is not None:
                lengths[data] = sorted(stats.sample_lengths)
    return results, lengths


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
    results, lengths = run_all(spec, fixture, gpu_count, log)
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
            "versions": versions(),
        },
        "spec": {
            **{k: (str(v) if isinstance(v, Path) else v) for k, v in asdict(spec).items()},
            "preset": spec.preset_name,
            "shape_name": spec.model_shape().name,
        },
        "fixture": {**json.loads((fixture / "fixture.json").read_text(encoding="utf-8")), "lengths": lengths},
        "loss_tolerance": LOSS_TOL[device],
        "runs": [asdict(r) for r in results],
        "checks": checks,
    }
    table = format_table(results)
    atomic_write_json(spec.out_dir / "bench.json", report)
    atomic_write_text(spec.out_dir / "bench.txt", table + "\n")
    report["table"] = table
    failed = [
        f"{r.data}/{r.variant} (rc {r.rc}, log {r.log})"
        for r in results
        if not r.skipped and not r.same_as and (r.rc != 0 or not r.losses)
    ]
    if failed:
        raise BenchError(f"benchmark runs failed: {', '.join(failed)}; results so far in {spec.out_dir / 'bench.json'}")
    return report
