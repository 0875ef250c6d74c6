"""The commands oda-sft prints as advice parse, with the real command-line parser, into exactly the run
they are about (run for real in tests/integration/test_advice_real.py); continuing from a run's own
checkpoint is a new run beside it; SIGTERM in oda-sft's first moments stops it cleanly; the disk check."""

from __future__ import annotations

import shlex
from dataclasses import replace
from pathlib import Path

import pytest

from oda_sft.cli.workload import parse_workload
from oda_sft.errors import StorageError
from oda_sft.runs import space
from oda_sft.runs.outdir import continued_output_dir, inspect_output_dir
from oda_sft.train.advice import Rerun
from oda_sft.train.plan import plan_train
from oda_sft.train.request import LaunchOptions, TrainRequest


def _parsed(command: str) -> tuple[TrainRequest, bool, bool]:
    argv = shlex.split(command)
    assert Path(argv[0]).name == "oda-sft" and argv[1] == "train"
    work = parse_workload(argv[1:], "a test")
    return work.requests[0], work.run.force, work.run.tokenized_cache


@pytest.mark.parametrize(
    "request_",
    [
        TrainRequest(model="tiny", dataset="oda_demo"),
        TrainRequest(
            model="qwen",
            dataset="my_data",
            seed=7,
            mode="long",
            resumable=True,
            save_steps=20,
            profile="fast",
            overrides=["logging_steps=1", "run_name=a b'c"],
            launch=LaunchOptions(nproc_per_node=8, nnodes=2, node_rank=1, master_addr="n0", master_port=29600),
        ),
    ],
)
def test_printed_commands_parse_into_the_same_run(request_: TrainRequest, tmp_path: Path) -> None:
    request = replace(request_, dataset_dir=tmp_path / "data", output_root=tmp_path / "saves")
    rerun = Rerun(request, tokenized_cache=False)
    parsed, force, cache = _parsed(rerun.command())
    assert parsed == replace(request, dataset_dir=request.dataset_dir.resolve(), output_root=request.output_root)
    assert not force and not cache
    parsed, force, _ = _parsed(rerun.command(force=True))
    assert force and parsed.overrides == request.overrides  # --force lands before `--`
    checkpoint = tmp_path / "saves" / "x" / "checkpoint-8"
    parsed, force, _ = _parsed(rerun.command(model_path=checkpoint))
    assert parsed.model_path == checkpoint and not force


def test_continuing_from_a_runs_own_checkpoint_trains_beside_it(data_dir: Path, tmp_path: Path) -> None:
    base = TrainRequest(model="tiny", dataset="oda_demo", dataset_dir=data_dir, output_root=tmp_path)
    out = plan_train(base).output_dir
    (out / "checkpoint-8").mkdir(parents=True)
    (out / "checkpoint-8" / "config.json").write_text("{}")
    plan = plan_train(replace(base, model_path=out / "checkpoint-8"))
    assert plan.output_dir == out.with_name("seed-42.from-checkpoint-8")
    assert plan.config["model_name_or_path"] == str(out / "checkpoint-8")
    assert any("trains from those weights into" in n for n in plan.notes)
    assert continued_output_dir(out, tmp_path / "elsewhere") == out  # weights from elsewhere: the usual dir
    assert continued_output_dir(out, out) == out.with_name("seed-42.from-final")


def test_the_disk_check_refuses_a_run_that_cannot_fit(
    data_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    plan = plan_train(TrainRequest(model="llama", dataset="oda_demo", dataset_dir=data_dir, output_root=tmp_path))
    need = space.needed_bytes(plan.preset.shape.params, bf16=True, full_checkpoints=False, keep=1, existing=0)
    assert 40 * space.GIB < need < 60 * space.GIB  # 8B parameters in bf16: final weights + 2 checkpoints
    monkeypatch.setattr(space, "disk_free", lambda _path: need - 1)
    with pytest.raises(StorageError, match=r"not enough space in .* about 4\d\.\d GiB needed"):
        space.check(
            plan.config, plan.preset.shape.params, plan.output_dir, len(inspect_output_dir(plan.output_dir).checkpoints)
        )
    monkeypatch.setattr(space, "disk_free", lambda _path: need)
    space.check(
        plan.config, plan.preset.shape.params, plan.output_dir, len(inspect_output_dir(plan.output_dir).checkpoints)
    )
    assert StorageError.exit_code == 6


def test_a_failed_run_on_a_full_disk_says_so(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(space, "disk_free", lambda _path: 5 * 1024**2)
    assert "has only 5 MiB free, so a full disk is the likely cause" in space.diagnose(tmp_path)
    monkeypatch.setattr(space, "disk_free", lambda _path: 50 * space.GIB)
    assert space.diagnose(tmp_path) == ""


def test_a_write_that_fails_for_space_names_its_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """write() on a full disk raises ENOSPC without a file name: the one-line error still names it."""
    import errno
    import os

    from oda_sft.util import fs

    def full(_fd: int) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(fs.os, "fsync", full)
    target = tmp_path / "run" / "oda_sft_run.json"
    with pytest.raises(OSError) as raised:
        fs.atomic_write_text(target, "{}")
    assert raised.value.filename == str(target) and raised.value.errno == errno.ENOSPC
    assert not target.exists() and not list(target.parent.glob(".*.tmp"))
