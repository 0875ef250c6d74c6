"""What is checked before anything starts, through the CLI: no GPU for a real preset, dry runs that say
what the real run would do (the node's own config, a missing data file, a sweep cell that would fail),
and help pages a person can read."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from oda_sft.runs import space
from oda_sft.train import launcher

from conftest import REPO, Cli, snapshot


def test_a_real_preset_without_a_gpu_stops_before_anything_is_written(
    cli: Cli, data_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ODA_SFT_GPU_COUNT", "0")
    info = json.loads((data_dir / "dataset_info.json").read_text())
    info["unmeasured"] = {"file_name": "oda_demo.json"}  # would be measured (and the answer stored) first
    (data_dir / "dataset_info.json").write_text(json.dumps(info))
    before = snapshot(tmp_path)
    for args in (
        ["train", "-m", "llama", "-d", "unmeasured"],
        ["sweep", "-m", "qwen", "--datasets", "unmeasured,oda_demo", "--seeds", "1,2"],
    ):
        r = cli(*args, "--dataset-dir", str(data_dir), "--output-root", str(tmp_path / "saves"))
        assert r.code == 2, r.err
        errors = [line for line in r.err.splitlines() if line.startswith("error:")]
        assert len(errors) == 1 and "no GPU is visible on" in errors[0] and "--allow-no-gpu" in errors[0]
    assert snapshot(tmp_path) == before  # not even the measured mode was stored


def test_allow_no_gpu_launches_anyway(
    cli: Cli, data_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ODA_SFT_GPU_COUNT", "0")
    launched: list[list[str]] = []

    def fake_trainer(argv: list[str], env: Any, *_: Any) -> int:  # the launcher seam
        launched.append(argv)
        return 0

    monkeypatch.setattr(launcher, "run", fake_trainer)
    monkeypatch.setattr(space, "disk_free", lambda _path: 10**15)  # an 8B model's checkpoints, on this test disk
    r = cli("train", "-m", "llama", "-d", "oda_demo", "--dataset-dir", str(data_dir), "--output-root",
            str(tmp_path / "saves"), "--allow-no-gpu", "--", "bf16=false", "deepspeed=null")  # fmt: skip
    assert r.code == 0, r.err
    assert len(launched) == 1


def test_a_dry_run_for_node_rank_1_shows_the_file_that_node_launches_from(
    cli: Cli, data_dir: Path, tmp_path: Path
) -> None:
    r = cli("train", "-m", "tiny", "-d", "oda_demo", "--dry-run", "--dataset-dir", str(data_dir), "--output-root",
            str(tmp_path), "--nnodes", "2", "--node-rank", "1", "--master-addr", "10.1.2.3")  # fmt: skip
    assert r.code == 0, r.err
    run = tmp_path / "tiny/full/sft-oda_demo/seed-42"
    assert f"# config file: {run / 'oda_sft_config.node-1.yaml'}" in r.out
    assert f"llamafactory-cli train {run / 'oda_sft_config.node-1.yaml'}" in r.out
    assert yaml.safe_load(r.out)["output_dir"] == str(run)


def test_a_dry_run_of_a_registered_but_missing_file_fails_as_the_run_would(
    cli: Cli, data_dir: Path, tmp_path: Path
) -> None:
    (data_dir / "oda_demo.json").unlink()
    r = cli("train", "-m", "tiny", "-d", "oda_demo", "--dry-run", "--dataset-dir", str(data_dir), "--output-root",
            str(tmp_path / "saves"))  # fmt: skip
    assert r.code == 2 and yaml.safe_load(r.out)["dataset"] == "oda_demo"  # the config is still shown
    assert r.err.strip().splitlines()[-1].startswith("error: dataset oda_demo is registered with file")
    assert not (tmp_path / "saves").exists()


def test_sweep_dry_run_exits_non_zero_when_a_cell_would_fail(cli: Cli, data_dir: Path, tmp_path: Path) -> None:
    common = ["sweep", "-m", "tiny", "--seeds", "1", "--dry-run", "--dataset-dir", str(data_dir), "--output-root",
              str(tmp_path / "saves")]  # fmt: skip
    ok = cli(*common, "--datasets", "oda_demo")
    assert ok.code == 0 and " train " in ok.out
    info = json.loads((data_dir / "dataset_info.json").read_text())
    info["gone"] = {"file_name": "gone.json"}
    (data_dir / "dataset_info.json").write_text(json.dumps(info))
    bad = cli(*common, "--datasets", "oda_demo,gone")
    assert bad.code == 1, bad.err
    assert "1 of 2 runs would not start" in bad.err
    rows = {line.split()[0]: line.split()[3] for line in bad.out.splitlines()[1:]}
    assert rows == {"oda_demo": "train", "gone": "error"}
    allbad = cli(*common, "--datasets", "gone")
    assert allbad.code == 1


@pytest.mark.parametrize(
    "command",
    [[], ["train"], ["sweep"], ["runs"], ["runs", "plot"], ["slurm"], ["preflight"], ["data"], ["list-datasets"]],
)
def test_help_pages_show_plain_brackets(cli: Cli, command: list[str]) -> None:
    r = cli(*command, "--help")
    assert r.code == 0, r.err
    assert "\\[" not in r.out, r.out
    if command == ["train"]:
        assert "[required]" in r.out and "[default: 42]" in r.out and "--allow-no-gpu" in r.out


def test_the_license_is_the_one_pyproject_names() -> None:
    text = (REPO / "LICENSE").read_text()
    assert text.lstrip().startswith("Apache License") and "Version 2.0, January 2004" in text
    assert "TERMS AND CONDITIONS FOR USE, REPRODUCTION, AND DISTRIBUTION" in text and len(text) > 10000
    assert 'license = "Apache-2.0"' in (REPO / "pyproject.toml").read_text()
