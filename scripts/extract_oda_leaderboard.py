"""Write the cells of ODA's published leaderboard spreadsheet as package data (src/oda_sft/eval/oda_site/).

ODA's leaderboard site (OpenDataArena/OpenDataArena.github.io, branch gh-pages) computes every value it shows
from `data/0726.xlsx` with `data/process_excel.py`, which reads the sheets `llama` and `qwen` through
`pandas.read_excel(..., header=None)`. This script writes those two sheets' cells, row by row as pandas sees
them, so that oda-sft applies the site's rules (src/oda_sft/eval/oda_site/rules.py) without openpyxl or pandas:

- the cached values (openpyxl's data_only, as pandas reads them); an error cell as null (pandas: NaN);
- rows from the first (index 0, as `iloc`) to the last that holds a value (pandas drops trailing empty rows),
  each without its trailing empty cells (pandas pads them back as NaN, which the site skips alike).

Run it with openpyxl installed (not a dependency of oda-sft), e.g.:

    git -C <mirror of OpenDataArena.github.io> show 0437f13:data/0726.xlsx > /tmp/0726.xlsx
    python3 -m venv /tmp/xlsx-venv && /tmp/xlsx-venv/bin/pip install openpyxl
    /tmp/xlsx-venv/bin/python scripts/extract_oda_leaderboard.py /tmp/0726.xlsx
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any

import openpyxl  # type: ignore[import-untyped]

REPO = "OpenDataArena/OpenDataArena.github.io"
BRANCH = "gh-pages"
COMMIT = "0437f13883f5a123f27d1bd73f0cde67a951b9ea"
PATH = "data/0726.xlsx"
SHA256 = "b36d228f0f1a265f01fd7b0257dd7df00491cbc2ccd966aaf49cd801ee55e969"
SHEETS = ("llama", "qwen")  # process_excel.py line 7
OUT = Path(__file__).resolve().parents[1] / "src" / "oda_sft" / "eval" / "oda_site" / "oda_leaderboard_0726.json"


def _cell(cell: Any) -> Any:
    if cell.value is None or cell.data_type == "e":  # empty; an error value (#DIV/0!) is NaN to pandas
        return None
    value = cell.value
    if isinstance(value, bool | str):
        return value
    if isinstance(value, int | float):
        return int(value) if float(value).is_integer() else float(value)  # as pandas' openpyxl reader
    return str(value)  # a date or time: not a number to the site (float() fails on it)


def _rows(sheet: Any) -> list[list[Any]]:
    rows = []
    for row in sheet.iter_rows():
        values = [_cell(c) for c in row]
        while values and values[-1] is None:
            values.pop()
        rows.append(values)
    while rows and not rows[-1]:
        rows.pop()
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("xlsx", type=Path, help=f"{PATH} of {REPO} at {COMMIT[:7]}")
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()
    digest = hashlib.sha256(args.xlsx.read_bytes()).hexdigest()
    if digest != SHA256:
        raise SystemExit(f"{args.xlsx} has sha256 {digest}, not {SHA256} ({PATH} at {COMMIT[:7]})")
    book = openpyxl.load_workbook(args.xlsx, read_only=True, data_only=True)
    sheets = {name: _rows(book[name]) for name in SHEETS}
    source = {"repo": REPO, "branch": BRANCH, "commit": COMMIT, "path": PATH, "sha256": SHA256,
              "rules": "data/process_excel.py", "written_by": "scripts/extract_oda_leaderboard.py"}  # fmt: skip
    # One spreadsheet row per line: a reviewable diff when the source changes.
    lines = ['{"source": ' + json.dumps(source) + ",", ' "sheets": {']
    for i, (name, rows) in enumerate(sheets.items()):
        lines.append(f"  {json.dumps(name)}: [")
        lines += [f"   {json.dumps(r)}" + ("," if j < len(rows) - 1 else "") for j, r in enumerate(rows)]
        lines.append("  ]" + ("," if i < len(sheets) - 1 else ""))
    lines.append(" }}")
    text = "\n".join(lines) + "\n"
    json.loads(text)  # it parses
    fd, tmp = tempfile.mkstemp(dir=args.out.parent, prefix=".oda_leaderboard.")
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(text)
    os.chmod(tmp, 0o644)  # mkstemp's 0600 would ship unreadable to other users
    os.replace(tmp, args.out)
    print(f"wrote {args.out}: " + ", ".join(f"{n} {len(r)} rows" for n, r in sheets.items()))


if __name__ == "__main__":
    main()
