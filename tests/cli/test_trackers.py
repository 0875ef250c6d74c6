"""`--report-to` on train (and sweep, which shares the run options): the tracker and its run name in the
config LLaMA-Factory reads, TensorBoard's fixed folder in the run dir (a resumed run's attempts add to one
tracker run), the rerun advice keeping it, and a tracker whose package is missing refused in one line before
anything starts. None of the trackers is installed in the dev venv: the logging itself is untested here."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
import yaml

from oda_sft.runs import tracker
from oda_sft.train.advice import Rerun
from oda_sft.train.request import TrainRequest

from conftest import Cli, snapshot


def _train(cli: Cli, tmp_path: Path, data_dir: Path, *extra: str) -> tuple[Cli, object]:
    saves = tmp_path / "saves"
    return cli("train", "-m", "tiny", "-d", "oda_demo", "--dataset-dir", str(data_dir), "--output-root", str(saves),
               "--dry-run", *extra)  # fmt: skip


@pytest.mark.parametrize("name", ["wandb", "mlflow", "swanlab", "tensorboard"])
def test_a_missing_tracker_is_one_line_before_anything_starts(
    cli: Cli, tmp_path: Path, data_dir: Path, name: str
) -> None:
    module = "tensorboardX" if name == "tensorboard" else name
    if importlib.util.find_spec(name) or importlib.util.find_spec(module):
        pytest.skip(f"{name} is installed here")
    before = snapshot(tmp_path)
    r = cli("train", "-m", "tiny", "-d", "oda_demo", "--dataset-dir", str(data_dir),
            "--output-root", str(tmp_path / "saves"), "--report-to", name)  # fmt: skip
    assert r.code == 2 and len(r.err.strip().splitlines()) == 1, r.err
    assert f"--report-to {name} needs the {name} package, which is not installed here: " in r.err
    assert f"pip install 'oda-sft[{name}]'" in r.err
    assert snapshot(tmp_path) == before
    sweep = cli("sweep", "-m", "tiny", "--datasets", "oda_demo", "--dataset-dir", str(data_dir),
                "--output-root", str(tmp_path / "saves"), "--report-to", name)  # fmt: skip
    assert sweep.code == 2 and f"--report-to {name} needs the {name} package" in sweep.err, sweep.err
    slurm = cli("slurm", "-N", "1", "--gpus-per-node", "0", "--", "train", "-m", "tiny", "-d", "oda_demo",
                "--report-to", name)  # fmt: skip
    assert slurm.code == 2 and f"--report-to {name} needs the {name} package" in slurm.err, slurm.err


def test_the_tracker_and_its_run_name_are_in_the_config(cli: Cli, tmp_path: Path, data_dir: Path) -> None:
    r = _train(cli, tmp_path, data_dir, "--report-to", "none", "--seed", "7")
    assert r.code == 0, r.err
    config = yaml.safe_load(r.out)
    assert config["report_to"] == "none" and config["run_name"] == "tiny/oda_demo/seed-7"
    assert "tracker: none, run tiny/oda_demo/seed-7" in r.err
    plain = yaml.safe_load(_train(cli, tmp_path, data_dir).out)
    assert "report_to" not in plain and "run_name" not in plain  # left out: the trainer's own default, as before


def test_tensorboard_writes_into_one_folder_of_the_run_dir() -> None:
    out = Path("/runs/tiny/full/sft-oda_demo/seed-42")
    found = tracker.settings("tensorboard", "tiny/oda_demo/seed-42", out)
    assert found == {
        "report_to": "tensorboard",
        "run_name": "tiny/oda_demo/seed-42",
        "logging_dir": str(out / "tensorboard"),
    }
    assert tracker.record(found) == found
    assert tracker.record({"report_to": "none"}) is None and tracker.record({}) is None
    assert tracker.record({"report_to": "wandb"}) == {"report_to": "wandb", "run_name": None}  # a `-- report_to=`


def test_both_ways_of_naming_a_tracker_is_one_line(cli: Cli, tmp_path: Path, data_dir: Path) -> None:
    r = _train(cli, tmp_path, data_dir, "--report-to", "none", "--", "report_to=wandb")
    assert r.code == 2 and "--report-to and the override report_to= both name a tracker: keep --report-to" in r.err


def test_the_rerun_advice_keeps_the_tracker() -> None:
    argv = Rerun(TrainRequest("tiny", "oda_demo", report_to="none")).argv()
    assert argv[argv.index("--report-to") + 1] == "none"
