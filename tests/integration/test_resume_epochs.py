"""Exact resumes in every epoch, proven with real llamafactory-cli runs of the tiny model: a run stopped
by SIGTERM inside epoch 2, inside epoch 3, in the middle of a checkpoint save, and resumed from an epoch
boundary logs the same loss at every step as the uninterrupted run; and so does a 2-rank (gloo) run.

The tiny demo: 128 samples, batch 4 x accumulation 4 = 16 per step: 8 steps per epoch on one rank
(steps 1-8, 9-16, 17-24), 4 per epoch on two (1-4, 5-8, 9-12).
"""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest

from oda_sft.runs.outdir import checkpoint_is_complete

from conftest import REPO
from realproc import descendants, kill_tree, manifest, offline_env, signal_all

RUN = Path("tiny/full/sft-oda_demo/seed-42")
TIMEOUT_S = 900


def losses(run_dir: Path) -> dict[int, float]:
    out: dict[int, float] = {}
    for line in (run_dir / "trainer_log.jsonl").read_text().splitlines():
        entry = json.loads(line)
        if "loss" in entry:
            out[entry["current_steps"]] = entry["loss"]  # a resumed run logs a step again: the later one counts
    return out


def train_argv(data_dir: Path, root: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "oda_sft", "train", "--model", "tiny", "--dataset", "oda_demo",
            "--dataset-dir", str(data_dir), "--output-root", str(root), "--resumable", *extra]  # fmt: skip


def run_to_end(argv: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(argv, cwd=cwd, env=offline_env(), capture_output=True, text=True, timeout=TIMEOUT_S)
    assert done.returncode == 0, done.stderr[-4000:]
    return done


def _trainer_tree(run_dir: Path) -> set[int]:
    """The supervisor's descendants (the trainer), from the pid the run's lock records."""
    lock = run_dir.with_name(f".{run_dir.name}.oda_sft.lock")
    try:
        holder = json.loads(lock.read_text().strip() or "{}")
    except (OSError, ValueError):
        return set()
    sup = holder.get("supervisor_pid")
    return descendants(sup) if isinstance(sup, int) else set()


def interrupt(
    argv: list[str],
    cwd: Path,
    run_dir: Path,
    when: Callable[[], bool],
    still: Callable[[], bool] | None = None,
    missed_ok: bool = False,
) -> tuple[int | None, str]:
    """Start oda-sft; once `when()` holds, SIGTERM it as Slurm's preemption does. With `still`, the trainer
    is frozen first (SIGSTOP) and the signal sent only if `still()` holds while it is frozen, so it lands
    inside a window a few milliseconds wide (a checkpoint being written); otherwise it is thawed and the
    wait goes on. Returns oda-sft's exit status and stderr; with `missed_ok`, a run that ended before the
    moment came returns None instead of failing the test."""
    err_path = cwd / f"err-{uuid.uuid4().hex[:8]}.log"
    with err_path.open("w") as err:
        proc = subprocess.Popen(argv, cwd=cwd, env=offline_env(), stdout=subprocess.DEVNULL, stderr=err,
                                start_new_session=True)  # fmt: skip
    deadline = time.monotonic() + TIMEOUT_S
    try:
        while True:
            if proc.poll() is not None and missed_ok:
                return None, err_path.read_text()
            assert proc.poll() is None, "the run ended before it could be interrupted:\n" + err_path.read_text()[-3000:]
            assert time.monotonic() < deadline, "timed out waiting for the moment to interrupt"
            if when():
                if still is None:
                    break
                tree = _trainer_tree(run_dir)
                signal_all(tree, signal.SIGSTOP)
                if still():
                    proc.send_signal(signal.SIGTERM)
                    time.sleep(0.3)  # oda-sft forwards SIGTERM to the frozen trainer, pending until it thaws
                    signal_all(tree, signal.SIGCONT)
                    break
                signal_all(tree, signal.SIGCONT)
            time.sleep(0.001)
        if still is None:
            proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=TIMEOUT_S)
    finally:
        kill_tree(proc)
    return proc.returncode, err_path.read_text()


def complete(checkpoint: Path, world: int = 1) -> Callable[[], bool]:
    """Written to the end, by every rank: what a resume can start from."""
    return lambda: checkpoint.is_dir() and checkpoint_is_complete(checkpoint, world)


def assert_same_losses(reference: dict[int, float], resumed: dict[int, float]) -> None:
    assert sorted(resumed) == sorted(reference)
    different = {s: (reference[s], resumed[s]) for s in reference if abs(reference[s] - resumed[s]) > 1e-4}
    assert not different, f"steps whose loss differs from the uninterrupted run: {different}"


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> dict[int, float]:
    """The uninterrupted run, one rank: the loss at each of its 24 steps."""
    root = tmp_path_factory.mktemp("reference")
    data = root / "data"
    shutil.copytree(REPO / "data", data)
    run_to_end(train_argv(data, root / "saves", "--save-steps", "5", "--", "logging_steps=1"), root)
    found = losses(root / "saves" / RUN)
    assert sorted(found) == list(range(1, 25))
    return found


