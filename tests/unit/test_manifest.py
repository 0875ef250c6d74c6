"""The run manifest's pure parts: secrets stay out, results are read from LLaMA-Factory's files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from oda_sft.data.registry.hashing import file_sha256
from oda_sft.errors import RunStateError, UsageError
from oda_sft.runs import manifest
from oda_sft.train.plan import plan_train
from oda_sft.train.render import parse_overrides
from oda_sft.train.request import TrainRequest
from oda_sft.train.run import start_run
from oda_sft.util.secrets import redact


def test_secrets_never_reach_the_manifest(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert redact({"HF_TOKEN": "x", "WANDB_API_KEY": "y", "AWS_SECRET_ACCESS_KEY": "z", "NNODES": "2"}) == {
        "NNODES": "2"
    }
    redacted = manifest.redact_argv(["train", "--", "hub_token=abc", "lr=1"])
    assert redacted == ["train", "--", "hub_token=<redacted>", "lr=1"]
    monkeypatch.setattr("sys.argv", ["oda-sft", "train", "--", "api_key=s3cret"])
    path = tmp_path / "oda_sft_run.json"
    record = manifest.start(
        path,
        run={"seed": 1},
        launch_argv=["llamafactory-cli"],
        launch_env={"NNODES": "1", "MY_TOKEN": "s3cret"},
        gpu_count=0,
        world_size=1,
        resumed_from=None,
    )
    assert "s3cret" not in path.read_text() and record["status"] == "running"


def test_secret_overrides_are_refused() -> None:
    for item in ("hub_token=abc", "WANDB_API_KEY=x", "aws_secret_access_key=y", "db_password=z"):
        with pytest.raises(UsageError, match="looks like a secret"):
            parse_overrides([item])
    ok = parse_overrides(["include_num_input_tokens_seen=true", "add_special_tokens=false", "max_new_tokens=5"])
    # add_special_tokens is text in LLaMA-Factory (comma-separated tokens to add), so it gets the text.
    assert ok == {"include_num_input_tokens_seen": True, "add_special_tokens": "false", "max_new_tokens": 5}


def test_results_come_from_llamafactory_outputs(tmp_path: Path) -> None:
    (tmp_path / "all_results.json").write_text(json.dumps({"train_loss": 2.5, "train_runtime": 10.0, "epoch": 3.0}))
    (tmp_path / "trainer_log.jsonl").write_text(
        '{"current_steps": 10, "loss": 3.0}\n{"current_steps": 20, "loss": 2.0}\n{"current_st'  # cut by a kill
    )
    path = tmp_path / "oda_sft_run.json"
    record = manifest.start(path, run={}, launch_argv=[], launch_env={}, gpu_count=0, world_size=1, resumed_from=None)
    done = manifest.finish(path, record, "finished", 0, dataset_tokens=1000)
    assert done["results"] == {
        "attempts": [1],
        "train_loss": 2.5,
        "train_loss_steps": 20,
        "train_runtime": 10.0,
        "epoch": 3.0,
        "final_loss": 2.0,
        "final_step": 20,
        "dataset_tokens_per_epoch": 1000,
        "tokens_per_second": 300.0,
    }
    assert done["ended_at"]
    second = manifest.start(
        path, run={}, launch_argv=[], launch_env={}, gpu_count=0, world_size=1, resumed_from="checkpoint-8"
    )
    assert len(second["attempts"]) == 2 and second["started_at"] == done["started_at"]
    assert second["attempts"][1]["resumed_from"] == "checkpoint-8"


def test_sha256_is_memoised_but_follows_changes(tmp_path: Path) -> None:
    f = tmp_path / "d.json"
    f.write_text("[1]")
    first = file_sha256(f)
    assert file_sha256(f) == first
    f.write_text("[2, 3]")
    assert file_sha256(f) != first


def test_a_model_only_checkpoint_is_explained_not_resumed(data_dir: Path, tmp_path: Path) -> None:
    plan = plan_train(TrainRequest(model="tiny", dataset="oda_demo", dataset_dir=data_dir, output_root=tmp_path))
    ckpt = plan.output_dir / "checkpoint-8"
    ckpt.mkdir(parents=True)
    (ckpt / "model.safetensors").write_bytes((2).to_bytes(8, "little") + b"{}")  # complete, if empty
    (ckpt / "trainer_state.json").write_text("{}")
    (plan.output_dir / "oda_sft_config.yaml").write_text(yaml.safe_dump(plan.config))
    with pytest.raises(RunStateError, match="holds weights only") as info:
        start_run(plan)
    message = str(info.value)
    assert "--force" in message and f"--model-path {ckpt}" in message and "--resumable" in message
    assert (ckpt / "model.safetensors").exists()


def test_each_attempt_records_its_data_and_none_stays_running_unrecorded(tmp_path: Path) -> None:
    path = tmp_path / "oda_sft_run.json"
    first = manifest.start(path, run={"dataset": {"sha256": "a" * 64}}, launch_argv=[], launch_env={}, gpu_count=0,
                           world_size=1, resumed_from=None)  # fmt: skip
    assert first["attempts"][0]["dataset_sha256"] == "a" * 64
    # Its oda-sft killed with its supervisor: nobody wrote how it ended. The next attempt (under the lock) says so.
    second = manifest.start(path, run={"dataset": {"sha256": "a" * 64}}, launch_argv=[], launch_env={}, gpu_count=0,
                            world_size=1, resumed_from="checkpoint-3")  # fmt: skip
    earlier, now = second["attempts"]
    assert earlier["status"] == "interrupted" and "ended without a record" in earlier["note"]
    assert now["status"] == "running" and now["dataset_sha256"] == "a" * 64
