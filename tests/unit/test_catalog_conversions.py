"""Every catalog dataset declares its conversion, and each converts its fixture (published column names,
nesting and file names, synthetic rows) to the intended Alpaca records, in its repo's real file format."""

from __future__ import annotations

import fnmatch
from pathlib import Path

import pytest

from oda_sft.data.sources.catalog_conversion import Tally, convert_files
from oda_sft.datasets_catalog import DATASETS
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
        assert conv.files and conv.prompt and conv.why and d.evidence is not None, name
        assert conv.chat or conv.response or conv.responses or conv.pick_from, f"{name}: no response column"
        if d.hf_file:
            assert conv.files == (d.hf_file,), f"{name}: the declared files are not the catalog's file"
        assert (FIXTURES / f"{name}.json").is_file(), f"{name}: no fixture"
        assert f"| {name} |" in table, f"{name}: no row in docs/data.md's conversion table"


@pytest.mark.parametrize("name", sorted(DATASETS))
def test_fixture_converts_to_the_intended_records(name: str, tmp_path: Path) -> None:
    conv = DATASETS[name].conversion
    assert conv is not None
    fixture = load(name)
    for path in fixture["files"]:
        assert any(fnmatch.fnmatchcase(path, p) for p in conv.files), f"fixture file {path} outside the declared files"
    tally = Tally()
    records = list(convert_files(name, conv, materialize(name, tmp_path), tally))
    assert records == fixture["expected"]
    assert tally.dropped == fixture["dropped"]
    assert tally.noted == fixture["noted"]
    assert tally.rows == sum(len(rows) for rows in fixture["files"].values()) and tally.kept == len(records)
    assert tally.first == (records[0] if records else None)


def test_deepmath_yields_one_record_per_r1_solution(tmp_path: Path) -> None:
    """ODA trained on 309,066 DeepMath records = 3 x 103,022 problems: every r1_solution_k is a record."""
    conv = DATASETS["DeepMath-103K"].conversion
    assert conv is not None and conv.per_row == 3
    tally = Tally()
    records = list(convert_files("DeepMath-103K", conv, materialize("DeepMath-103K", tmp_path), tally))
    assert [r["instruction"] for r in records].count("Evaluate lim sin(x)/x as x->0.") == 3
    assert tally.rows == 2 and tally.kept == 5 and tally.dropped == {"empty response": 1}


@pytest.mark.parametrize("name", ["OpenR1-Math-220k", "Raiden-DeepSeek-R1", "OpenThoughts3-1.2M"])
def test_a_cut_off_trace_is_counted_not_dropped(name: str, tmp_path: Path) -> None:
    """ODA's counts keep every row (OpenR1 93,733; Raiden 62,925): a trace never closed is kept, and counted."""
    conv = DATASETS[name].conversion
    assert conv is not None
    tally = Tally()
    records = list(convert_files(name, conv, materialize(name, tmp_path), tally))
    cut = [r for r in records if "<think>" in r["output"] and "</think>" not in r["output"]]
    assert cut and tally.noted["reasoning trace cut off (<think> never closed)"] == len(cut)
    assert not any("cut off" in reason for reason in tally.dropped)


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
