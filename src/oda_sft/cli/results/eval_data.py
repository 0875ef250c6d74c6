"""`oda-sft eval-data fetch`: the benchmark data an eval reads, downloaded before it runs (on a machine with
network) into the cache OpenCompass reads, through OpenCompass's own download table and checksums."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer

from oda_sft.cli.options import optional
from oda_sft.errors import UsageError
from oda_sft.presets import preset_help
from oda_sft.util.console import say

CACHE_HELP = (
    "Where to put it: OpenCompass's COMPASS_DATA_CACHE [default: $COMPASS_DATA_CACHE, else ~/.cache/opencompass]."
)


def fetch(
    model: Annotated[str, typer.Option("--model", "-m", help=preset_help())],
    suite: Annotated[str, typer.Option(help="general, math, code, reasoning or all (ODA's domains).")] = "all",
    benchmarks: Annotated[str | None, typer.Option(help="Comma-separated benchmark names, instead of --suite.")] = None,
    cache: Annotated[Path | None, optional(help=CACHE_HELP)] = None,
    opencompass: Annotated[
        Path | None, optional(help="The opencompass program or its venv (as for `oda-sft eval`).")
    ] = None,
) -> None:
    """Download the benchmark data an eval of --model reads, with OpenCompass's own downloader."""
    from oda_sft.eval import benchmark_data, target
    from oda_sft.eval import benchmarks as bench
    from oda_sft.eval import opencompass as oc
    from oda_sft.util import subproc

    preset = bench.for_preset(target.preset_named(model))
    names = [n.strip() for n in benchmarks.split(",") if n.strip()] if benchmarks else None
    chosen = bench.select(preset, suite, names)
    install = oc.describe(oc.locate(opencompass))
    where = (cache or Path(os.environ.get("COMPASS_DATA_CACHE") or Path.home() / ".cache" / "opencompass")).absolute()
    if where.exists() and not where.is_dir():
        raise UsageError(f"--cache {where} is a file: name a directory")
    env = {**os.environ, "COMPASS_DATA_CACHE": str(where)}
    gone = benchmark_data.missing(install.package, preset, chosen, None, env)
    wanted = [m.need for m in gone if m.fetchable]
    if wanted:
        where.mkdir(parents=True, exist_ok=True)
        say(f"fetching {len(wanted)} item(s) into {where} with OpenCompass {install.version} ({install.python})")
        argv = benchmark_data.fetch_script_argv(install.python, wanted)
        subproc.run_streaming(argv, {"COMPASS_DATA_CACHE": str(where)}, subproc.Watch(what="the download", cwd=where))
    left = benchmark_data.missing(install.package, preset, chosen, None, env)
    for m in left:
        how = "OpenCompass has no download for it: place it by hand" if not m.fetchable else "the download failed"
        say(f"missing: {m.need.benchmark} ({m.need.hf_repo or m.need.path}) at {m.looked[0] if m.looked else '?'}: "
            f"{how}")  # fmt: skip
    if left:
        raise typer.Exit(1)
    if os.environ.get("COMPASS_DATA_CACHE") and Path(os.environ["COMPASS_DATA_CACHE"]).absolute() != where:
        say(f"note: evals read COMPASS_DATA_CACHE={os.environ['COMPASS_DATA_CACHE']}; run them with "
            f"COMPASS_DATA_CACHE={where}")  # fmt: skip
    elif not os.environ.get("COMPASS_DATA_CACHE") and cache is not None:
        say(f"note: run evals with COMPASS_DATA_CACHE={where} (OpenCompass reads ~/.cache/opencompass otherwise)")
    say(f"the benchmark data of {', '.join(b.name for b in chosen)} is in {where}")
