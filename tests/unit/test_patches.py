"""Trainer-side patches: the post-import hook, the version guard, sitecustomize, and resume_epoch
itself, against the real accelerate DataLoaderShard and SeedableRandomSampler the Trainer uses."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

from oda_sft.errors import LaunchError
from oda_sft.train import launcher, patches
from oda_sft.train.patches import resume_epoch
from oda_sft.train.request import LaunchOptions


def _loader(epoch: int) -> Any:
    """A prepared training loader as accelerate builds it for the Trainer: shuffled by a seeded sampler."""
    import torch
    from accelerate.data_loader import DataLoaderShard, SeedableRandomSampler

    data = list(range(32))
    sampler = SeedableRandomSampler(data, data_seed=42)
    batches = torch.utils.data.BatchSampler(sampler, batch_size=4, drop_last=False)
    loader = DataLoaderShard(data, batch_sampler=batches)
    loader.set_epoch(epoch)
    return loader


def _batches(loader: Any) -> list[list[int]]:
    return [[int(x) for x in batch] for batch in loader]


@pytest.mark.parametrize("epoch", [1, 2])
def test_unpatched_skip_replays_epoch_0_and_the_patch_keeps_the_epoch(epoch: int) -> None:
    from accelerate.data_loader import skip_first_batches

    whole = _batches(_loader(epoch))
    assert whole != _batches(_loader(0))  # each epoch has its own order
    # What Trainer does on a resume 3 batches into `epoch`:
    assert _batches(skip_first_batches(_loader(epoch), 3)) == _batches(_loader(0))[3:]  # the upstream bug
    assert _batches(resume_epoch.keep_epoch(skip_first_batches)(_loader(epoch), 3)) == whole[3:]


def test_the_patch_is_a_no_op_in_the_first_epoch() -> None:
    from accelerate.data_loader import skip_first_batches

    fixed = resume_epoch.keep_epoch(skip_first_batches)
    assert _batches(fixed(_loader(0), 5)) == _batches(skip_first_batches(_loader(0), 5)) == _batches(_loader(0))[5:]


def test_installed_versions_are_the_ones_the_patch_was_written_for() -> None:
    # If this fails, LLaMA-Factory's pins moved: re-check the upstream fix and the patch, then update WRITTEN_FOR.
    assert patches.version_mismatch("resume_epoch") is None
    launcher.check_patches(("resume_epoch",))


def test_a_version_mismatch_refuses_before_launch(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(resume_epoch.WRITTEN_FOR, "accelerate", "0.0.1")
    message = patches.version_mismatch("resume_epoch")
    assert message is not None and "written for accelerate 0.0.1" in message and "this environment has" in message
    with pytest.raises(LaunchError, match=r"resume_epoch was written for accelerate 0\.0\.1.*without --resumable"):
        launcher.check_patches(("resume_epoch",))


def test_only_resumable_runs_carry_the_patch() -> None:
    assert launcher.patches_for(resumable=False) == ()
    _, env = launcher.build_command(Path("/r/c.yaml"), LaunchOptions(), 0, base_path="/usr/bin", base_pythonpath="")
    assert "PYTHONPATH" not in env and patches.ENV_VAR not in env
    _, env = launcher.build_command(
        Path("/r/c.yaml"), LaunchOptions(), 0, base_path="/usr/bin", patches=("resume_epoch",), base_pythonpath="/mine"
    )
    assert env[patches.ENV_VAR] == "resume_epoch"
    assert env["PYTHONPATH"] == f"{patches.site_dir()}{os.pathsep}/mine"  # first, the caller's path kept after it
    assert launcher.shown_env(env)["PYTHONPATH"] == f"{patches.site_dir()}{os.pathsep}$PYTHONPATH"
    with pytest.raises(KeyError, match="unknown oda-sft patch"):
        patches.launch_env(["nope"], None)


def _python(code: str, env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], env=env, cwd=cwd, capture_output=True,
                          text=True, timeout=60)  # fmt: skip


def test_checkpoint_stamp_writes_the_identity_before_the_trainer_state_and_only_into_checkpoints(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from transformers import trainer_callback

    from oda_sft.runs import stamp
    from oda_sft.train.patches import checkpoint_stamp

    assert launcher.patches_for(resumable=True) == ("resume_epoch", "checkpoint_stamp")
    assert patches.version_mismatch("checkpoint_stamp") is None
    text = stamp.encode("mine", "a" * 64, None, {"dataset": "mine", "learning_rate": 1e-5})
    seen: list[bool] = []

    def save_to_json(self: Any, json_path: str) -> None:  # the trainer's own: is the stamp there already?
        seen.append((Path(json_path).parent / stamp.STAMP_NAME).is_file())
        Path(json_path).write_text("{}")

    monkeypatch.setattr(trainer_callback.TrainerState, "save_to_json", save_to_json)
    monkeypatch.setenv(stamp.ENV, text)
    checkpoint_stamp.install(trainer_callback)
    checkpoint_stamp.install(trainer_callback)  # once per process: not wrapped twice
    state = trainer_callback.TrainerState()
    for folder in ("checkpoint-10", "seed-42"):  # a checkpoint; the final save at the top of the output dir
        (tmp_path / folder).mkdir()
        state.save_to_json(str(tmp_path / folder / "trainer_state.json"))
    assert seen == [True, False]
    assert stamp.read(tmp_path / "checkpoint-10") == stamp.Stamp(
        "mine", "a" * 64, None, {"dataset": "mine", "learning_rate": 1e-5}
    )
    assert not (tmp_path / "seed-42" / stamp.STAMP_NAME).exists()
    monkeypatch.delenv(stamp.ENV)
    with pytest.raises(SystemExit, match="ODA_SFT_CHECKPOINT_IDENTITY is not set"):
        checkpoint_stamp.install(trainer_callback)
