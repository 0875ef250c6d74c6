"""`oda-sft bench`: throughput of the raw recipe vs oda-sft's configs, on a random-weight model."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer

from oda_sft.cli.options import JsonOpt, optional, spec_from


def _split(value: str, allowed: tuple[str, ...], what: str) -> tuple[str, ...]:
    items = tuple(v.strip() for v in value.split(",") if v.strip())
    bad = [v for v in items if v not in allowed]
    if bad or not items:
        raise typer.BadParameter(f"{what} must be a comma-separated subset of {', '.join(allowed)}")
    return items


def bench(
    ctx: typer.Context,
    out: Annotated[Path, typer.Option(help="Directory for the fixture, the runs, bench.json and bench.txt.")] = Path(
        "bench-out"
    ),
    shape: Annotated[
        str, typer.Option(help="Model shape: a preset's (tiny, llama3.1-8b, ...) or qwen2.5-0.5b, qwen2.5-1.5b.")
    ] = "tiny",
    layers: Annotated[int | None, optional(help="Use this many decoder layers (e.g. 8B with 4 layers).")] = None,
    preset: Annotated[str | None, optional(help="Recipe preset [default: from the shape].")] = None,
    data: Annotated[str, typer.Option(help="Comma-separated: std, long.")] = "std,long",
    variants: Annotated[str, typer.Option(help="Comma-separated: raw, default, fast.")] = "raw,default,fast",
    steps: Annotated[int, typer.Option(help="Optimizer steps per run.")] = 15,
    warmup_steps: Annotated[int, typer.Option(help="Logged steps left out of the steady-state rate.")] = 4,
    scale: Annotated[int, typer.Option(help="Divide sample lengths and cutoff_len by this (CPU runs).")] = 1,
    nproc_per_node: Annotated[int | None, typer.Option(help="GPUs per run [default: all visible].")] = None,
    peak_tflops: Annotated[
        float | None, optional(help="Dense bf16 peak per GPU for MFU [default: by GPU name].")
    ] = None,
    run_timeout: Annotated[float, typer.Option(help="Seconds before one training run is killed.")] = 1800.0,
    decide_for: Annotated[
        str | None,
        optional(
            help="Comma-separated nodes, e.g. 8xH100-80GB,8xH200: run fast as the memory model decides it for the "
            "full-size preset on each (one fast@NODE variant each), on this benchmark's model."
        ),
    ] = None,
    time_budget: Annotated[
        float | None,
        optional(help="Seconds for all runs; skip a run that would not finish inside them."),
    ] = None,
    save_table: Annotated[
        bool, typer.Option("--save-table", help="Add the GPU runs to the throughput table `estimate` uses.")
    ] = False,
    table: Annotated[
        Path | None,
        optional(help="The throughput table to update [default: the shipped one]."),
    ] = None,
    from_json: Annotated[
        Path | None,
        optional(help="With --save-table: take the runs from this bench.json instead of running."),
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Benchmark the raw recipe against oda-sft's default and fast profiles."""
    # The benchmark is an optional part of oda-sft: imported only when this command runs.
    from oda_sft.throughput.report import run_bench
    from oda_sft.throughput.spec import DATA_KINDS, VARIANTS, BenchSpec
    from oda_sft.throughput.table import read_report
    from oda_sft.throughput.table import save_table as save_into

    if from_json is not None:
        if not save_table:
            raise typer.BadParameter("--from-json only goes with --save-table")
        _save(save_into, read_report(from_json), str(from_json), table)
        return

    spec = spec_from(
        BenchSpec,
        ctx,
        out_dir=out,
        datasets=_split(data, DATA_KINDS, "--data"),
        variants=_split(variants, VARIANTS, "--variants"),
        run_timeout_s=run_timeout,
        decide_for=_split_nodes(decide_for),
        time_budget_s=time_budget,
    )
    report = run_bench(spec, log=lambda message: typer.echo(f"oda-sft bench: {message}", err=True))
    if as_json:
        typer.echo(json.dumps({k: v for k, v in report.items() if k != "table"}, indent=2))
    else:
        typer.echo(report["table"])
        for check in report["checks"]:
            verdict = {True: "pass", False: "FAIL", None: "n/a"}[check["passed"]]
            typer.echo(f"{verdict:4}  {check['check']}: {check['value']} (target {check['threshold']})")
        typer.echo(f"results: {out / 'bench.json'}")
    if save_table:
        _save(save_into, report, str(out / "bench.json"), table)


def _split_nodes(value: str | None) -> tuple[str, ...]:
    return tuple(v.strip() for v in (value or "").split(",") if v.strip())


def _save(save_into: Callable[..., Any], report: dict[str, Any], source: str, table: Path | None) -> None:
    updated, added, path = save_into(report, source, table)
    typer.echo(f"throughput table {path}: {added} measurements added, {len(updated.measurements)} in all", err=True)
