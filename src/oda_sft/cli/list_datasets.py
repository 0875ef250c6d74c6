"""`oda-sft list-datasets`: the catalog and the datasets registered in the dataset dir."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Annotated, Any

import typer

from oda_sft.cli.options import DatasetDirOpt, JsonOpt
from oda_sft.datasets_catalog import DATASETS
from oda_sft.datasets_catalog.oda_release import REPO, SUBSETS, subset_of
from oda_sft.util import tables

if TYPE_CHECKING:
    from oda_sft.data.registry.dataset_dir import DatasetDir


def dataset_rows(datasets: DatasetDir, every: bool = False) -> list[dict[str, Any]]:
    """The catalog, the registered and the built-in datasets; `every` adds ODA's release (its subsets, and the
    subset of each catalog dataset)."""
    from oda_sft.data.registry import hashing

    with hashing.batch():  # the sha256 cache is written once, whatever the number of datasets
        rows = _rows(datasets)
        _with_overlap(rows, datasets)
    if every:
        rows = _with_oda(rows, datasets)
    return rows


def _with_overlap(rows: list[dict[str, Any]], datasets: DatasetDir) -> None:
    """`overlap`: {benchmark: samples} where `data contamination` checked the file as it is now."""
    from oda_sft.data.contamination.store import entry_counts

    for row in rows:
        counts = (
            entry_counts(datasets.entry(row["name"]), datasets.data_file(row["name"])) if row["registered"] else None
        )
        if counts is not None:
            row["overlap"] = counts


def _with_oda(rows: list[dict[str, Any]], datasets: DatasetDir) -> list[dict[str, Any]]:
    rows = _subsets(rows, datasets)
    from oda_sft.eval.oda_site import published  # loaded only for --all

    for row in rows:  # the number a run of it is to reproduce, where ODA's leaderboard published one
        found = published.standing(published.leaderboard_name(row["name"]))
        row["oda_published"] = {m: s.as_dict() for m, s in found.items()}
    return rows


def _subsets(rows: list[dict[str, Any]], datasets: DatasetDir) -> list[dict[str, Any]]:
    for row in rows:
        subset = DATASETS[row["name"]].oda_subset if row["source"] == "catalog" else subset_of(row["name"])
        known = SUBSETS.get(subset or "")
        row.update(oda_subset=subset or "", oda_rows=known.rows if known else None, long_cot=row["name"] in DATASETS)
    listed = {r["name"] for r in rows}
    for s in SUBSETS.values():
        if s.registered_as in listed:
            continue
        rows.append(
            {
                "name": s.registered_as,
                "affiliation": "OpenDataArena",
                "hf_id": f"{REPO} ({s.name}/)",
                "mode": DATASETS[s.catalog].mode if s.catalog else "standard",
                "source": f"oda:{s.name}",
                "registered": datasets.entry(s.registered_as) is not None,
                "oda_subset": s.name,
                "oda_rows": s.rows,
                "long_cot": bool(s.catalog),
            }
        )
    return rows


def _rows(datasets: DatasetDir) -> list[dict[str, Any]]:
    from oda_sft.data.registry.dataset_dir import builtin_dir, builtin_names

    rows: list[dict[str, Any]] = []
    for d in DATASETS.values():
        rows.append(
            {
                "name": d.name,
                "affiliation": d.affiliation,
                "hf_id": d.hf_id
                + (f" ({d.hf_file})" if d.hf_file else "")
                + (f" [split {d.hf_split}]" * bool(d.hf_split)),
                "mode": d.mode,
                "source": "catalog",
                "registered": datasets.entry(d.name) is not None,
            }
        )
    for name in datasets.names():
        if name in DATASETS:
            continue
        rows.append(
            {
                "name": name,
                "affiliation": "",
                "hf_id": "",
                "mode": datasets.known_mode(name),
                "source": "registered",
                "registered": True,
            }
        )
    for name in builtin_names():
        if datasets.entry(name) is None:  # shipped inside the package: always there, whatever the dataset dir
            rows.append(
                {
                    "name": name,
                    "affiliation": "",
                    "hf_id": "",
                    "mode": builtin_dir().known_mode(name),
                    "source": "built in",
                    "registered": True,
                }
            )
    return rows


def _cell(row: dict[str, Any], key: str) -> str:
    value = row.get(key)
    if isinstance(value, bool):
        return "yes" if value else "no"
    if key == "overlap":
        from oda_sft.data.contamination.store import describe_counts

        return describe_counts(row.get("overlap")) or "-"
    if key == "oda_rows":
        return f"{value:,}" if isinstance(value, int) else "-"
    if key.startswith("oda_published:"):
        got = value.get(key.split(":", 1)[1]) if isinstance(value, dict) else None
        return f"{got['overall']:.2f} (#{got['rank']}/{got['of']})" if got else "-"
    return "-" if key == "oda_subset" and not value else str(value)


def _value(row: dict[str, Any], key: str) -> Any:
    return row["oda_published"] if key.startswith("oda_published:") else row.get(key)


def format_table(rows: list[dict[str, Any]]) -> str:
    headers = ["name", "affiliation", "hf_id", "mode", "source", "registered"]
    titles = [h.upper() for h in headers]
    if rows and "oda_subset" in rows[0]:
        headers = ["name", "oda_subset", "oda_rows", "long_cot", "mode", "source", "registered"]
        titles = [h.upper() for h in headers] + ["ODA LLAMA", "ODA QWEN"]  # published overall (rank/of)
        headers += ["oda_published:llama", "oda_published:qwen"]
    if any("overlap" in r for r in rows):
        headers.append("overlap")
        titles.append("OVERLAP")
    cells = [[_cell({h: _value(r, h)}, h) for h in headers] for r in rows]
    table = tables.format_table(titles, cells)
    if "oda_published:llama" in headers:
        table += (
            "\nODA LLAMA/QWEN: the overall value and rank ODA's leaderboard published (July 2025, by its site's rules)"
        )
        table += "; `oda-sft rank --model llama --oda` shows the table"
    return table


def list_datasets(
    dataset_dir: DatasetDirOpt,
    as_json: JsonOpt = False,
    every: Annotated[
        bool,
        typer.Option(
            "--all",
            help="Add ODA's normalised release: every known subset (`oda-sft data add oda:SUBSET`), and the subset "
            "of each catalog dataset (`--from oda`).",
        ),
    ] = False,
) -> None:
    """List the catalog's long-CoT datasets, the built-in demo and the datasets registered in the dataset dir."""
    from oda_sft.data.registry.dataset_dir import DatasetDir

    rows = dataset_rows(DatasetDir.load(dataset_dir), every)
    typer.echo(json.dumps(rows, indent=2, ensure_ascii=False) if as_json else format_table(rows))
