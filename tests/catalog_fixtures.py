"""The per-dataset fixtures under tests/fixtures/catalog: a few synthetic rows with each catalog dataset's
real column names and nesting, written out in the file format the dataset's repo uses."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "catalog"


def load(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((FIXTURES / f"{name}.json").read_text(encoding="utf-8"))
    return data


def encode(file: str, rows: list[dict[str, Any]]) -> bytes:
    """The rows as the bytes of `file` (.parquet, .jsonl, .json or .csv)."""
    if file.endswith(".parquet"):
        import io

        import pyarrow as pa
        import pyarrow.parquet as pq

        buffer = io.BytesIO()
        pq.write_table(pa.Table.from_pylist(rows), buffer)
        return buffer.getvalue()
    if file.endswith(".jsonl"):
        return "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows).encode()
    if file.endswith(".json"):
        return json.dumps(rows, ensure_ascii=False, indent=1).encode()
    if file.endswith(".csv"):
        import io

        text = io.StringIO()
        writer = csv.DictWriter(text, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
        return text.getvalue().encode()
    raise ValueError(file)


def materialize(name: str, root: Path) -> tuple[str, Path]:
    """Write the fixture under root at its repo path; (repo path, local path)."""
    fixture = load(name)
    path = root / fixture["file"]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(encode(fixture["file"], fixture["rows"]))
    return fixture["file"], path
