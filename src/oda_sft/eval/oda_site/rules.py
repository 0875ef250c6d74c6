"""The rules ODA's leaderboard site computes and ranks its published values by, reproduced exactly.

Read off OpenDataArena/OpenDataArena.github.io, branch gh-pages, commit 0437f13 (2025-07-27):
`data/process_excel.py` (PE below) turns the spreadsheet `data/0726.xlsx` into the values it publishes
(`data/processed_leaderboard_data.json`); `js/app.js` (JS) ranks them in the browser. docs/eval.md lists where
these rules differ from oda-sft's own. Pure logic: the cells come from published.py (the shipped sheets) or
from a user's runs (compare.py).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from oda_sft.eval.benchmarks import DOMAINS

OVERALL = "overall"
METRICS: tuple[str, ...] = (*DOMAINS, OVERALL)

# PE 762-767: each domain is a fixed range of sheet columns (0-based: D is 3). The spreadsheet's headers put
# HumanEval in column M (12) and ARC-c in Q (16), so the site averages HumanEval into math and ARC-c into code;
# column V (21) has no benchmark.
DOMAIN_COLUMNS: dict[str, tuple[int, ...]] = {
    "general": (3, 4, 5, 6),
    "math": (7, 8, 9, 10, 11, 12),
    "code": (13, 14, 15, 16),
    "reasoning": (17, 18, 19, 20, 21),
}
# The benchmark in each column, as oda-sft names it, and the column's title in the sheet (its row 2). MATH
# (`math`) and the Qwen3-only sets have no column: the site never counts them.
COLUMNS: dict[int, tuple[str, str]] = {
    3: ("drop", "Drop"),
    4: ("ifeval", "IFEval"),
    5: ("agieval", "AGIEval"),
    6: ("mmlu_pro", "mmlu pro"),
    7: ("gsm8k", "GSM8k"),
    8: ("math500", "MATH500"),
    9: ("omni_math", "Omni-MATH"),
    10: ("olympiadbench_math", "OlympiadBenchMath"),
    11: ("aime2024", "AIME2024"),
    12: ("humaneval", "humaneval"),
    13: ("mbpp", "MBPP"),
    14: ("livecodebench", "LCB(v5)"),
    15: ("humaneval_plus", "humaneval+"),
    16: ("arc_c", "ARC-C"),
    17: ("bbh", "BBH"),
    18: ("gpqa", "GPQA"),
    19: ("calm", "CaLM"),
    20: ("korbench", "KOR-Bench"),
}
SITE_DOMAIN: dict[str, str] = {b: d for d, cols in DOMAIN_COLUMNS.items() for c in cols if c in COLUMNS
                               for b in (COLUMNS[c][0],)}  # fmt: skip

FIRST_ROW = 3  # PE 371: datasets start at B4
SEED_ROWS = 4  # PE 394-401, 653: a dataset is the 4 rows from its name down, whatever they hold
BASE_ROW, INSTRUCT_ROW = 371, 372  # PE 65-66: fixed rows (0-based) of the sheet
NOT_NAMES = frozenset({"model", "dataset", "accuracy", "general", "math", "code", "reasoning", "base", ""})  # PE 383
# PE 113-118, 250-255: the names the site gives the two fixed rows.
MODEL_ROWS: dict[str, tuple[str, str]] = {
    "llama": ("Llama-3.1-8B", "Llama-3.1-8B-Instruct"),
    "qwen": ("Qwen2.5-7B", "Qwen2.5-7B-Instruct"),
}
# pandas.read_excel reads these strings as NaN (its default na_values), so the site skips them.
_NA_TEXT = frozenset({
    "", "#N/A", "#N/A N/A", "#NA", "-1.#IND", "-1.#QNAN", "-NaN", "-nan", "1.#IND", "1.#QNAN", "<NA>", "N/A", "NA",
    "NULL", "NaN", "None", "n/a", "nan", "null",
})  # fmt: skip

Cell = float | int | str | bool | None
SheetRow = Sequence[Cell]


def number(cell: Cell) -> float | None:
    """A cell as the site counts it (PE 409-419): empty (NaN) is skipped, else float() of it, else skipped."""
    if cell is None or (isinstance(cell, str) and cell in _NA_TEXT):
        return None
    try:
        return float(cell)
    except ValueError:
        return None


def _pairwise(values: Sequence[float]) -> float:
    """numpy's pairwise summation (numpy/_core/src/umath/loops_utils.h.src, pairwise_sum)."""
    n = len(values)
    if n < 8:
        total = 0.0
        for v in values:
            total += v
        return total
    if n <= 128:
        acc = list(values[:8])
        i = 8
        while i < n - n % 8:
            for j in range(8):
                acc[j] += values[i + j]
            i += 8
        total = ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]))
        for v in values[i:]:
            total += v
        return total
    half = n // 2
    half -= half % 8
    return _pairwise(values[:half]) + _pairwise(values[half:])


def np_mean(values: Sequence[float]) -> float:
    """numpy.mean of a 1-D float64 array, to the last bit: add.reduce starts from 0.0 and adds the pairwise
    sum; then one division. (The site's values round to two decimals: the summation order can move one.)"""
    return (0.0 + _pairwise(values)) / len(values)


def np_round(value: float, decimals: int) -> float:
    """Python's round() of a numpy float64 (PE 125, 624): numpy.round, i.e. rint(value * 10**d) / 10**d,
    halves to even after the multiplication (not Python's correctly rounded decimal round)."""
    scale = 10.0**decimals
    return round(value * scale) / scale  # round() of a float is round-half-even, as rint


