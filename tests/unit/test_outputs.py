"""Output-dir states and the rules for starting a run in one. Nothing is ever deleted."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from oda_sft.errors import RunStateError
from oda_sft.runs.outdir import inspect_output_dir, set_aside
from oda_sft.train.plan import TrainPlan, plan_train
from oda_sft.train.request import TrainRequest
from oda_sft.train.run import start_run

from conftest import Cli, snapshot


def test_states(tmp_path: Path) -> None:
    run = tmp_path / "run"
    assert inspect_output_dir(run).kind == "fresh"
    run.mkdir()
    (run / "oda_sft_config.yaml").write_text("a: 1\n")
    assert inspect_output_dir(run).kind == "fresh"  # a config alone means training never started
    for n in (2, 10):
        (run / f"checkpoint-{n}").mkdir()
    state = inspect_output_dir(run)
    assert state.kind == "interrupted" and state.checkpoints == ("checkpoint-2", "checkpoint-10")
    (run / "all_results.json").write_text("{}")
    assert inspect_output_dir(run).kind == "finished"
    other = tmp_path / "other"
    other.mkdir()
    (other / "model.safetensors").write_bytes(b"w")
    assert inspect_output_dir(other).kind == "occupied"


def test_set_aside_renames_and_never_collides(tmp_path: Path) -> None:
    run = tmp_path / "seed-1"
    run.mkdir()
    (run / "f").write_text("x")
    first = set_aside(run)
    run.mkdir()
    second = set_aside(run)
    assert first != second and (first / "f").read_text() == "x" and not run.exists()


def _plan(data_dir: Path, saves: Path) -> TrainPlan:
    return plan_train(TrainRequest(model="tiny", dataset="oda_demo", dataset_dir=data_dir, output_root=saves))


def test_occupied_dir_is_refused_without_force(data_dir: Path, tmp_path: Path) -> None:
    plan = _plan(data_dir, tmp_path / "saves")
    plan.output_dir.mkdir(parents=True)
    (plan.output_dir / "model.safetensors").write_bytes(b"weights")
    before = snapshot(tmp_path / "saves")
    with pytest.raises(RunStateError, match=r"To move it aside \(nothing is deleted\) and train: `.* train .*--force`"):
        start_run(plan)
    assert snapshot(tmp_path / "saves") == before


def test_resuming_with_a_different_config_is_refused(data_dir: Path, tmp_path: Path) -> None:
    plan = _plan(data_dir, tmp_path / "saves")
    out = plan.output_dir
    (out / "checkpoint-8").mkdir(parents=True)
    changed = dict(plan.config, learning_rate=1.0)
    (out / "oda_sft_config.yaml").write_text(yaml.safe_dump(changed))
    before = snapshot(tmp_path / "saves")
    with pytest.raises(RunStateError, match=r"different config \(differs in: learning_rate\)"):
        start_run(plan)
    assert snapshot(tmp_path / "saves") == before


def test_finished_run_is_skipped(data_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    plan = _plan(data_dir, tmp_path / "saves")
    plan.output_dir.mkdir(parents=True)
    (plan.output_dir / "all_results.json").write_text("{}")
    assert start_run(plan).outcome == "skipped"
    assert capsys.readouterr().err.startswith("oda-sft: skipped:")


def test_a_rerun_of_a_finished_run_with_another_config_says_what_differs(data_dir: Path, tmp_path: Path) -> None:
    plan = _plan(data_dir, tmp_path / "saves")
    plan.output_dir.mkdir(parents=True)
    (plan.output_dir / "all_results.json").write_text("{}")
    (plan.output_dir / "oda_sft_config.yaml").write_text(yaml.safe_dump(dict(plan.config, cutoff_len=32768)))
    before = snapshot(tmp_path / "saves")
    with pytest.raises(RunStateError, match=r"holds a finished run .*\(differs in: cutoff_len\): .*`.* --force`"):
        start_run(plan)
    assert snapshot(tmp_path / "saves") == before
    # What only changes speed, not the math, is the same run: still skipped.
    fast_only = dict(plan.config, disable_gradient_checkpointing=True, tokenized_path="/elsewhere")
    (plan.output_dir / "oda_sft_config.yaml").write_text(yaml.safe_dump(fast_only))
    assert start_run(plan).outcome == "skipped"


def test_a_checkpoint_is_complete_only_when_every_file_was_written_to_the_end(tmp_path: Path) -> None:
    import json
    import zipfile

    from oda_sft.runs.outdir import checkpoint_is_complete

    ckpt = tmp_path / "checkpoint-6"
    ckpt.mkdir()
    for name in ("optimizer.pt", "rng_state_0.pth", "rng_state_1.pth"):
        with zipfile.ZipFile(ckpt / name, "w") as archive:  # torch.save's format
            archive.writestr("data.pkl", b"x" * 100)
    header = json.dumps({"w": {"dtype": "F32", "shape": [4], "data_offsets": [0, 16]}}).encode()
    (ckpt / "model.safetensors").write_bytes(len(header).to_bytes(8, "little") + header + b"\0" * 16)
    assert not checkpoint_is_complete(ckpt, 2)  # no trainer_state.json yet
    (ckpt / "trainer_state.json").write_text('{"global_step": 6, "log_hist')  # cut off while written
    assert not checkpoint_is_complete(ckpt, 2)
    (ckpt / "trainer_state.json").write_text('{"global_step": 6}')
    assert checkpoint_is_complete(ckpt, 2)
    assert not checkpoint_is_complete(ckpt, 3)  # rank 2 never wrote its RNG state
    whole = (ckpt / "rng_state_1.pth").read_bytes()
    (ckpt / "rng_state_1.pth").write_bytes(whole[:-10])  # rank 1 killed while writing
    assert not checkpoint_is_complete(ckpt, 2)
    for torn in (b"", b"P"):  # created, nothing (or one byte) written yet: seen after a SIGTERM on two ranks
        (ckpt / "rng_state_1.pth").write_bytes(torn)
        assert not checkpoint_is_complete(ckpt, 2)
    (ckpt / "rng_state_1.pth").write_bytes(whole)
    weights = (ckpt / "model.safetensors").read_bytes()
    (ckpt / "model.safetensors").write_bytes(weights[:-4])
    assert not checkpoint_is_complete(ckpt, 2)


def test_a_train_checks_that_it_can_start_once(
    cli: Cli, data_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from oda_sft.train import launcher

    calls: list[str] = []
    monkeypatch.setattr(launcher, "require_launcher", lambda: calls.append("launcher"))
    monkeypatch.setattr(launcher, "check_patches", lambda _patches: calls.append("patches"))
    plan = _plan(data_dir, tmp_path / "saves")
    plan.output_dir.mkdir(parents=True)
    (plan.output_dir / "all_results.json").write_text("{}")  # finished: the run is skipped, nothing launches
    r = cli("train", "--model", "tiny", "--dataset", "oda_demo", "--dataset-dir", str(data_dir),
            "--output-root", str(tmp_path / "saves"))  # fmt: skip
    assert r.code == 0 and "skipped:" in r.err, r.err
    assert calls == ["launcher", "patches"]
