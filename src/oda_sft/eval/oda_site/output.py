"""`rank --oda` and `rank --rules oda-site` as a terminal table, JSON, CSV or Markdown.

A view is a list of tables, each a model's (or one evaluation group's) rows under the site's rules, ranked as
the site ranks them, plus the user's rows that do not compare with ODA's (each with what differs). Values are
shown as the site publishes them (two decimals); JSON adds the unrounded value and the cells each stands on.
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass, field
from typing import Any

from oda_sft.eval.benchmarks import DOMAINS
from oda_sft.eval.oda_site.compare import Apart
from oda_sft.eval.oda_site.rules import METRICS, SiteRow, ranked
from oda_sft.util import tables
from oda_sft.util.paths import doc_ref

RULES = "oda-site"


@dataclass
class SiteTable:
    title: str
    model: str
    rows: list[SiteRow]
    eval_id: str | None = None  # a group of the user's own board (--rules oda-site)
    source: dict[str, str] | None = None  # ODA's published rows (--oda)
    apart: list[Apart] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def footer() -> str:
    return (
        "values: ODA's leaderboard site's rules: a domain is the mean of every seed's cells in its spreadsheet "
        "columns (HumanEval in math, ARC-c in code, no MATH), empty cells skipped; overall the mean of the domains "
        "above 0 (—: no cells, where the site shows 0); ranked by the value rounded to one decimal, ties sharing a "
        "rank "
        f'({doc_ref("eval.md")}, "ODA\'s site rules")'
    )


def _origin(row: SiteRow) -> str:
    return "ODA" if row.origin == "oda" else "yours"


def _rank(rank: int | None, row: SiteRow) -> str:
    return str(rank) if rank is not None else (row.kind if row.kind != "dataset" else "-")


def _cell(row: SiteRow, metric: str) -> str:
    """A value as the site shows it, but a domain with no cells is `—`: the site's 0 there is not a score (and
    counts in no overall); JSON keeps the site's 0 beside the empty cells."""
    if metric in DOMAINS and not row.cells.get(metric):
        return "—"
    return format(row.published(metric), ".2f")


def _line(rank: int | None, row: SiteRow) -> list[str]:
    return [_rank(rank, row), row.name, _origin(row), *(_cell(row, m) for m in METRICS)]


def _heads() -> list[str]:
    return ["RANK", "DATASET", "FROM", *(m.upper() for m in METRICS)]


def _apart_text(item: Apart) -> str:
    return (f"{item.name} (evaluation {item.eval_id}; overall {item.row.published('overall'):.2f} under these "
            f"rules): not comparable: {'; '.join(item.reasons)}")  # fmt: skip


def text(view: list[SiteTable], by: str) -> str:
    parts = []
    for table in view:
        body = [_line(k, r) for k, r in ranked(table.rows, by)]
        lines = [f"{table.title}; ranked by {by}", tables.format_table(_heads(), body)]
        lines += [f"  not comparable: {_apart_text(a)}" for a in table.apart]
        lines += [f"  note: {n}" for n in table.notes]
        parts.append("\n".join(lines))
    return "\n\n".join([*parts, footer()])


def markdown(view: list[SiteTable], by: str) -> str:
    parts = []
    for table in view:
        heads = _heads()
        lines = [f"### {table.title}; ranked by {by}", "", "| " + " | ".join(heads) + " |", "|" + "---|" * len(heads)]
        lines += ["| " + " | ".join(v.replace("|", "\\|") for v in _line(k, r)) + " |"
                  for k, r in ranked(table.rows, by)]  # fmt: skip
        notes = [f"not comparable: {_apart_text(a)}" for a in table.apart] + table.notes
        if notes:
            lines += ["", *(f"- {n}" for n in notes)]
        parts.append("\n".join(lines))
    return "\n\n".join([*parts, footer() + "."]) + "\n"


def _row_dict(rank: int | None, row: SiteRow) -> dict[str, Any]:
    return {
        "rank": rank,
        "name": row.name,
        "kind": row.kind,
        "origin": row.origin,
        "category": row.category or None,
        "sheet_row": row.sheet_row,
        "values": {m: row.published(m) for m in METRICS},
        "unrounded": {m: row.values[m] for m in METRICS},
        "cells": {d: len(row.cells[d]) for d in DOMAINS},
        **row.extra,
    }


def as_json(view: list[SiteTable], by: str) -> str:
    out = []
    for table in view:
        out.append({
            "model": table.model,
            "eval_id": table.eval_id,
            "title": table.title,
            "source": table.source,
            "rows": [_row_dict(k, r) for k, r in ranked(table.rows, by)],
            "not_comparable": [{"name": a.name, "eval_id": a.eval_id, "reasons": a.reasons,
                                **_row_dict(None, a.row)} for a in table.apart],
            "notes": table.notes,
        })  # fmt: skip
    return json.dumps({"rules": RULES, "ranked_by": by, "rules_text": footer(), "tables": out}, indent=2)


def as_csv(view: list[SiteTable], by: str) -> str:
    head = ["model", "eval_id", "rank", "name", "kind", "origin", *METRICS, "comparable", "not_comparable_because"]
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(head)
    for table in view:
        for rank, row in ranked(table.rows, by):
            eval_id = table.eval_id or row.extra.get("eval_id", "")
            writer.writerow([table.model, eval_id, "" if rank is None else rank, row.name, row.kind, row.origin,
                             *(row.published(m) for m in METRICS), "yes", ""])  # fmt: skip
        for a in table.apart:
            writer.writerow([table.model, a.eval_id, "", a.name, a.row.kind, a.row.origin,
                             *(a.row.published(m) for m in METRICS), "no", "; ".join(a.reasons)])  # fmt: skip
    return out.getvalue()
