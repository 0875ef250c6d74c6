"""Every command oda-sft suggests, parsed out of its real output and run as printed (real trainer, tiny
model): after an interrupt with model-only checkpoints (start over; go on from the weights as a new
run), after one with no checkpoint, on a finished run (train again), on an eval of a finished run whose
weights are gone (train again), and on a live run (stop it)."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

from realproc import offline_env

RUN = Path("tiny/full/sft-oda_demo/seed-42")
TIMEOUT_S = 900


def commands(text: str) -> list[str]:
    """The commands in oda-sft's messages: whatever it put between backticks after "oda-sft" or "kill"."""
    return [c for c in re.findall(r"`([^`]+)`", text) if " train " in c or c.startswith("kill ")]


def run_printed(command: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """Exactly as a person would paste it into a shell."""
    return subprocess.run(command, shell=True, cwd=cwd, env=offline_env(), capture_output=True, text=True,
                          timeout=TIMEOUT_S)  # fmt: skip


def status(run: Path) -> str:
    return str(json.loads((run / "oda_sft_run.json").read_text())["status"])


def start(argv: list[str], cwd: Path, err: Path) -> subprocess.Popen[bytes]:
    with err.open("w") as handle:
        return subprocess.Popen(argv, cwd=cwd, env=offline_env(), stdout=subprocess.DEVNULL, stderr=handle)


def wait_for(path: Path, proc: subprocess.Popen[bytes], err: Path) -> None:
    deadline = time.monotonic() + TIMEOUT_S
    while not path.exists():
        assert proc.poll() is None, err.read_text()[-3000:]
        assert time.monotonic() < deadline
        time.sleep(0.01)


def test_every_suggestion_works_as_printed(data_dir: Path, tmp_path: Path) -> None:
    root = tmp_path / "saves"
    run = root / RUN
    # The recipe as it is (model-only checkpoints once per epoch), from another directory than the one the
    # suggestions will be run from: they carry absolute paths.
    argv = [sys.executable, "-m", "oda_sft", "train", "--model", "tiny", "--dataset", "oda_demo",
            "--dataset-dir", str(data_dir), "--output-root", str(root), "--", "logging_steps=1"]  # fmt: skip
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()

    # 1. Interrupted after the first epoch's checkpoint: it holds weights only.
    err = tmp_path / "1.log"
    proc = start(argv, tmp_path, err)
    wait_for(run / "checkpoint-8" / "trainer_state.json", proc, err)
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(120) == 143
    said = err.read_text()
    force, from_weights = commands(said.split("interrupted:", 1)[1])
    assert force.endswith("--force -- logging_steps=1") and f"--model-path {run / 'checkpoint-8'}" in from_weights
    # The same command again refuses, and offers the same two commands.
    again = subprocess.run(argv, cwd=tmp_path, env=offline_env(), capture_output=True, text=True, timeout=TIMEOUT_S)
    assert again.returncode == 3 and commands(again.stderr) == [force, from_weights]

    # Going on from the weights is a new run beside the old one, which stays exactly as it was.
    before = sorted(p.relative_to(run) for p in run.rglob("*"))
    done = run_printed(from_weights, elsewhere)
    assert done.returncode == 0, done.stderr[-3000:]
    continued = run.with_name("seed-42.from-checkpoint-8")
    assert status(continued) == "finished"
    assert sorted(p.relative_to(run) for p in run.rglob("*")) == before and status(run) == "interrupted"

    # Starting over moves the partial run aside, and trains.
    done = run_printed(force, elsewhere)
    assert done.returncode == 0, done.stderr[-3000:]
    assert status(run) == "finished" and len(list(run.parent.glob("seed-42.replaced-*"))) == 1
    assert status(continued) == "finished"

    # 2. A finished run is skipped; the suggestion to train it again works.
    skipped = subprocess.run(argv, cwd=tmp_path, env=offline_env(), capture_output=True, text=True, timeout=TIMEOUT_S)
    assert skipped.returncode == 0 and "skipped:" in skipped.stderr
    (again_cmd,) = commands(skipped.stderr)
    done = run_printed(again_cmd, elsewhere)
    assert done.returncode == 0, done.stderr[-3000:]
    assert status(run) == "finished" and len(list(run.parent.glob("seed-42.replaced-*"))) == 2

    # 2b. A finished run whose weights are gone: eval refuses before OpenCompass starts (it is not even
    # looked for), and its suggestion (the run's own command with --force) trains it again.
    (run / "model.safetensors").unlink()
    evaluate = [sys.executable, "-m", "oda_sft", "eval", "--run", str(run), "--opencompass", str(tmp_path / "none")]
    refused = subprocess.run(
        evaluate, cwd=tmp_path, env=offline_env(), capture_output=True, text=True, timeout=TIMEOUT_S
    )
    assert refused.returncode == 3 and "holds no model weights" in refused.stderr, refused.stderr
    (retrain,) = commands(refused.stderr)
    assert retrain.endswith("--force -- logging_steps=1")
    done = run_printed(retrain, elsewhere)
    assert done.returncode == 0, done.stderr[-3000:]
    assert (run / "model.safetensors").is_file() and len(list(run.parent.glob("seed-42.replaced-*"))) == 3

    # 3. A live run: a second start names it and says how to stop it; that works, and the interrupted
    # run's own suggestion (no checkpoint yet: start again from step 0) does too.
    other = tmp_path / "other"
    live = [*argv[:11], str(other), *argv[12:]]
    err = tmp_path / "3.log"
    proc = start(live, tmp_path, err)
    wait_for(other / RUN / "trainer_log.jsonl", proc, err)
    refused = subprocess.run(live, cwd=tmp_path, env=offline_env(), capture_output=True, text=True, timeout=TIMEOUT_S)
    assert refused.returncode == 3
    (stop,) = commands(refused.stderr)
    assert stop == f"kill {proc.pid}"
    assert run_printed(stop, elsewhere).returncode == 0
    assert proc.wait(120) == 143
    offered = commands(err.read_text().split("interrupted:", 1)[1])
    if len(offered) == 1:  # stopped before its first checkpoint, as it usually is
        assert "starts from step 0" in err.read_text() and "--force" not in offered[0]
    else:  # it had just saved the first epoch's (weights-only) checkpoint: start over
        assert offered[0].endswith("--force -- logging_steps=1")
    done = run_printed(offered[0], elsewhere)
    assert done.returncode == 0, done.stderr[-3000:]
    assert status(other / RUN) == "finished"


def test_a_template_the_tiny_tokenizer_lacks_trains_with_the_advised_resize(data_dir: Path, tmp_path: Path) -> None:
    """Issue 22 item 12: template=qwen on the tiny model is refused up front (it ended in an IndexError in
    training); the advice, resize_vocab=true, trains for real."""
    argv = [sys.executable, "-m", "oda_sft", "train", "--model", "tiny", "--dataset", "oda_demo", "--dataset-dir",
            str(data_dir), "--output-root", str(tmp_path / "saves"), "--", "template=qwen", "max_steps=1"]  # fmt: skip
    refused = subprocess.run(argv, cwd=tmp_path, env=offline_env(), capture_output=True, text=True, timeout=TIMEOUT_S)
    assert refused.returncode == 2 and "or add resize_vocab=true to grow the embedding" in refused.stderr
    trained = subprocess.run([*argv, "resize_vocab=true"], cwd=tmp_path, env=offline_env(), capture_output=True,
                             text=True, timeout=TIMEOUT_S)  # fmt: skip
    assert trained.returncode == 0, trained.stderr[-3000:]
    assert status(tmp_path / "saves" / RUN) == "finished"
