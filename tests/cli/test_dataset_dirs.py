"""The default dataset dir is per-user (XDG) and created by the first `data add`; the demo ships inside the
package, so list-datasets and the demo work with no dataset dir at all, and nothing is written into the package."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from oda_sft.datasets_catalog import DATASETS

from conftest import DEMO, Cli, snapshot


def _default_dir() -> Path:
    return Path(os.environ["XDG_DATA_HOME"]) / "oda-sft" / "datasets"


def test_list_datasets_with_no_dataset_dir_at_all(cli: Cli) -> None:
    assert not _default_dir().exists()
    r = cli("list-datasets")
    assert r.code == 0, r.err
    names = [line.split()[0] for line in r.out.splitlines()[1:]]
    assert names == [*DATASETS, "oda_demo"]
    assert "built in" in r.out
    assert not _default_dir().exists(), "listing creates nothing"


def test_the_demo_plans_from_the_package_with_no_dataset_dir(cli: Cli, tmp_path: Path) -> None:
    r = cli("train", "-m", "tiny", "-d", "oda_demo", "--dry-run", "--output-root", str(tmp_path))
    assert r.code == 0, r.err
    assert f"dataset_dir: {DEMO}" in r.out
    assert not _default_dir().exists()


def test_the_first_data_add_creates_the_per_user_dir(cli: Cli, tmp_path: Path) -> None:
    src = tmp_path / "qa.jsonl"
    src.write_text(json.dumps({"question": "2+2?", "answer": "4"}) + "\n")
    r = cli("data", "add", "qa", str(src))
    assert r.code == 0, r.err
    assert json.loads((_default_dir() / "dataset_info.json").read_text())["qa"]["file_name"] == "qa.json"
    r = cli("list-datasets")
    assert any(line.startswith("qa ") for line in r.out.splitlines())


def test_an_explicit_dataset_dir_must_exist(cli: Cli, tmp_path: Path) -> None:
    src = tmp_path / "qa.jsonl"
    src.write_text(json.dumps({"question": "2+2?", "answer": "4"}) + "\n")
    r = cli("data", "add", "qa", str(src), "--dataset-dir", str(tmp_path / "typo"))
    assert r.code == 2 and "does not exist" in r.err and not (tmp_path / "typo").exists()


def test_env_var_overrides_the_default(cli: Cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "mine").mkdir()
    monkeypatch.setenv("ODA_SFT_DATASET_DIR", str(tmp_path / "mine"))
    src = tmp_path / "qa.jsonl"
    src.write_text(json.dumps({"question": "2+2?", "answer": "4"}) + "\n")
    assert cli("data", "add", "qa", str(src)).code == 0
    assert (tmp_path / "mine" / "qa.json").is_file() and not _default_dir().exists()


def test_measuring_the_shipped_demo_writes_nothing_into_the_package(cli: Cli) -> None:
    before = snapshot(DEMO)
    r = cli("data", "inspect", "oda_demo", "--model", "tiny")
    assert r.code == 0, r.err
    assert "ships inside oda-sft and is read only: the result is not stored" in r.err
    assert snapshot(DEMO) == before
