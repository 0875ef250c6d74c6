"""`oda-sft list-datasets`: the catalog and the datasets registered in the dataset dir."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import typer

from oda_sft.cli.options import DatasetDirOpt, JsonOpt
from oda_sft.datasets_catalog import DATASETS
from oda_sft.util import tables

if TYPE_CHECKING:
    from oda_sft.data.registry.dataset_dir import DatasetDir


def dataset_rows(datasets: DatasetDir) -> list[dict[str, Any]]:
    from oda_sft.data.registry import hashing

    with hashing.batch():  # the sha256 cache is written once, whatever the number of datasets
        return _rows(datasets)


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


def format_table(rows: list[dict[str, Any]]) -> str:
    headers = ["name", "affiliation", "hf_id", "mode", "source", "registered"]
    cells = [[str(r[h]) if h != "registered" else ("yes" if r[h] else "no") for h in headers] for r in rows]
    return tables.format_table([h.upper() for h in headers], cells)


def list_datasets(dataset_dir: DatasetDirOpt, as_json: JsonOpt = False) -> None:
    """List the catalog's long-CoT datasets, the built-in demo and the datasets registered in the dataset dir."""
    from oda_sft.data.registry.dataset_dir import DatasetDir

    rows = dataset_rows(DatasetDir.load(dataset_dir))
    typer.echo(json.dumps(rows, indent=2, ensure_ascii=False) if as_json else format_table(rows))
