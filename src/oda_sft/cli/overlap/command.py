"""`oda-sft data contamination NAME`: which samples overlap the questions of the benchmarks an evaluation
runs, by benchmark, computed once per file and benchmark version and kept in the dataset's entry."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from oda_sft.cli.options import DatasetDirOpt, JsonOpt, optional
from oda_sft.errors import DatasetError, UsageError

if TYPE_CHECKING:
    from oda_sft.data.contamination.store import Overlap
    from oda_sft.data.registry.dataset_dir import ResolvedDataset

SHOWN = 5  # matches printed per benchmark in the table (--json has every sample)


def contamination(
    name: Annotated[str, typer.Argument(help="A dataset registered in dataset_info.json.")],
    dataset_dir: DatasetDirOpt,
    model: Annotated[
        str, typer.Option("--model", "-m", help="Whose evaluation: llama, qwen, qwen3 or tiny (its benchmarks).")
    ] = "llama",
    suite: Annotated[str, typer.Option(help="general, math, code, reasoning or all.")] = "all",
    benchmarks: Annotated[
        str | None, typer.Option(help="Comma-separated benchmark names (docs/eval.md), instead of --suite.")
    ] = None,
    opencompass: Annotated[
        Path | None, optional(help="The opencompass program or its venv (as `oda-sft eval --opencompass`).")
    ] = None,
    write_clean: Annotated[
        str | None,
        optional("--write-clean", help="Register the dataset without the overlapping samples under this name."),
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Check a dataset for overlap with the benchmark questions it will be ranked on (docs/data.md)."""
    from oda_sft.data.contamination import store
    from oda_sft.data.contamination.scan import scan
    from oda_sft.data.registry import analysis
    from oda_sft.data.registry.dataset_dir import DatasetDir
    from oda_sft.eval import benchmarks as bench
    from oda_sft.eval import opencompass as oc
    from oda_sft.eval.texts import extract
    from oda_sft.names import check_name
    from oda_sft.util.console import say

    # Names are checked before anything is read: an invalid one gets no `data add` advice that would refuse it,
    # and the clean copy's name is settled before the scan, not after it.
    check_name("dataset", name)
    if write_clean is not None:
        check_name("dataset", write_clean)
        if write_clean == name:
            raise UsageError(f"--write-clean {write_clean} names the dataset being checked: give the clean copy a "
                             f"name of its own, e.g. --write-clean {name}-clean")  # fmt: skip
    if model not in bench.PRESETS:
        raise UsageError(f"unknown --model {model!r}: choose one of {', '.join(bench.PRESETS)}")
    preset = bench.PRESETS[model]
    names = [n.strip() for n in benchmarks.split(",") if n.strip()] if benchmarks else None
    chosen = bench.select(preset, suite, names)
    dataset = DatasetDir.load(dataset_dir).resolve(name)
    if not dataset.registered:
        from oda_sft.datasets_catalog.advice import add_command

        raise DatasetError(
            f"dataset {name!r} is not registered in {dataset.info_path}: register it with "
            f"`{add_command(name, dataset_dir)}`"
        )
    if write_clean is not None and DatasetDir.load(dataset_dir).resolve(write_clean).registered:
        raise UsageError(f"--write-clean {write_clean}: a dataset of that name is already registered in "
                         f"{dataset.info_path}: choose another name")  # fmt: skip
    path = analysis.data_file(dataset)
    install = oc.describe(oc.locate(opencompass))
    texts = extract.load(preset, chosen, install)
    kept = store.stored(dataset.meta, dataset.sha256)
    results = {b: o for b, o in kept.items() if b in texts and o.benchmark_sha256 == texts[b].sha256}
    todo = {b: t for b, t in texts.items() if b not in results}
    count = int((dataset.meta.get(store.KEY) or {}).get("count") or 0)
    if todo:
        say(f"scanning {path} against {', '.join(todo)}")
        found = scan(path, dataset.columns(), {b: t.items for b, t in todo.items()})
        count = found.count
        order = list(todo)
        for b, t in todo.items():
            pairs = sorted((s, i) for s, bi, i in found.matches if order[bi] == b)
            samples = sorted({s for s, _i in pairs})
            firsts: dict[int, int] = {}
            for s, i in pairs:
                firsts.setdefault(s, i)
            shown = sorted(firsts.items())[: store.SHOWN_MATCHES]
            results[b] = store.Overlap(b, t.sha256, len(t.items), samples, shown)
        if dataset.builtin:
            say(f"{name} ships inside oda-sft and is read only: the result is not stored")
        else:
            store.save(dataset, count, {b: results[b] for b in todo})
    else:
        say(f"reusing the stored result for {path} (sha256 {str(dataset.sha256)[:12]}): nothing changed")
    ordered = [results[b.name] for b in chosen]
    if as_json:
        typer.echo(json.dumps(_as_json(name, dataset, count, ordered, texts), indent=2, ensure_ascii=False))
    else:
        typer.echo(_table(name, dataset, count, ordered, texts))
    if write_clean is not None:
        _clean(dataset, write_clean, ordered, as_json)


def _as_json(name: str, dataset: ResolvedDataset, count: int, rows: list[Overlap], texts: Any) -> dict[str, Any]:
    from oda_sft.data.contamination.spec import METHOD

    return {
        "name": name,
        "file": str(dataset.file),
        "sha256": dataset.sha256,
        "count": count,
        "method": METHOD,
        "benchmarks": [
            {
                "name": o.name,
                "items": o.items,
                "benchmark_sha256": o.benchmark_sha256,
                "overlapping": len(o.samples),
                "share": len(o.samples) / count if count else 0.0,
                "samples": o.samples,
                "matches": [{"sample": s, "item": i, "text": texts[o.name].items[i]} for s, i in o.matches],
            }
            for o in rows
        ],
    }


def _table(name: str, dataset: ResolvedDataset, count: int, rows: list[Overlap], texts: Any) -> str:
    from oda_sft.data.contamination.spec import METHOD

    lines = [f"dataset  {name}: {count:,} samples in {dataset.file} (sha256 {str(dataset.sha256)[:12]})",
             f"method   {METHOD}", ""]  # fmt: skip
    width = max([len(o.name) for o in rows] + [9])
    lines.append(f"{'benchmark'.ljust(width)}  {'items':>6}  {'overlapping samples':>20}  share")
    for o in rows:
        share = 100 * len(o.samples) / count if count else 0.0
        lines.append(f"{o.name.ljust(width)}  {o.items:>6,}  {len(o.samples):>20,}  {share:.2f}%")
    for o in rows:
        for s, i in o.matches[:SHOWN]:
            item = " ".join(texts[o.name].items[i].split())
            lines.append(f"  {o.name}: sample #{s} overlaps item #{i}: {item[:90]}")
        if len(o.samples) > SHOWN:
            lines.append(f"  {o.name}: {len(o.samples) - SHOWN:,} more (--json lists every sample)")
    return "\n".join(lines)


def _clean(dataset: ResolvedDataset, new_name: str, rows: list[Overlap], as_json: bool) -> None:
    from oda_sft.data.contamination.clean import write_clean

    removed = sorted({s for o in rows for s in o.samples})
    result = write_clean(dataset, new_name, removed, {o.name: o.benchmark_sha256 for o in rows})
    message = (f"{result.status} {new_name}: {result.records:,} records ({len(removed):,} overlapping removed from "
               f"{dataset.name}), {result.file}")  # fmt: skip
    typer.echo(message, err=as_json)
