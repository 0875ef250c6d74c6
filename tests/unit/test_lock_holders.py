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