def js_round(value: float, decimals: int = 1) -> float:
    """JS `Math.round(x * 10) / 10` (JS 854-858): halves go up (towards +infinity)."""
    scaled = value * 10.0**decimals
    low = math.floor(scaled)
    return (low + 1 if scaled - low >= 0.5 else low) / 10.0**decimals


def pooled(rows: Sequence[SheetRow], columns: Sequence[int]) -> list[float]:
    """Every seed's cells of one domain in one list, row by row (PE 404-420): the domain's value is their mean,
    so a seed with more filled cells weighs more, and an empty cell is left out, not counted as 0."""
    found = []
    for row in rows:
        for col in columns:
            value = number(row[col]) if col < len(row) else None
            if value is not None:
                found.append(value)
    return found


@dataclass
class SiteRow:
    """One row of the site's table: a dataset (its 4 sheet rows, or a user's runs), the base or the instruct
    model. `values` are unrounded; the site publishes them rounded (`published`)."""

    name: str
    kind: str  # "dataset", "base" or "instruct"
    cells: dict[str, list[float]]
    values: dict[str, float] = field(default_factory=dict)
    origin: str = "oda"  # "oda": ODA's published row; "run": a user's runs under the same rules
    category: str = ""  # the sheet's column A section (general, math, code, reasoning), ODA's rows only
    sheet_row: int | None = None  # 1-based, as the spreadsheet shows it
    extra: dict[str, Any] = field(default_factory=dict)  # seeds, run dirs: the caller's

    def published(self, metric: str) -> float:
        """The value as processed_leaderboard_data.json holds it: rounded to two decimals (PE 624-628)."""
        return np_round(self.values[metric], 2)


def compute(rows: Sequence[SheetRow]) -> tuple[dict[str, list[float]], dict[str, float]]:
    """A row's pooled cells and values: each domain the mean of its cells (0 with none, PE 461-464); overall
    the mean of the domain values above 0 (PE 467-468), so a domain without cells lowers no one's overall."""
    cells = {d: pooled(rows, cols) for d, cols in DOMAIN_COLUMNS.items()}
    values = {d: np_mean(c) if c else 0.0 for d, c in cells.items()}
    valid = [values[d] for d in DOMAINS if values[d] > 0]
    values[OVERALL] = np_mean(valid) if valid else 0.0
    return cells, values


def _categories(sheet: Sequence[SheetRow]) -> list[tuple[str, int]]:
    """PE 836-863: column A's section names and the row each starts at; a section runs to the next one."""
    starts: dict[str, int] = {}
    for i, row in enumerate(sheet):
        text = str(row[0]).strip().lower() if row and row[0] is not None else ""
        if text in DOMAINS:
            starts[text] = i
    return sorted(starts.items(), key=lambda item: item[1])


def _category(index: int, sections: list[tuple[str, int]], total: int) -> str:
    for k, (name, start) in enumerate(sections):
        end = sections[k + 1][1] - 1 if k + 1 < len(sections) else total - 1
        if start <= index <= end:
            return name
    return "unknown"


def sheet_rows(model: str, sheet: Sequence[SheetRow]) -> list[SiteRow]:
    """The rows the site publishes for one sheet, in its file's order: instruct, base, then the datasets
    (PE 657-670). A dataset whose overall is 0 (no cells) is left out (PE 646)."""
    base_name, instruct_name = MODEL_ROWS[model]
    out = []
    for name, kind, index in ((instruct_name, "instruct", INSTRUCT_ROW), (base_name, "base", BASE_ROW)):
        if index < len(sheet):  # PE 68-80: a sheet without the row publishes zeros
            cells, values = compute([sheet[index]])
        else:
            cells, values = {d: [] for d in DOMAIN_COLUMNS}, dict.fromkeys(METRICS, 0.0)
        out.append(SiteRow(name, kind, cells, values, sheet_row=index + 1))
    sections = _categories(sheet)
    current = FIRST_ROW
    while current < len(sheet):  # PE 375-655
        row = sheet[current]
        cell = row[1] if len(row) > 1 else None
        label = str(cell).strip() if cell is not None and not (isinstance(cell, float) and math.isnan(cell)) else None
        if label is None or label.lower() in NOT_NAMES:
            current += 1
            continue
        block = sheet[current : current + SEED_ROWS]
        if len(block) < SEED_ROWS:
            break
        cells, values = compute(block)
        if values[OVERALL] > 0:
            category = _category(current, sections, len(sheet))
            out.append(SiteRow(label, "dataset", cells, values, category=category, sheet_row=current + 1))
        current += SEED_ROWS
    return out


def ranked(rows: Sequence[SiteRow], by: str = OVERALL) -> list[tuple[int | None, SiteRow]]:
    """The site's table: instruct and base on top, unranked; the datasets by their published value, highest
    first, in a stable sort (JS 159-214); each ranked by that value rounded to one decimal, ties sharing a
    rank and the next rank skipping (1, 2, 2, 4: JS 1118-1201)."""
    fixed = [r for r in rows if r.kind == "instruct"] + [r for r in rows if r.kind == "base"]
    others = sorted((r for r in rows if r.kind == "dataset"), key=lambda r: -r.published(by))
    ranks: list[int | None] = []
    previous: float | None = None
    for index, row in enumerate(others):
        score = js_round(row.published(by))
        ranks.append(index + 1 if previous is None or score != previous else ranks[-1])
        previous = score
    return [(None, r) for r in fixed] + list(zip(ranks, others, strict=True))
