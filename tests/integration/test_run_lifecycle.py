"""One trainer per run, none orphaned, and one truth about how a run ended, with real processes: the
tiny model trained by llamafactory-cli (2 ranks through torchrun where it matters), stopped by real
signals at each point of its life, and `oda-sft runs`, the manifest and a rerun asked each time."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest

from realproc import descendants, kill_tree, manifest, marked, offline_env, signal_all

RUN = Path("tiny/full/sft-oda_demo/seed-42")
TIMEOUT_S = 900


def _env(marker: str = "") -> dict[str, str]:
    # ODA_SFT_TEST_MARK is inherited by every process of the trainer, whatever its session
    return offline_env(ODA_SFT_TEST_MARK=marker) if marker else offline_env()


def oda(*args: str, cwd: Path, marker: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "oda_sft", *args], cwd=cwd, env=_env(marker),
                          capture_output=True, text=True, timeout=TIMEOUT_S)  # fmt: skip


def start(args: list[str], cwd: Path, marker: str) -> tuple[subprocess.Popen[bytes], Path]:
    err = cwd / f"err-{uuid.uuid4().hex[:8]}.log"
    with err.open("w") as handle:
        proc = subprocess.Popen([sys.executable, "-m", "oda_sft", *args], cwd=cwd, env=_env(marker),
                                stdout=subprocess.DEVNULL, stderr=handle, start_new_session=True)  # fmt: skip
    return proc, err


def wait_for(what: str, condition: Callable[[], bool], proc: subprocess.Popen[bytes] | None, err: Path | None) -> None:
    deadline = time.monotonic() + TIMEOUT_S
    while not condition():
        if proc is not None and proc.poll() is not None:
            pytest.fail(
                f"oda-sft ended (rc {proc.returncode}) before {what}:\n" + (err.read_text()[-3000:] if err else "")
            )
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.002)


def listed(root: Path, cwd: Path) -> dict[str, str]:
    """`oda-sft runs --json`: run dir name -> status."""
    done = oda("runs", "--output-root", str(root), "--json", cwd=cwd)
    assert done.returncode == 0, done.stderr
    return {Path(r["path"]).name: r["status"] for r in json.loads(done.stdout)}


def rerun_plan(data_dir: Path, root: Path, cwd: Path, *extra: str) -> str:
    """What running the same command again would do, asked without doing it (`sweep --dry-run` decides as
    `train` does): train, resume, skip, ..."""
    done = oda("sweep", "--model", "tiny", "--datasets", "oda_demo", "--seeds", "42", "--dataset-dir",
               str(data_dir), "--output-root", str(root), "--dry-run", *extra, cwd=cwd)  # fmt: skip
    row = next(line for line in done.stdout.splitlines() if line.startswith("oda_demo "))
    return row.split()[3]


def no_traceback(text: str) -> None:
    assert "Traceback" not in text and "KeyboardInterrupt" not in text, text[-4000:]


def test_sigkill_of_oda_sft_leaves_no_trainer_and_a_live_run_is_never_trained_twice(
    data_dir: Path, tmp_path: Path
) -> None:
    root = tmp_path / "saves"
    run = root / RUN
    args = ["train", "--model", "tiny", "--dataset", "oda_demo", "--dataset-dir", str(data_dir), "--output-root",
            str(root), "--nproc-per-node", "2", "--resumable", "--save-steps", "3",
            "--", "logging_steps=1"]  # fmt: skip
    marker = uuid.uuid4().hex
    proc, err = start(args, tmp_path, marker)
    try:
        wait_for("the first logged step", lambda: (run / "trainer_log.jsonl").is_file(), proc, err)
        trainer = marked(marker) - {proc.pid}
        assert len(trainer) >= 4, "expected the supervisor, llamafactory-cli, torchrun and two ranks"

        # While it trains: `runs` says running; a second start, --force and a sweep cell all refuse, naming it.
        assert listed(root, tmp_path)["seed-42"] == "running"
        host = socket.gethostname()
        second_marker = uuid.uuid4().hex
        for extra in ([], ["--force"]):
            second = oda(*args[:-2], *extra, "--", "logging_steps=1", cwd=tmp_path, marker=second_marker)
            assert second.returncode == 3, second.stderr
            errors = [line for line in second.stderr.splitlines() if line.startswith("error:")]
            assert len(errors) == 1 and second.stderr.rstrip().endswith(errors[0]), second.stderr
            assert f"is being trained right now by oda-sft pid {proc.pid} on {host}" in errors[0]
            assert "config kept" not in second.stderr
        assert not marked(second_marker), "a second start left a process behind"
        beside = sorted(p.name for p in run.parent.iterdir())
        assert beside == [".seed-42.oda_sft.lock", "seed-42"], "--force moved the live run aside"
        assert rerun_plan(data_dir, root, tmp_path) == "busy"

        # SIGKILL: oda-sft can do nothing, and still no part of the trainer survives it for long.
        os.kill(proc.pid, signal.SIGKILL)
        killed_at = time.monotonic()
        proc.wait(10)
        while marked(marker) and time.monotonic() - killed_at < 10:
            time.sleep(0.1)
        left = marked(marker)
        assert not left, f"trainer processes still alive 10 s after oda-sft was killed: {sorted(left)}"
        print(f"trainer tree gone {time.monotonic() - killed_at:.1f} s after SIGKILL")
    finally:
        kill_tree(proc)
        signal_all(marked(marker), signal.SIGKILL)

    # Nobody trains it now: the manifest still says running (nobody could update it), and `runs` says stale.
    assert manifest(run)["status"] == "running"
    assert listed(root, tmp_path)["seed-42"] == "stale"
    # The same command continues it, and then everything agrees it is finished.
    again = oda(*args, cwd=tmp_path)
    assert again.returncode == 0, again.stderr[-3000:]
    assert manifest(run)["status"] == "finished" and listed(root, tmp_path)["seed-42"] == "finished"
    assert rerun_plan(data_dir, root, tmp_path, *args[9:]) == "skip"
    steps = [json.loads(line)["current_steps"] for line in (run / "trainer_log.jsonl").read_text().splitlines()]
    assert max(steps) == 12 and not list(root.rglob("*.replaced-*"))


def _freeze_then_term(proc: subprocess.Popen[bytes], run: Path, when: Callable[[], bool], still: Callable[[], bool],
                      err: Path, sig: int = signal.SIGTERM) -> None:  # fmt: skip
    """Freeze the trainer the moment `when()` holds; if `still()` holds while it is frozen, send oda-sft
    `sig` and thaw the trainer, so the signal lands in that window. Otherwise thaw and wait on."""
    lock = run.with_name(f".{run.name}.oda_sft.lock")

    def supervisor() -> int | None:
        try:
            pid = json.loads(lock.read_text().strip() or "{}").get("supervisor_pid")
        except (OSError, ValueError):
            return None
        return pid if isinstance(pid, int) and descendants(pid) else None

    wait_for("the trainer to start", lambda: supervisor() is not None, proc, err)
    sup = supervisor()
    assert sup is not None
    trainer = descendants(sup)  # one rank: llamafactory-cli itself, the same process until it ends
    deadline = time.monotonic() + TIMEOUT_S
    while True:
        if proc.poll() is not None:
            pytest.fail("oda-sft ended before the window was caught:\n" + err.read_text()[-3000:])
        assert time.monotonic() < deadline, "timed out waiting for the window"
        if not when():
            time.sleep(0.001)
            continue
        signal_all(trainer, signal.SIGSTOP)  # first, at once: the window may be milliseconds wide
        tree = trainer | descendants(sup)
        signal_all(tree, signal.SIGSTOP)
        if still():
            proc.send_signal(sig)
            time.sleep(0.3)  # oda-sft forwards the signal to the frozen trainer, pending until it thaws
            signal_all(tree, signal.SIGCONT)
            return
        signal_all(tree, signal.SIGCONT)
        pytest.fail("the window closed before the trainer could be frozen in it")


def test_every_interrupt_window_leaves_one_truth(data_dir: Path, tmp_path: Path) -> None:
    """Start-up, final save and plotting; training and checkpoint saves are in test_resume_epochs.py."""
    root = tmp_path / "saves"
    run = root / RUN
    args = ["train", "--model", "tiny", "--dataset", "oda_demo", "--dataset-dir", str(data_dir), "--output-root",
            str(root), "--resumable", "--save-steps", "8", "--", "logging_steps=1"]  # fmt: skip

    # Start-up: SIGTERM in oda-sft's first moments, before and while it writes the run, never kills it
    # outright: one line, exit 143, and whatever it wrote says interrupted, which a rerun trains over.
    for delay in (0.25, 0.5, 1.0, 2.0, 4.0):
        proc, err = start(args, tmp_path, "")
        time.sleep(delay)
        proc.send_signal(signal.SIGTERM)
        rc = proc.wait(120)
        text = err.read_text()
        assert rc == 143, f"after {delay} s: rc {rc}\n{text[-3000:]}"
        assert "error: interrupted by SIGTERM" in text or "interrupted:" in text
        no_traceback(text)
        if (run / "oda_sft_run.json").exists():
            assert manifest(run)["status"] == "interrupted"
            assert listed(root, tmp_path)["seed-42"] == "interrupted"
        assert not (run / "oda_sft_config.yaml").exists() or (run / "oda_sft_run.json").exists(), "a bare config"
        assert rerun_plan(data_dir, root, tmp_path, *args[9:]) in ("train", "resume")

    # Final save: stopped while LLaMA-Factory writes the final weights (checkpoint-24 is complete).
    proc, err = start(args, tmp_path, "")
    # The final save_model writes config.json first (the checkpoints have their own), all_results.json after.
    _freeze_then_term(proc, run, when=lambda: (run / "config.json").exists(),
                      still=lambda: not (run / "all_results.json").exists(), err=err)  # fmt: skip
    assert proc.wait(120) == 143
    no_traceback(err.read_text())
    assert manifest(run)["exit_code"] == 143
    assert manifest(run)["status"] == "interrupted" and listed(root, tmp_path)["seed-42"] == "interrupted"
    assert rerun_plan(data_dir, root, tmp_path, *args[9:]) == "resume"
    printed = err.read_text().split("to resume from checkpoint-24: `", 1)[1].split("`", 1)[0]
    done = subprocess.run(printed, shell=True, env=_env(), capture_output=True, text=True, timeout=TIMEOUT_S)
    assert done.returncode == 0, done.stderr[-3000:]
    assert manifest(run)["status"] == "finished" and listed(root, tmp_path)["seed-42"] == "finished"

    # Plotting: stopped after LLaMA-Factory wrote its results, before training_loss.png. The training is
    # complete: the manifest says finished, oda-sft draws the plot, `runs` and a rerun agree.
    other = tmp_path / "plotting"
    other_run = other / RUN
    proc, err = start([*args[:8], str(other), *args[9:]], tmp_path, "")
    _freeze_then_term(proc, other_run, when=lambda: (other_run / "all_results.json").exists(),
                      still=lambda: not (other_run / "training_loss.png").exists(), err=err,
                      sig=signal.SIGINT)  # fmt: skip
    assert proc.wait(120) == 0, err.read_text()[-3000:]
    text = err.read_text()
    no_traceback(text)
    assert "stopped after training had finished" in text
    assert manifest(other_run)["status"] == "finished" and listed(other, tmp_path)["seed-42"] == "finished"
    assert (other_run / "training_loss.png").read_bytes()[:4] == b"\x89PNG"
    assert rerun_plan(data_dir, other, tmp_path, *args[9:]) == "skip"


def test_ctrl_c_stops_two_ranks_with_one_line_and_twice_kills_at_once(data_dir: Path, tmp_path: Path) -> None:
    for times in (1, 2):
        root = tmp_path / f"saves-{times}"
        run = root / RUN
        args = ["train", "--model", "tiny", "--dataset", "oda_demo", "--dataset-dir", str(data_dir),
                "--output-root", str(root), "--nproc-per-node", "2", "--", "logging_steps=1"]  # fmt: skip
        marker = uuid.uuid4().hex
        proc, err = start(args, tmp_path, marker)
        log = run / "trainer_log.jsonl"
        wait_for("the first logged step", log.is_file, proc, err)
        for _ in range(times):
            proc.send_signal(signal.SIGINT)
            time.sleep(0.2)
        rc = proc.wait(120)
        text = err.read_text()
        assert rc == 130, text[-3000:]
        no_traceback(text)
        assert "SIGINT: stopping the trainer" in text
        if times == 2:
            assert "SIGINT again: killing the trainer now" in text
        assert "interrupted:" in text and manifest(run)["status"] == "interrupted"
        # The manifest records what oda-sft exited with (the trainer itself was sent SIGTERM).
        assert manifest(run)["exit_code"] == 130 and manifest(run)["attempts"][-1]["exit_code"] == 130
        assert not marked(marker)
        # The advice after an interrupt without --resumable: start over, as printed.
        assert "running it again starts from step 0: `" in text or "--force`" in text
