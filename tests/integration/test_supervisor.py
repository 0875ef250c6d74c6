"""The trainer's supervisor and the output-dir lock, with real (small, fast) processes standing in for
the trainer: a parent that starts a child in a session of its own, as torchrun starts its ranks."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

from oda_sft.runs import lock

# A stand-in trainer: writes its pid and its rank's pid; the rank runs in a session of its own, as
# torchrun's workers do, so no signal to the trainer's process group reaches it.
TRAINER = textwrap.dedent(
    """
    import os, subprocess, sys, time
    from pathlib import Path
    rank = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"], start_new_session=True)
    Path(sys.argv[1]).write_text(f"{os.getpid()} {rank.pid}")
    time.sleep(600)
    """
)

ODA = textwrap.dedent(
    """
    import sys
    from oda_sft.train import launcher
    from oda_sft.util import subproc
    from oda_sft.runs import lock
    held = lock.acquire(__import__("pathlib").Path(sys.argv[3]))
    sys.exit(launcher.run([sys.executable, sys.argv[1], sys.argv[2]], {},
                          subproc.Watch(keep_fds=held.pass_fds(), on_start=held.record_supervisor)))
    """
)


def _alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def _start(tmp_path: Path) -> tuple[subprocess.Popen[bytes], list[int], Path]:
    (tmp_path / "trainer.py").write_text(TRAINER)
    (tmp_path / "oda.py").write_text(ODA)
    out, run = tmp_path / "pids", tmp_path / "run"
    proc = subprocess.Popen([sys.executable, str(tmp_path / "oda.py"), str(tmp_path / "trainer.py"), str(out),
                             str(run)], start_new_session=True)  # fmt: skip
    deadline = time.monotonic() + 30
    while not out.exists() or len(out.read_text().split()) < 2:
        assert time.monotonic() < deadline and proc.poll() is None, "the stand-in trainer never started"
        time.sleep(0.02)
    return proc, [int(p) for p in out.read_text().split()], run


def test_sigkill_of_oda_sft_stops_every_process_of_the_trainer(tmp_path: Path) -> None:
    proc, (trainer, rank), run = _start(tmp_path)
    holder = lock.probe(run)
    assert holder is not None and holder.pid == proc.pid and holder.host == socket.gethostname()
    assert holder.supervisor_pid and _alive(holder.supervisor_pid)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(5)
    deadline = time.monotonic() + 10
    while any(_alive(p) for p in (trainer, rank, holder.supervisor_pid)) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not [p for p in (trainer, rank, holder.supervisor_pid) if _alive(p)], "orphans outlived oda-sft"
    assert lock.probe(run) is None, "the lock outlived the trainer"


def test_sigterm_stops_the_tree_and_the_status_says_so(tmp_path: Path) -> None:
    proc, (trainer, rank), _ = _start(tmp_path)
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(30) == 143
    assert not _alive(trainer) and not _alive(rank)  # the rank, in its own session, too