def test_resumes_inside_epoch_2_and_inside_epoch_3_match_the_uninterrupted_run(
    reference: dict[int, float], data_dir: Path, tmp_path: Path
) -> None:
    argv = train_argv(data_dir, tmp_path / "saves", "--save-steps", "5", "--", "logging_steps=1")
    run = tmp_path / "saves" / RUN
    # Stopped once checkpoint-10 (epoch 2, step 2 of 8) is saved, before checkpoint-15.
    rc, err = interrupt(argv, tmp_path, run, complete(run / "checkpoint-10"))
    assert rc == 143, err[-3000:]
    assert manifest(run)["status"] == "interrupted"
    assert "to resume from checkpoint-10: `" in err
    # Resumed, and stopped again once checkpoint-20 (epoch 3, step 4 of 8) is saved.
    rc, err = interrupt(argv, tmp_path, run, complete(run / "checkpoint-20"))
    assert rc == 143, err[-3000:]
    assert "resuming:" in err and "continues from checkpoint-10" in err
    # The command oda-sft printed to resume, run as printed.
    printed = err.split("to resume from checkpoint-20: `", 1)[1].split("`", 1)[0]
    done = subprocess.run(printed, shell=True, cwd="/", env=offline_env(), capture_output=True, text=True,
                          timeout=TIMEOUT_S)  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    assert "continues from checkpoint-20" in done.stderr
    m = manifest(run)
    assert [a["status"] for a in m["attempts"]] == ["interrupted", "interrupted", "finished"]
    assert [a.get("resumed_from") for a in m["attempts"]] == [None, "checkpoint-10", "checkpoint-20"]
    assert m["patches"] == ["resume_epoch", "checkpoint_stamp"]
    assert m["launch"]["env"]["ODA_SFT_PATCHES"] == "resume_epoch,checkpoint_stamp"
    assert_same_losses(reference, losses(run))


def test_a_save_cut_short_and_a_resume_from_an_epoch_boundary_match_the_uninterrupted_run(
    reference: dict[int, float], data_dir: Path, tmp_path: Path
) -> None:
    # Checkpoints every 8 steps: at the end of each epoch.
    argv = train_argv(data_dir, tmp_path / "saves", "--save-steps", "8", "--", "logging_steps=1")
    run = tmp_path / "saves" / RUN
    ckpt = run / "checkpoint-16"
    # SIGTERM while checkpoint-16 is being written: its files are there, trainer_state.json (the last) is not.
    # That window is milliseconds wide, and a poll on a loaded machine can miss it: then the run finishes, and
    # it is tried again from scratch (a fresh output root), up to 3 times.
    for _ in range(3):
        rc, err = interrupt(
            argv,
            tmp_path,
            run,
            when=lambda: (ckpt / "config.json").is_file(),
            still=lambda: not (ckpt / "trainer_state.json").is_file(),
            missed_ok=True,
        )
        if rc is not None:
            break
        shutil.rmtree(tmp_path / "saves")
    assert rc == 143, err[-3000:]
    assert not (ckpt / "trainer_state.json").exists()
    again = run_to_end(argv, tmp_path)
    assert "checkpoint-16 was cut short while saving; moved to incomplete.checkpoint-16." in again.stderr
    assert "continues from checkpoint-8" in again.stderr  # the boundary between epochs 1 and 2
    kept = list(run.glob("incomplete.checkpoint-16.*"))  # kept, and not rotated away by save_total_limit
    assert len(kept) == 1 and (kept[0] / "config.json").is_file()
    assert_same_losses(reference, losses(run))


def test_two_ranks_resumed_inside_epoch_2_match_the_uninterrupted_run(data_dir: Path, tmp_path: Path) -> None:
    """Two ranks over gloo (torchrun, one process per rank): 4 steps per epoch, 12 in all."""
    common = ("--nproc-per-node", "2", "--save-steps", "3", "--", "logging_steps=1")
    run_to_end(train_argv(data_dir, tmp_path / "whole", *common), tmp_path)
    whole = losses(tmp_path / "whole" / RUN)
    assert sorted(whole) == list(range(1, 13))

    argv = train_argv(data_dir, tmp_path / "saves", *common)
    run = tmp_path / "saves" / RUN
    rc, err = interrupt(argv, tmp_path, run, complete(run / "checkpoint-6", 2))  # epoch 2, step 2 of 4
    assert rc == 143, err[-3000:]
    resumed = run_to_end(argv, tmp_path)
    assert "continues from checkpoint-6" in resumed.stderr
    assert manifest(run)["world_size"] == 2
    assert_same_losses(whole, losses(run))
