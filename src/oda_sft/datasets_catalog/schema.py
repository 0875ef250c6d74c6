"""What a catalog dataset record holds: its declared conversion, and the public evidence it rests on."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from oda_sft.presets import Mode


@dataclass(frozen=True)
class Conversion:
    """How one catalog dataset becomes Alpaca records: declared here, never guessed from the data.

    docs/data.md lists every dataset's choice; data/sources/catalog_conversion.py carries it out. Where ODA's
    row count shows what it trained on, the conversion reproduces that (ranking comparability is the point);
    elsewhere the choice that keeps the long reasoning trace wins, and `why` says so.
    """

    files: tuple[str, ...]  # glob patterns of the repo files that hold what upstream trained on
    prompt: str  # the column with the user's prompt; for chat data, the column with the turns
    response: str = ""  # the column with the reasoning trace and the answer (chat data: the last assistant turn)
    responses: tuple[str, ...] = ()  # several response columns: one record per column, each with `prompt`
    chat: bool = False  # `prompt` holds a list of turns (role/content or from/value)
    also: tuple[str, ...] = ()  # other names the `prompt` column has had across the repo's revisions
    system: str = ""  # a fixed system prompt the authors trained with
    system_column: str = ""  # a column holding each record's system prompt
    pick_from: str = ""  # a list column of candidate responses: one is used per row (see below)
    pick_any: tuple[str, ...] = ()  # per-candidate flag lists: a candidate qualifies if one of them is true
    prefer_all: tuple[str, ...] = ()  # per-candidate flag lists preferred all true; else the first qualifying
    trace: tuple[str, str] | None = None  # the trace's tags: opened and never closed is counted (and kept)
    why: str = ""  # the choice, in one line

    @property
    def per_row(self) -> int:
        """Records one row yields when nothing is left out."""
        return len(self.responses) or 1

    def reads(self) -> tuple[str, ...]:
        """Every column the conversion reads."""
        names = [self.prompt, *self.also, self.response, *self.responses, self.system_column]
        names += [self.pick_from, *self.pick_any, *self.prefer_all]
        return tuple(dict.fromkeys(n for n in names if n))

    def describe(self) -> str:
        """One line, for the summary printed before a fetch writes anything."""
        prompt = f"{self.prompt} (chat turns)" if self.chat else self.prompt
        if self.responses:
            response = f"{', '.join(self.responses)} (one record each)"
        else:
            response = self.pick_from or self.response or "the last assistant turn"
        parts = [f"instruction <- {prompt}", f"output <- {response}"]
        if self.pick_from:
            pick = f"the first candidate with {' or '.join(self.pick_any)} true" if self.pick_any else "the first"
            if self.prefer_all:
                pick += f", preferring one with {' and '.join(self.prefer_all)} true"
            parts.append(pick)
        if self.system:
            parts.append(f"system <- {self.system!r}")
        elif self.system_column:
            parts.append(f"system <- {self.system_column}")
        if self.trace:
            parts.append(f"a trace opened with {self.trace[0]} and never closed is counted, not dropped")
        return "; ".join(parts)


@dataclass(frozen=True)
class Evidence:
    """What public sources show of a dataset's published schema and layout, and of what ODA trained on.

    Read without Hub access, from copies of Hugging Face pages and public code (docs/data.md has the table).
    Fixtures are built from `columns` and `files`, never from the conversion; tests/unit/test_catalog_evidence.py
    checks that neither a fixture nor a conversion uses a column this record does not list.
    """

    read_from: tuple[str, ...]  # the pages and code read (HF pages with the commit they show; index ids)
    at: str  # the revision (or date) the sources show
    columns: tuple[str, ...]  # published columns; nested fields as "col[].key" (list of dicts) or "col.key"
    files: tuple[str, ...]  # the published data files, or the config's glob where no file list was shown
    rows: Mapping[str, int] = field(default_factory=dict)  # published file or config glob -> its row count
    unconfirmed: tuple[str, ...] = ()  # columns the conversion relies on that no public source shows
    unconfirmed_files: tuple[str, ...] = ()  # file patterns the conversion relies on that no source shows
    oda_rows: int | None = None  # records ODA trained on (its leaderboard's size_precise), when published
    oda_source: str = ""  # where that count, and what it says about ODA's choice, was read
    note: str = ""  # what else is unverified (role strings, tags, shard names)


@dataclass(frozen=True)
class CatalogDataset:
    name: str
    affiliation: str
    hf_id: str
    mode: Mode = "long"
    hf_file: str = ""  # a single file inside the HF repo, when upstream trained on one
    hf_split: str = ""
    conversion: Conversion | None = None  # how `oda-sft data add NAME` converts it (all 17 declare one)
    evidence: Evidence | None = None  # what public sources show of its schema and of ODA's choice
    oda_subset: str = ""  # its folder in ODA's normalised release (oda_release.py), where known
