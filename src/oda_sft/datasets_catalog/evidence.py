"""The public evidence for each catalog dataset's schema and layout, and for what ODA trained on.

The records are data, kept in evidence.toml beside this module (where they were gathered and how is said
there); this module reads them into `Evidence` and refuses a field Evidence does not have. docs/data.md shows
them as a table.
"""

from __future__ import annotations

import tomllib
from dataclasses import fields
from pathlib import Path
from typing import Any

from oda_sft.datasets_catalog.schema import Evidence

SOURCE = Path(__file__).with_name("evidence.toml")
_FIELDS = {f.name for f in fields(Evidence)}
_TUPLES = ("read_from", "columns", "files", "unconfirmed", "unconfirmed_files")


def _evidence(
    path: Path, name: str, record: dict[str, Any], records: dict[str, Any], sources: dict[str, str]
) -> Evidence:
    if "same_as" in record:
        record = {**records[record["same_as"]], **{k: v for k, v in record.items() if k != "same_as"}}
    if unknown := sorted(set(record) - _FIELDS):
        raise ValueError(f"{path}: {name} has {', '.join(unknown)}, which Evidence has no field for")

    def cite(text: str) -> str:
        for key, value in sources.items():
            text = text.replace("{" + key + "}", value)
        return text

    values = dict(record)
    values["read_from"] = [cite(s) for s in record["read_from"]]
    if "oda_source" in record:
        values["oda_source"] = cite(record["oda_source"])
    for key in _TUPLES:
        if key in values:
            values[key] = tuple(values[key])
    return Evidence(**values)


def load(path: Path) -> dict[str, Evidence]:
    data = tomllib.loads(path.read_text(encoding="utf-8"))
    records, sources = data["datasets"], data["sources"]
    return {name: _evidence(path, name, record, records, sources) for name, record in records.items()}


EVIDENCE: dict[str, Evidence] = load(SOURCE)
