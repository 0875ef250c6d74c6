"""--report-to with real tiny runs, each stopped by SIGTERM once checkpoint-10 is saved and then resumed: the
resumed attempt logs to the same tracker run (TensorBoard's folder, wandb's run id, mlflow's run), so that run
holds the whole loss curve (steps 1-24), the era, the data's sha256 and the recipe, and then a finished eval's
scores at the last step. Offline: wandb in offline mode, mlflow on a file store in the run dir."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from test_resume_epochs import RUN, complete, interrupt, run_to_end, train_argv

from oda_sft.runs import tracker

from realproc import manifest
from tracker_readers import (
    mlflow_run,
    need,
    tensorboard_scalars,
    tensorboard_texts,
    wandb_config,
    wandb_history,
    wandb_records,
)

EVAL = {"scores": {"arithmetic": 12.5}, "domains": {"math": 12.5}, "overall": 12.5}  # as `eval` records them


@pytest.mark.parametrize("kind", ["tensorboard", "wandb", "mlflow"])
def test_a_resumed_run_and_its_eval_are_one_tracker_run(
    kind: str, data_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    need(kind)
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")
    for name in ("MLFLOW_TRACKING_URI", "WANDB_PROJECT", "MLFLOW_EXPERIMENT_NAME"):
        monkeypatch.delenv(name, raising=False)
    argv = train_argv(data_dir, tmp_path / "saves", "--report-to", kind, "--save-steps", "5", "--", "logging_steps=1")
    run = tmp_path / "saves" / RUN
    rc, err = interrupt(argv, tmp_path, run, complete(run / "checkpoint-10"))
    assert rc == 143, err[-3000:]
    first = manifest(run)["tracker"]
    assert first["report_to"] == kind and first["run_name"] == "tiny/oda_demo/seed-42" and first["id"]
    resumed = run_to_end(argv, tmp_path)
    assert "continues from checkpoint-10" in resumed.stderr
    m = manifest(run)
    assert m["tracker"] == first  # the same tracker run, continued
    sha = m["dataset"]["sha256"]
    capsys.readouterr()
    tracker.log_eval(run, EVAL)
    assert capsys.readouterr().err == f"oda-sft: scores logged to {kind} run {first['id']} at step 24\n"
    want_eval = {"eval/arithmetic": 12.5, "eval/domain/math": 12.5, "eval/overall": 12.5}

    if kind == "tensorboard":
        scalars = tensorboard_scalars(Path(first["id"]))
        assert Path(first["id"]) == run / "tensorboard"
        assert {step for step, _ in scalars["train/loss"]} == set(range(1, 25))
        assert {k: scalars[k] for k in want_eval} == {k: [(24, v)] for k, v in want_eval.items()}
        (about,) = tensorboard_texts(run / "tensorboard")["oda_sft/config"]
        assert sha in about and '"oda_sft/recipe_era": "2026"' in about and '"learning_rate": 2e-05' in about
    elif kind == "wandb":
        # wandb's service writes an offline run's log after finish() returns: wait (30 s at most) for the eval's
        # row, as `wandb sync` would find it, rather than read a file still being written.
        deadline = time.monotonic() + 30
        while True:
            records = wandb_records(run, first["id"])
            history = wandb_history(records)
            if any("eval/overall" in h for h in history) or time.monotonic() > deadline:
                break
            time.sleep(0.5)
        steps = {h["train/global_step"] for h in history if "train/loss" in h}
        assert steps == set(range(1, 25)), steps
        (scored,) = [h for h in history if "eval/overall" in h]
        assert {k: scored[k] for k in want_eval} == want_eval and scored["train/global_step"] == 24
        config = wandb_config(records)
        assert config["oda_sft/dataset_sha256"] == sha and config["oda_sft/recipe_era"] == "2026"
        assert config["oda_sft/recipe"]["learning_rate"] == 2e-05
        assert {r.run.display_name for r in records if r.WhichOneof("record_type") == "run"} == {first["run_name"]}
    else:
        assert first["tracking_uri"] == (run / "mlruns").as_uri()
        found, history = mlflow_run(first["tracking_uri"], first["id"])
        assert {step for step, _ in history["loss"]} == set(range(1, 25))
        assert {k: history[k] for k in want_eval} == {k: [(24, v)] for k, v in want_eval.items()}
        assert found.data.tags["oda_sft.dataset_sha256"] == sha and found.data.tags["oda_sft.recipe_era"] == "2026"
        assert found.info.run_name == first["run_name"]
