"""ODA's published leaderboard of July 2025, computed here from its spreadsheet's cells by the site's rules.

The cells ship as package data (oda_leaderboard_0726.json, written by scripts/extract_oda_leaderboard.py from
`data/0726.xlsx` of OpenDataArena/OpenDataArena.github.io, gh-pages 0437f13, with its sha256); the values are
never copied from the site's output: tests/unit/test_oda_site.py checks that these rules reproduce every value
and rank of its processed_leaderboard_data.json. Read lazily, once: `--help` and `list-datasets` never load it.
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass
from importlib import resources
from typing import Any

from oda_sft.datasets_catalog.oda_release import NAME_PREFIX, PREFIX, SUBSETS
from oda_sft.eval.oda_site.rules import MODEL_ROWS, OVERALL, SiteRow, ranked, sheet_rows

DATA_FILE = "oda_leaderboard_0726.json"
MODELS: tuple[str, ...] = tuple(MODEL_ROWS)  # the presets ODA published a leaderboard for: llama, qwen
ERA = "2025"  # the recipe ODA's published rows were trained with (RECIPE.md)


@functools.cache
def _data() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(resources.files(__package__).joinpath(DATA_FILE).read_text("utf-8"))
    return loaded


def source() -> dict[str, str]:
    """Where the cells come from: repo, branch, commit, path and sha256 of the spreadsheet."""
    found: dict[str, str] = _data()["source"]
    return found


def cite() -> str:
    s = source()
    return f"{s['repo']} {s['branch']} {s['commit'][:7]}, {s['path']}"


@functools.cache
def rows(model: str) -> tuple[SiteRow, ...]:
    """The published rows for a preset (llama or qwen): instruct, base, then the datasets in sheet order."""
    return tuple(sheet_rows(model, _data()["sheets"][model]))


@dataclass(frozen=True)
class Standing:
    """A dataset's published row on one base model: what a user's run of it is to reproduce."""

    model: str
    name: str
    overall: float  # as the site publishes it (two decimals)
    rank: int
    of: int  # datasets ranked

    def text(self) -> str:
        return f"{self.model} {self.overall:.2f} (rank {self.rank} of {self.of})"

    def as_dict(self) -> dict[str, Any]:
        return {"overall": self.overall, "rank": self.rank, "of": self.of}


@functools.cache
def _standings(model: str) -> dict[str, Standing]:
    table = [(k, r) for k, r in ranked(rows(model)) if k is not None]
    return {r.name: Standing(model, r.name, r.published(OVERALL), k, len(table)) for k, r in table}


def standing(name: str) -> dict[str, Standing]:
    """The published rows of a dataset of that exact name, per base model ({} when ODA published none)."""
    return {m: s for m in MODELS if (s := _standings(m).get(name)) is not None}


def leaderboard_name(dataset: str) -> str:
    """The name a dataset has on ODA's leaderboard: a catalog name as it is; a subset of ODA's release
    (`oda:X`, registered as `oda-X`) under the catalog dataset it maps to, else under its own name. Only exact
    names match: a published row is never guessed."""
    for prefix in (PREFIX, NAME_PREFIX):
        if dataset.startswith(prefix):
            subset = dataset[len(prefix) :]
            known = SUBSETS.get(subset)
            return known.catalog if known is not None and known.catalog else subset
    return dataset


def standing_line(dataset: str) -> str:
    """One line for `data add --from oda`: the published row(s) a run of this dataset is to reproduce."""
    name = leaderboard_name(dataset)
    found = standing(name)
    if not found:
        return f"ODA's leaderboard ({cite()}) has no row named {name}: no published number to compare with"
    shown = ", ".join(s.text() for s in found.values())
    model = next(iter(found))
    return (f"ODA's leaderboard ({cite()}) published {name} at overall {shown}: `oda-sft rank --model {model} "
            "--oda` shows its table")  # fmt: skip
