"""The catalog rests on public evidence, not on its own assumptions: each fixture uses only the columns,
nesting and file names the dataset's `Evidence` shows, each conversion reads only such columns, the
conversion's records per published row reproduce ODA's count where both are known, and docs/data.md shows it."""

from __future__ import annotations

import fnmatch
import re
from pathlib import Path

import pytest

from oda_sft.datasets_catalog import DATASETS, Conversion, Evidence

from catalog_fixtures import column_paths, load

REPO = Path(__file__).resolve().parents[2]


def _parts(name: str) -> tuple[Conversion, Evidence]:
    d = DATASETS[name]
    assert d.conversion is not None and d.evidence is not None, f"{name}: no conversion or no evidence"
    return d.conversion, d.evidence


@pytest.mark.parametrize("name", sorted(DATASETS))
def test_the_evidence_says_where_it_was_read(name: str) -> None:
    _, ev = _parts(name)
    assert ev.read_from and ev.at and ev.oda_source, name
    assert ev.files or ev.unconfirmed_files, f"{name}: no file layout, shown or assumed"
    assert not set(ev.unconfirmed) & set(ev.columns), f"{name}: a column both shown and unconfirmed"


@pytest.mark.parametrize("name", sorted(DATASETS))
def test_a_fixture_has_only_columns_the_evidence_shows(name: str) -> None:
    _, ev = _parts(name)
    allowed = {*ev.columns, *ev.unconfirmed}
    for path, rows in load(name)["files"].items():
        extra = sorted(column_paths(rows) - allowed)
        assert not extra, f"{name}: fixture {path} has columns no public source shows: {extra}"


@pytest.mark.parametrize("name", sorted(DATASETS))
def test_a_fixture_uses_only_published_file_names(name: str) -> None:
    _, ev = _parts(name)
    for path in load(name)["files"]:
        shown = any(fnmatch.fnmatchcase(path, p) for p in (*ev.files, *ev.unconfirmed_files))
        assert shown, f"{name}: fixture file {path} is not a published file ({', '.join(ev.files)})"


@pytest.mark.parametrize("name", sorted(DATASETS))
def test_a_conversion_reads_only_columns_the_evidence_shows(name: str) -> None:
    conv, ev = _parts(name)
    allowed = {*ev.columns, *ev.unconfirmed}
    extra = [c for c in conv.reads() if c not in allowed]
    assert not extra, f"{name}: the conversion reads {extra}, which no public source shows for this dataset"


def test_the_conversions_reproduce_odas_counts() -> None:
    """Published rows of what the conversion reads (the fixture covers each published part it reads), times the
    records per row, are ODA's count: DeepMath 3 x 103,022 = 309,066; Light-R1 75,906 + 3,533 = 79,439; ..."""
    checked = []
    for name in sorted(DATASETS):
        conv, ev = _parts(name)
        if ev.oda_rows is None or not ev.rows:
            continue
        files = list(load(name)["files"])
        read = sum(n for part, n in ev.rows.items() if any(fnmatch.fnmatchcase(f, part) for f in files))
        assert read * conv.per_row == ev.oda_rows, f"{name}: {read:,} rows x {conv.per_row} != ODA's {ev.oda_rows:,}"
        checked.append(name)
    assert {"DeepMath-103K", "Light-R1-SFTData", "OpenR1-Math-220k", "R1-Distill-SFT"} <= set(checked)


def test_docs_show_the_evidence_of_every_dataset() -> None:
    text = (REPO / "docs" / "data.md").read_text(encoding="utf-8")
    table = text.split("### The evidence", 1)[1]
    for name in DATASETS:
        _, ev = _parts(name)
        row = next((line for line in table.splitlines() if line.startswith(f"| {name} |")), "")
        assert row, f"{name}: no row in docs/data.md's evidence table"
        assert ev.at in row, f"{name}: the row does not give the revision read ({ev.at})"
        oda = f"{ev.oda_rows:,}" if ev.oda_rows is not None else "not published"
        assert oda in row, f"{name}: the row does not give ODA's count ({oda})"
        for column in ev.unconfirmed:
            assert re.search(rf"unconfirmed[^|]*`{re.escape(column)}`", row), f"{name}: {column} not marked unconfirmed"


def test_the_evidence_file_is_read_whole_and_strictly(tmp_path: Path) -> None:
    """evidence.toml: {HF}/{ODA} name the sources, same_as shares a card, and a field Evidence lacks is refused."""
    from oda_sft.datasets_catalog.evidence import SOURCE, load

    assert set(load(SOURCE)) == set(DATASETS)
    am = DATASETS["AM-Thinking-v1-Distilled-math"].evidence
    code = DATASETS["AM-Thinking-v1-Distilled-code"].evidence
    assert am is not None and code is not None
    assert am.columns == code.columns and am.read_from == code.read_from and am.oda_rows != code.oda_rows
    assert all("{" not in s for ev in load(SOURCE).values() for s in (*ev.read_from, ev.oda_source))
    bad = tmp_path / "evidence.toml"
    bad.write_text('[sources]\n[datasets.X]\nread_from = []\nat = ""\ncolumns = []\nfiles = []\nodarows = 3\n')
    with pytest.raises(ValueError, match="X has odarows, which Evidence has no field for"):
        load(bad)
