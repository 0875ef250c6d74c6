"""The per-dataset fixtures under tests/fixtures/catalog: a few synthetic rows with each catalog dataset's
published column names and nesting, under its published file names (the dataset's `Evidence`, not its
conversion: tests/unit/test_catalog_evidence.py checks that), written out in the file format the repo uses.

A fixture is {"files": {repo path: [rows]}, "expected": [records], "dropped": {reason: n}, "noted": {note: n}}."""

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


def rows(name: str) -> list[dict[str, Any]]:
    """Every row of the fixture, in file order."""
    return [row for _, file_rows in sorted(load(name)["files"].items()) for row in file_rows]


def files(name: str) -> dict[str, bytes]:
    """The fixture's files as their bytes, by repo path."""
    return {path: encode(path, rows) for path, rows in load(name)["files"].items()}


def materialize(name: str, root: Path) -> list[tuple[str, Path]]:
    """Write the fixture's files under root at their repo paths; [(repo path, local path)], in path order."""
    written = []
    for repo_path, data in sorted(files(name).items()):
        path = root / repo_path
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        written.append((repo_path, path))
    return written


def column_paths(rows: list[dict[str, Any]]) -> set[str]:
    """Every column and nested field the rows use: "col", "col.key" (a struct), "col[].key" (a list of structs)."""
    found: set[str] = set()

    def walk(prefix: str, value: Any) -> None:
        if isinstance(value, dict):
            for key, inner in value.items():
                found.add(f"{prefix}.{key}")
                walk(f"{prefix}.{key}", inner)
        elif isinstance(value, list):
            for item in value:
                if isinstance(item, dict):
                    for key, inner in item.items():
                        found.add(f"{prefix}[].{key}")
                        walk(f"{prefix}[].{key}", inner)

    for row in rows:
        for key, value in row.items():
            found.add(key)
            walk(key, value)
    return found
