"""The trainer's supervisor and the output-dir lock, with real (small, fast) processes standing in for
the trainer: a parent that starts a child in a session of its own, as torchrun starts its ranks."""

from __future__ import annotations

import json
import os
import socket
from pathlib import Path

import pytest

from oda_sft.errors import RunStateError
from oda_sft.runs import lock


def test_a_second_holder_is_refused_with_the_first_ones_name(tmp_path: Path) -> None:
    run = tmp_path / "seed-42"
    first = lock.acquire(run)
    try:
        with pytest.raises(RunStateError) as refused:
            lock.acquire(run)
        message = str(refused.value)
        assert f"is being trained right now by oda-sft pid {os.getpid()} on {socket.gethostname()}" in message
        assert f"`kill {os.getpid()}`" in message
        lock.refuse_if_busy(tmp_path / "seed-43")  # another run: free
        with pytest.raises(RunStateError):
            lock.refuse_if_busy(run)
        assert json.loads(lock.lock_path(run).read_text())["pid"] == os.getpid()
        assert lock.lock_path(run).parent == tmp_path and not run.exists()  # beside the run, never inside
    finally:
        first.release()
    assert lock.probe(run) is None
    lock.acquire(run).release()  # free again


def test_node_ranks_lock_their_own_files(tmp_path: Path) -> None:
    run = tmp_path / "seed-42"
    with lock.acquire(run, 0), lock.acquire(run, 1):
        assert lock.probe(run, 0) is not None and lock.probe(run, 1) is not None
        assert lock.lock_path(run, 1).name == ".seed-42.oda_sft.node-1.lock"


def test_a_lock_file_deleted_while_held_still_keeps_a_second_holder_out(tmp_path: Path) -> None:
    run = tmp_path / "seed-42"
    first = lock.acquire(run)  # a fresh run: its dir does not exist yet
    try:
        first.hold_dir()  # created and held before anything is written into it
        assert run.is_dir() and len(first.pass_fds()) == 2  # both go to the trainer's supervisor
        (run / "oda_sft_run.json").write_text(json.dumps(
            {"status": "running", "host": socket.gethostname(), "attempts": [{"pid": os.getpid(), "started_at": "t"}]}
        ))  # fmt: skip
        lock.lock_path(run).unlink()  # by hand, while the run lives
        holder = lock.probe(run)
        assert holder is not None and holder.pid == os.getpid()  # named from the run's manifest
        with pytest.raises(RunStateError, match=f"being trained right now by oda-sft pid {os.getpid()} on"):
            lock.refuse_if_busy(run)
        with pytest.raises(RunStateError, match="being trained right now"):
            lock.acquire(run)
        assert lock.probe(run, 1) is None  # other node ranks lock their own files only
    finally:
        first.release()
    assert lock.probe(run) is None
    with lock.acquire(run) as again:  # free again, and an existing run dir is held from the start
        assert again.dir_fd is not None


WHY = {
    ("train", "train"): "a second trainer would delete the first one's checkpoints",
    ("train", "eval"): "training waits for the eval to end",
    ("eval", "eval"): "a second eval waits for it to end",
    ("eval", "train"): "the eval waits for the training to end",
}


@pytest.mark.parametrize(("asker", "holder"), list(WHY))
def test_every_pair_of_holders_names_the_holder_and_what_waits_for_what(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, asker: str, holder: str
) -> None:
    monkeypatch.setattr(lock, "_RETRY_S", 0.2)
    run = tmp_path / "seed-42"
    with lock.acquire(run, role=holder) as held:
        held.hold_dir()
        assert json.loads(lock.lock_path(run).read_text())["role"] == holder  # what the lock records
        doing = "being evaluated" if holder == "eval" else "being trained"
        name = "oda-sft eval, pid" if holder == "eval" else "oda-sft pid"
        for refuse in (lambda: lock.refuse_if_busy(run, role=asker), lambda: lock.acquire(run, role=asker)):
            with pytest.raises(RunStateError) as refused:
                refuse()
            message = str(refused.value)
            assert f"{run} is {doing} right now by {name} {os.getpid()} on {socket.gethostname()}" in message
            assert WHY[(asker, holder)] in message and f"`kill {os.getpid()}`" in message
            assert "unknown host" not in message and "a process" not in message
        # the lock file deleted by hand: the directory lock names the holder from the run's manifest
        lock.lock_path(run).unlink()
        record: dict[str, object] = {"status": "finished"}
        if holder == "eval":
            record["evals"] = [{"status": "running", "pid": os.getpid(), "host": socket.gethostname()}]
        else:
            record = {"status": "running", "host": socket.gethostname(), "attempts": [{"pid": os.getpid()}]}
        (run / "oda_sft_run.json").write_text(json.dumps(record))
        with pytest.raises(RunStateError) as refused:
            lock.acquire(run, role=asker)
        assert f"{run} is {doing} right now by {name} {os.getpid()}" in str(refused.value)


def test_a_holder_that_recorded_nothing_is_not_called_a_process_on_an_unknown_host(tmp_path: Path) -> None:
    run = tmp_path / "seed-42"
    run.mkdir()
    (run / "oda_sft_run.json").write_text(json.dumps({"status": "finished"}))  # no running attempt or eval
    blank = lock.Holder("", None, "")
    message = str(lock._busy(run, blank, "eval"))
    assert "unknown host" not in message and "by oda-sft a process" not in message
    assert "an oda-sft process that has not recorded its pid and host yet" in message
    assert (
        lock.Holder("h", 7, "", role="eval").busy_line(run)
        == f"{run} is being evaluated right now by oda-sft eval, pid 7 on h"
    )
