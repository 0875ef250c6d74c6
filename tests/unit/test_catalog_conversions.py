"""Every catalog dataset declares its conversion, and each converts its fixture (real column names and
nesting, synthetic rows) to the intended Alpaca records, in its repo's real file format."""

from __future__ import annotations

import fnmatch
from pathlib import Path

import pytest

from oda_sft.catalog import DATASETS
from oda_sft.data.sources.catalog_conversion import Tally, convert_files
from oda_sft.errors import DatasetError

from catalog_fixtures import FIXTURES, load, materialize

REPO = Path(__file__).resolve().parents[2]


def test_every_catalog_dataset_declares_a_documented_conversion() -> None:
    assert len(DATASETS) == 17
    missing = [name for name, d in DATASETS.items() if d.conversion is None]
    assert not missing, f"catalog datasets without a declared conversion: {missing}"
    table = (REPO / "docs" / "data.md").read_text(encoding="utf-8")
    for name, d in DATASETS.items():
        conv = d.conversion
        assert conv is not None
        assert conv.files and conv.prompt and conv.why and conv.source, name
        assert conv.chat or conv.response or conv.pick_from, f"{name}: no response column"
        if d.hf_file:
            assert conv.files == (d.hf_file,), f"{name}: the declared files are not the catalog's file"
        assert (FIXTURES / f"{name}.json").is_file(), f"{name}: no fixture"
        assert f"| {name} |" in table, f"{name}: no row in docs/data.md's conversion table"


@pytest.mark.parametrize("name", sorted(DATASETS))
def test_fixture_converts_to_the_intended_records(name: str, tmp_path: Path) -> None:
    conv = DATASETS[name].conversion
    assert conv is not None
    fixture = load(name)
    assert any(fnmatch.fnmatchcase(fixture["file"], p) for p in conv.files), "fixture file outside the declared files"
    tally = Tally()
    records = list(convert_files(name, conv, [materialize(name, tmp_path)], tally))
    assert records == fixture["expected"]
    assert tally.dropped == fixture["dropped"]
    assert tally.rows == len(fixture["rows"]) and tally.kept == len(records)
    assert tally.first == (records[0] if records else None)


def test_a_missing_declared_column_stops_with_one_line(tmp_path: Path) -> None:
    conv = DATASETS["DeepMath-103K"].conversion
    assert conv is not None
    from catalog_fixtures import encode

    path = tmp_path / "train.parquet"
    path.write_bytes(encode("x.parquet", [{"question": "q", "final_answer": "1"}]))
    with pytest.raises(DatasetError) as err:
        list(convert_files("DeepMath-103K", conv, [("data/train.parquet", path)]))
    message = str(err.value)
    assert "data/train.parquet has no column 'r1_solution_1'" in message
    assert "--revision" in message and "\n" not in message
