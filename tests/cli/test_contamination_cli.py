"""Where a stored overlap result shows: `list-datasets` (row and --json) and `rank` (beside the score, and
--json), only while it is of the very content listed or trained; `data contamination`'s bad input."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from test_rank_cli import _record

from oda_sft.data.contamination import store
from oda_sft.data.registry.dataset_dir import DatasetDir

from conftest import Cli, snapshot


def _registered(cli: Cli, tmp_path: Path) -> Path:
    ddir = tmp_path / "data"
    ddir.mkdir()
    (ddir / "src.json").write_text(json.dumps([{"instruction": f"q{i}", "output": "a"} for i in range(10)]))
    assert cli("data", "add", "mine", str(ddir / "src.json"), "--dataset-dir", str(ddir)).code == 0
    dataset = DatasetDir.load(ddir).resolve("mine")
    store.save(dataset, 10, {"gsm8k": store.Overlap("gsm8k", "b" * 64, 1319, [2, 5], [(2, 7), (5, 9)]),
                             "math500": store.Overlap("math500", "c" * 64, 500, [], [])})  # fmt: skip
    return ddir


def test_list_datasets_shows_the_overlap_of_the_file_as_it_is(cli: Cli, tmp_path: Path) -> None:
    ddir = _registered(cli, tmp_path)
    table = cli("list-datasets", "--dataset-dir", str(ddir))
    assert table.code == 0 and "OVERLAP" in table.out
    assert next(line for line in table.out.splitlines() if line.startswith("mine")).endswith("gsm8k 2")
    rows = json.loads(cli("list-datasets", "--dataset-dir", str(ddir), "--json").out)
    assert next(r for r in rows if r["name"] == "mine")["overlap"] == {"gsm8k": 2, "math500": 0}
    # The file changes: the stored result is of other content, and is no longer shown.
    (ddir / "src.json").write_text(json.dumps([{"instruction": "other", "output": "a"}]))
    rows = json.loads(cli("list-datasets", "--dataset-dir", str(ddir), "--json").out)
    assert "overlap" not in next(r for r in rows if r["name"] == "mine")
    assert "OVERLAP" not in cli("list-datasets", "--dataset-dir", str(ddir)).out


def test_rank_shows_the_overlap_beside_the_score(cli: Cli, tmp_path: Path) -> None:
    ddir = _registered(cli, tmp_path)
    sha = DatasetDir.load(ddir).resolve("mine").sha256
    root = tmp_path / "saves"
    for name, digest in (("mine", sha), ("other", "d" * 64)):
        run = root / "tiny" / "full" / f"sft-{name}" / "seed-1"
        run.mkdir(parents=True)
        dataset = {"name": name, "dir": str(ddir), "sha256": digest}
        manifest = {"model": {"preset": "tiny"}, "dataset": dataset, "seed": 1, "status": "finished",
                    "evals": [_record(40.0 if name == "mine" else 30.0)]}  # fmt: skip
        (run / "oda_sft_run.json").write_text(json.dumps(manifest))
    table = cli("rank", "--output-root", str(root))
    assert table.code == 0, table.err
    lines = table.out.splitlines()
    assert "OVERLAP" in lines[1]
    assert lines[2].split()[:2] == ["1", "mine"] and lines[2].endswith("gsm8k 2")
    assert lines[3].split()[:2] == ["2", "other"] and lines[3].endswith("-")
    board = json.loads(cli("rank", "--output-root", str(root), "--json").out)
    rows = {r["dataset"]: r for g in board["groups"] for r in g["rows"]}
    assert rows["mine"]["overlap"] == {"gsm8k": 2, "math500": 0} and rows["other"]["overlap"] is None


def test_bad_input_is_one_line(cli: Cli, data_dir: Path) -> None:
    unknown = cli("data", "contamination", "nope", "--dataset-dir", str(data_dir))
    assert unknown.code != 0 and "not registered" in unknown.err and len(unknown.err.strip().splitlines()) == 1
    bench = cli("data", "contamination", "oda_demo", "--dataset-dir", str(data_dir), "--benchmarks", "gsm9k")
    assert bench.code != 0 and "gsm9k" in bench.err and "gsm8k" in bench.err


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (("mi\nne",), "invalid dataset name 'mi\\nne'"),  # no `data add` advice that would refuse the same name
        (("oda_demo", "--write-clean", "../x"), "invalid dataset name '../x'"),
        (("oda_demo", "--write-clean", "oda_demo"), "--write-clean oda_demo names the dataset being checked"),
    ],
)
def test_names_are_refused_before_anything_is_read(cli: Cli, data_dir: Path, args: tuple[str, ...],
                                                   expected: str) -> None:  # fmt: skip
    before = snapshot(data_dir)
    r = cli("data", "contamination", *args, "--dataset-dir", str(data_dir), "-m", "tiny")
    assert r.code == 2 and expected in r.err and len(r.err.strip().splitlines()) == 1, r.err
    assert "data add" not in r.err and "--force" not in r.err
    assert snapshot(data_dir) == before
