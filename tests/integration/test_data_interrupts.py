"""`data add --force` stopped by real signals at every step, at random times, and by a real write limit:
afterwards (once the next command has opened the dataset dir) the dataset dir holds either the old
state or the new one, byte for byte, never a mix, and no temporary file."""

from __future__ import annotations

import json
import random
import re
import resource
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from oda_sft.data.registry.transaction import COMMIT_STEPS

from conftest import snapshot

# Runs the real CLI in a real process; the transaction's step seam sends the real signal to itself.
RUNNER = """
import os, signal, sys
from oda_sft.data.registry import transaction
from oda_sft.cli import main
step_at, sig = sys.argv[1], getattr(signal, sys.argv[2])
def stop(step):
    if step == step_at:
        os.kill(os.getpid(), sig)
        time.sleep(1)  # a blocked signal arrives after the commit; SIGKILL never gets here
import time
transaction.step = stop
sys.exit(main(sys.argv[3:]))
"""
ADDED_AT = re.compile(r'"added_at": "[^"]*"')


def jsonl(path: Path, n: int, tag: str) -> Path:
    with path.open("w", encoding="utf-8") as f:
        for i in range(n):
            turns = [{"role": "user", "content": f"{tag} question {i}"}, {"role": "assistant", "content": f"{tag} {i}"}]
            f.write(json.dumps({"messages": turns}) + "\n")
    return path


def oda(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "oda_sft", *args], capture_output=True, text=True, timeout=300)


class States:
    """The dataset dir before (`old`) and after (`new`) the add; `classify` says which one a dir holds."""

    def __init__(self, tmp: Path, records: int) -> None:
        self.ddir = tmp / "data"
        self.ddir.mkdir()
        (self.ddir / "dataset_info.json").write_text('{\n  "keep": {"file_name": "keep.json"}\n}\n')
        (self.ddir / "keep.json").write_text('[{"instruction": "q", "output": "a"}]')
        assert (
            oda(
                "data", "add", "x", str(jsonl(tmp / "old.jsonl", 50, "old")), "--dataset-dir", str(self.ddir)
            ).returncode
            == 0
        )
        self.source = jsonl(tmp / "new.jsonl", records, "new")
        self.pristine = tmp / "pristine"
        shutil.copytree(self.ddir, self.pristine)
        self.old = snapshot(self.ddir)
        reference = tmp / "refx"  # a path as long as data/: the same bytes
        shutil.copytree(self.ddir, reference)
        done = oda("data", "add", "x", str(self.source), "--dataset-dir", str(reference), "--force")
        assert done.returncode == 0, done.stderr
        self.new = {k: ADDED_AT.sub("", v.decode()) for k, v in snapshot(reference).items()}

    def reset(self) -> None:
        shutil.rmtree(self.ddir)
        shutil.copytree(self.pristine, self.ddir)

    def classify(self) -> str:
        listed = oda("list-datasets", "--dataset-dir", str(self.ddir))  # the next command: it recovers first
        assert listed.returncode == 0, listed.stderr
        now = snapshot(self.ddir)
        if now == self.old:
            return "old"
        if {k: ADDED_AT.sub("", v.decode()) for k, v in now.items()} == self.new:
            return "new"
        return f"MIXED: {sorted(now)} vs old {sorted(self.old)}"

    def add_argv(self) -> list[str]:
        return ["data", "add", "x", str(self.source), "--dataset-dir", str(self.ddir), "--force"]


@pytest.fixture(scope="module")
def states(tmp_path_factory: pytest.TempPathFactory) -> States:
    return States(tmp_path_factory.mktemp("interrupts"), 3000)


# Where each stop must leave the dir: before the commit point the old state; a held-back SIGTERM lets
# the commit finish; past the commit point the new state.
EXPECTED = {
    ("converting", "SIGTERM"): "old", ("converting", "SIGKILL"): "old",
    ("data-written", "SIGTERM"): "old", ("data-written", "SIGKILL"): "old",
    **{(s, "SIGTERM"): "new" for s in COMMIT_STEPS},
    **{(s, "SIGKILL"): "old" for s in COMMIT_STEPS[:4]},
    ("registry-in-place", "SIGKILL"): "new", ("committed", "SIGKILL"): "new",
}  # fmt: skip


@pytest.mark.parametrize(("step", "sig"), sorted(EXPECTED))
def test_a_signal_at_every_step_leaves_the_old_or_the_new_state(states: States, step: str, sig: str) -> None:
    states.reset()
    proc = subprocess.run(
        [sys.executable, "-c", RUNNER, step, sig, *states.add_argv()], capture_output=True, text=True, timeout=300
    )
    if sig == "SIGKILL":
        assert proc.returncode == -signal.SIGKILL, proc.stderr
    else:
        # One mapping for every command: SIGTERM is 143 and is named as SIGTERM, as `train` does.
        assert proc.returncode == 128 + getattr(signal, sig), proc.stderr
        assert proc.stderr.strip().splitlines()[-1] == f"error: interrupted by {sig}", proc.stderr
    assert states.classify() == EXPECTED[(step, sig)]


def test_signals_at_random_times_leave_the_old_or_the_new_state(tmp_path: Path) -> None:
    states = States(tmp_path, 20_000)
    started = time.monotonic()
    states.reset()
    assert oda(*states.add_argv()).returncode == 0
    took = time.monotonic() - started
    rng = random.Random(12)
    seen = set()
    for trial in range(6):
        states.reset()
        sig = (signal.SIGTERM, signal.SIGKILL, signal.SIGHUP)[trial % 3]
        proc = subprocess.Popen([sys.executable, "-m", "oda_sft", *states.add_argv()], stderr=subprocess.PIPE)
        time.sleep(rng.uniform(0.2, took))
        proc.send_signal(sig)
        _, err = proc.communicate(timeout=300)
        if sig != signal.SIGKILL and proc.returncode != 0:  # 0: the add had finished before the signal
            assert proc.returncode == 128 + sig, err
            assert err.decode().strip().splitlines()[-1] == f"error: interrupted by {sig.name}", err
        state = states.classify()
        assert state in ("old", "new"), (trial, sig, state)
        seen.add(state)
    assert "old" in seen  # most stops land before the commit point


def _file_size_limit(limit: int) -> None:
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit then fails with EFBIG
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))


def test_a_real_write_limit_during_an_add_leaves_the_old_state(states: States) -> None:
    states.reset()
    proc = subprocess.run(
        [sys.executable, "-m", "oda_sft", *states.add_argv()],
        capture_output=True,
        text=True,
        timeout=300,
        preexec_fn=lambda: _file_size_limit(64 << 10),
    )
    assert proc.returncode == 6, proc.stderr
    assert f"File too large ({states.ddir / 'x.json'})" in proc.stderr
    assert snapshot(states.ddir) == states.old  # already clean: nothing is left for the next command
    assert states.classify() == "old"
