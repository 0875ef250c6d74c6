"""A user's runs under the site's rules, and whether they compare with ODA's published rows.

A run's row is built as the site builds a dataset's: one sheet-like row per seed, each benchmark's score in
the spreadsheet's column (rules.COLUMNS), pooled per domain by rules.compute. It compares with ODA's
published rows when it was trained with the recipe ODA's rows were (the era, published.ERA) and evaluated
with the settings ODA's scripts use for that base model (the fork, the configs, the generation settings and
the judges of eval/benchmarks.py, which docs/eval.md cites); otherwise it is shown apart, saying what differs.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from oda_sft.eras import era_of
from oda_sft.errors import RunStateError
from oda_sft.eval.benchmarks import BY_NAME, PRESETS
from oda_sft.eval.leaderboard import Board, Group, Row, Scored
from oda_sft.eval.oda_site.published import ERA, MODELS
from oda_sft.eval.oda_site.rules import COLUMNS, SheetRow, SiteRow, compute
from oda_sft.eval.render import settings_of
from oda_sft.runs.manifest import MANIFEST_NAME, read

SHEET_BENCHMARKS: tuple[str, ...] = tuple(name for name, _ in COLUMNS.values())
# Settings that do not change a score: the chat template is compared nowhere (ODA rewrote it: docs/eval.md).
_NOT_COMPARED = frozenset({"chat_template_sha256"})


def run_era(run_dir: Path) -> str:
    """The recipe era a run was trained with, as its manifest records it (eras.era_of: none is the current)."""
    try:
        return era_of(read(run_dir / MANIFEST_NAME))
    except RunStateError as exc:  # an era this oda-sft does not know never compares
        return f"unknown ({exc})"


def published_settings(model: str) -> dict[str, Any]:
    """The settings ODA's scripts evaluate a `model` checkpoint with, on the spreadsheet's benchmarks."""
    return settings_of(PRESETS[model], "all", tuple(BY_NAME[b] for b in SHEET_BENCHMARKS), "")


def setting_differences(group: Group) -> list[str]:
    """How a group's evaluation settings differ from the published ones ([] when they match)."""
    if group.preset not in MODELS:
        return [f"ODA published no leaderboard for {group.preset} (only {', '.join(MODELS)})"]
    want = published_settings(group.preset)
    have = group.settings
    out = []
    if group.opencompass.get("fork") is not True:
        out.append(f"evaluated with OpenCompass {group.opencompass.get('version', '?')} without ODA's fork")
    names = [n for n in have.get("benchmarks") or [] if isinstance(n, str)]
    missing = [b for b in SHEET_BENCHMARKS if b not in names]
    if missing:
        out.append(f"not evaluated on {', '.join(missing)}")
    for key, label in (("configs", "config"), ("judges", "judge")):
        given: dict[str, Any] = have[key] if isinstance(have.get(key), dict) else {}
        for bench, value in want[key].items():
            if bench in names and given.get(bench) != value:
                out.append(f"{bench} {label} {given.get(bench)!r}, ODA's {value!r}")
    given_gen: dict[str, Any] = have["generation"] if isinstance(have.get("generation"), dict) else {}
    for key, value in want["generation"].items():
        if key not in _NOT_COMPARED and given_gen.get(key) != value:
            out.append(f"generation {key} {given_gen.get(key)!r}, ODA's {value!r}")
    return out


def _sheet_row(run: Scored) -> SheetRow:
    scores = run.record.get("scores")
    scores = scores if isinstance(scores, dict) else {}
    width = max(COLUMNS) + 1
    row: list[Any] = [None] * width
    for col, (bench, _) in COLUMNS.items():
        value = scores.get(bench)
        row[col] = value if isinstance(value, int | float) and not isinstance(value, bool) else None
    return row


def site_row(label: str, runs: list[Scored], kind: str = "dataset") -> SiteRow:
    """A user's row: its runs' scores as the sheet's seed rows (the site pools every seed's cells)."""
    cells, values = compute([_sheet_row(r) for r in runs])
    extra = {"seeds": [r.seed for r in runs], "runs": [str(r.run_dir) for r in runs]}
    return SiteRow(label, kind, cells, values, origin="run", extra=extra)


@dataclass
class Apart:
    """A user's row that does not compare with ODA's published ones, and why."""

    name: str
    eval_id: str
    reasons: list[str]
    row: SiteRow


def _row_reasons(row: Row) -> list[str]:
    eras = sorted({run_era(r.run_dir) for r in row.runs if not r.base})
    return [f"trained with the {e} recipe, ODA's rows with the {ERA} one" for e in eras if e != ERA]


def user_rows(board: Board) -> tuple[list[SiteRow], list[Apart]]:
    """Every row of the user's board under the site's rules: those that compare, and those apart."""
    together: list[SiteRow] = []
    apart: list[Apart] = []
    for group in board.groups:
        differs = setting_differences(group)
        members = [(r, "dataset") for r in group.rows] + ([(group.base, "base")] if group.base else [])
        for row, kind in members:
            made = site_row(f"{row.label} (yours)", row.runs, kind)
            made.extra["eval_id"] = group.eval_id
            reasons = differs + (_row_reasons(row) if kind == "dataset" else [])
            if reasons:
                apart.append(Apart(made.name, group.eval_id, reasons, made))
            else:
                together.append(made)
    return together, apart


def group_rows(group: Group) -> list[SiteRow]:
    """One group of the user's own board under the site's rules (`rank --rules oda-site`)."""
    out = [site_row(r.label, r.runs) for r in group.rows]
    if group.base is not None:
        out.append(site_row(group.base.label, group.base.runs, "base"))
    return out
