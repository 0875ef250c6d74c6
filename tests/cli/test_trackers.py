"""`--report-to` on train (and sweep, which shares the run options): the tracker and its run name in the
config LLaMA-Factory reads, TensorBoard's fixed folder in the run dir (a resumed run's attempts add to one
tracker run), the rerun advice keeping it, and a tracker whose package is missing refused in one line before
anything starts; the tracker run's id chosen up front and given again to a resumed attempt, and an eval's scores
as metrics. The logging itself, to each real tracker, is tests/integration/test_trackers_real.py's."""

from __future__ import annotations

import importlib.util
import json
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
    cli: Cli, tmp_path: Path, data_dir: Path, name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Hidden where installed (the dev extra installs three of them): find_spec is how oda-sft and transformers
    # look for a tracker, and it answers as for a package that is not there.
    hidden = {name, "tensorboardX"} if name == "tensorboard" else {name}
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda n, *a: None if n in hidden else real(n, *a))
    before = snapshot(tmp_path)
    r = cli("train", "-m", "tiny", "-d", "oda_demo", "--dataset-dir", str(data_dir),
            "--output-root", str(tmp_path / "saves"), "--report-to", name)  # fmt: skip
    assert r.code == 2 and len(r.err.strip().splitlines()) == 1, r.err
    assert f"--report-to {name} needs the {name} package, which is not installed here: " in r.err
    assert f"`{tracker.install_hint(name)}`" in r.err and " -m pip install " in tracker.install_hint(name)
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
    # Without --report-to, no tracker: transformers 4.x reads a missing report_to as "all" (every one installed),
    # and with the dev extra's mlflow a plain run under Slurm stopped at its first step (no tracking store).
    assert plain["report_to"] == "none" and "run_name" not in plain


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


def test_a_wandb_run_is_given_again_to_a_resumed_attempt(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WANDB_API_KEY", "sk-secret")
    monkeypatch.delenv("WANDB_PROJECT", raising=False)
    found = {"report_to": "wandb", "run_name": "tiny/oda_demo/seed-42"}
    earlier = {**found, "id": "0123abcd", "project": "oda-sft", "dir": str(tmp_path), "url": None}
    again = tracker.open_run(found, earlier, tmp_path, {})  # nothing made: the recorded run goes on
    assert again.record == earlier
    assert again.env == {"WANDB_RUN_ID": "0123abcd", "WANDB_RESUME": "allow", "WANDB_DIR": str(tmp_path),
                         "WANDB_PROJECT": "oda-sft"}  # fmt: skip
    assert "sk-secret" not in repr(again)  # keys stay in the caller's environment


def test_no_tracker_opens_nothing(tmp_path: Path) -> None:
    assert tracker.open_run(None, None, tmp_path, {}) == tracker.Opened(None, {})
    swanlab = {"report_to": "swanlab", "run_name": "x"}  # names its run itself: recorded as the trainer was told
    assert tracker.open_run(swanlab, None, tmp_path, {}) == tracker.Opened(swanlab, {})
    several = {"report_to": ["wandb", "tensorboard"], "run_name": None}  # a `-- report_to=[...]` override
    assert tracker.open_run(several, None, tmp_path, {}) == tracker.Opened(several, {})
    (tmp_path / "oda_sft_run.json").write_text(json.dumps({"tracker": several}))
    tracker.log_eval(tmp_path, {"overall": 1.0})  # nothing to log to, and no error


def test_an_eval_record_becomes_metrics_per_benchmark_domain_and_overall() -> None:
    rec = {"scores": {"gsm8k": 50.0, "humaneval": 30}, "domains": {"math": 50.0, "code": 30}, "overall": 40.0}
    assert tracker.eval_metrics(rec) == {
        "eval/gsm8k": 50.0,
        "eval/humaneval": 30.0,
        "eval/domain/math": 50.0,
        "eval/domain/code": 30.0,
        "eval/overall": 40.0,
    }
    assert tracker.eval_metrics({"scores": {}, "domains": {}, "overall": None}) == {}


def test_a_tracker_eval_cannot_reach_is_a_warning(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    tracker.log_eval(tmp_path, {"overall": 1.0})
    assert capsys.readouterr().err == ""  # no manifest, or one without a tracker: nothing to log to
    (tmp_path / "oda_sft_run.json").write_text('{"tracker": {"report_to": "wandb", "id": "abc"}}')
    (tmp_path / "trainer_state.json").write_text('{"global_step": 24}')
    assert tracker.final_step(tmp_path) == 24

    def missing(name: str) -> None:
        raise ModuleNotFoundError(f"No module named {name!r}", name=name)

    monkeypatch.setattr(tracker, "_module", missing)
    tracker.log_eval(tmp_path, {"overall": 1.0})
    said = capsys.readouterr().err
    assert "warning: the scores were not logged to wandb (No module named 'wandb'): " in said
    assert f"`{tracker.install_hint('wandb')}`" in said


def test_a_tracking_uri_is_recorded_without_its_password() -> None:
    assert tracker._shown_uri("https://me:pw@mlflow.example:5000/x") == "https://mlflow.example:5000/x"
    assert tracker._shown_uri("file:///runs/mlruns") == "file:///runs/mlruns"
