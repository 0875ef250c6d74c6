"""A run's numbers are the run's, not its last attempt's (issue 16, items 13 and 14).

The files are shaped as LLaMA-Factory 0.9.4 writes them (llamafactory/train/callbacks.py LogCallback.on_log
appends one line per logging step, and one more without a loss when training ends; the HF Trainer's
train_loss is the sum of the losses this attempt trained over the run's global step)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from oda_sft.runs import manifest
from oda_sft.runs.listing import format_table, summarise
from oda_sft.runs.results import run_mean_loss

STEPS, LOGGING, PER_EPOCH = 12, 2, 4


def step_loss(step: int) -> float:
    return 6.3 - 0.07 * step + (0.05 if step % 3 == 0 else 0.0)


def _line(step: int, loss: float | None) -> str:
    entry = {"current_steps": step, "total_steps": STEPS}
    if loss is not None:
        entry |= {"loss": loss, "lr": 2e-05 * (1 - step / STEPS)}
    entry |= {"epoch": step / PER_EPOCH, "percentage": round(step / STEPS * 100, 2),
              "elapsed_time": "0:00:01", "remaining_time": "0:00:00"}  # fmt: skip
    return json.dumps(entry) + "\n"


def _logged(first: int, last: int) -> str:
    """The lines an attempt that trained steps first..last writes: the loss of each logging window, rounded
    to 4 places by the Trainer; windows start again where the attempt started."""
    lines, start = "", first
    for step in range(first, last + 1):
        if step % LOGGING == 0:
            window = [step_loss(s) for s in range(start, step + 1)]
            lines += _line(step, round(sum(window) / len(window), 4))
            start = step + 1
    return lines


def _all_results(first: int, runtime: float) -> str:
    trained = sum(step_loss(s) for s in range(first, STEPS + 1))
    return json.dumps(
        {
            "epoch": STEPS / PER_EPOCH,
            "total_flos": 29843939328.0,
            "train_loss": trained / STEPS,  # the Trainer divides by global_step, whatever it resumed from
            "train_runtime": runtime,
            "train_samples_per_second": 48 / runtime,  # the whole run's samples over this attempt's time
            "train_steps_per_second": STEPS / runtime,
        },
        indent=4,
    )


def _attempt(path: Path, resumed_from: str | None, status: manifest.Status, wall: tuple[str, str]) -> None:
    record = manifest.start(
        path, run={"seed": 42}, launch_argv=[], launch_env={}, gpu_count=0, world_size=1, resumed_from=resumed_from
    )
    done = manifest.finish(path, record, status, 0 if status == "finished" else 143, dataset_tokens=1000)
    done["attempts"][-1] |= {"started_at": wall[0], "ended_at": wall[1]}
    path.write_text(json.dumps(done))


def _finished_run(out: Path) -> Path:
    out.mkdir(parents=True)
    (out / "trainer_log.jsonl").write_text(_logged(1, STEPS) + _line(STEPS, None))
    (out / "all_results.json").write_text(_all_results(1, 2.0))
    (out / "trainer_state.json").write_text(json.dumps({"global_step": STEPS, "max_steps": STEPS}))
    _attempt(out / "oda_sft_run.json", None, "finished", ("2026-12-03T06:50:00Z", "2026-12-03T06:50:09Z"))
    return out


def _resumed_run(out: Path) -> Path:
    """Stopped after logging step 8, with checkpoint-6 the last full one; resumed from it: steps 7 and 8
    are logged twice, and the later lines count."""
    out.mkdir(parents=True)
    log = out / "trainer_log.jsonl"
    log.write_text(_logged(1, 8))
    _attempt(out / "oda_sft_run.json", None, "interrupted", ("2026-12-03T06:50:00Z", "2026-12-03T06:50:05Z"))
    log.write_text(log.read_text() + _logged(7, STEPS) + _line(STEPS, None))
    (out / "all_results.json").write_text(_all_results(7, 1.0))
    (out / "trainer_state.json").write_text(json.dumps({"global_step": STEPS, "max_steps": STEPS}))
    _attempt(out / "oda_sft_run.json", "checkpoint-6", "finished", ("2026-12-03T06:50:06Z", "2026-12-03T06:50:12Z"))
    return out


def test_a_resumed_run_reports_the_run_not_its_last_attempt(tmp_path: Path) -> None:
    whole = manifest.read(_finished_run(tmp_path / "saves" / "a" / "seed-42") / "oda_sft_run.json")
    resumed = manifest.read(_resumed_run(tmp_path / "saves" / "b" / "seed-42") / "oda_sft_run.json")
    assert whole is not None and resumed is not None
    a, b = whole["results"], resumed["results"]
    mean = sum(step_loss(s) for s in range(1, STEPS + 1)) / STEPS
    assert a["train_loss"] == pytest.approx(mean, abs=1e-12)  # an uninterrupted run: LLaMA-Factory's own number
    # LLaMA-Factory said 2.9 for the resumed run (steps 7-12 over 12); the run's mean is the same as a's.
    assert json.loads((tmp_path / "saves/b/seed-42/all_results.json").read_text())["train_loss"] < mean / 2
    assert b["train_loss"] == pytest.approx(mean, abs=1e-4) and b["train_loss_steps"] == STEPS
    assert b["final_loss"] == a["final_loss"] and b["final_step"] == STEPS
    # Runtime: attempt 1's 5 s of wall clock, attempt 2's 1 s of trainer time; rates over those 6 s.
    assert b["attempts"] == [1, 2] and b["train_runtime"] == 6.0
    assert [(p["attempt"], p["from"]) for p in b["train_runtime_parts"]] == [(1, "wall clock"), (2, "trainer")]
    assert b["tokens_per_second"] == pytest.approx(1000 * 3 / 6.0)  # three epochs of tokens over the run's time
    assert b["train_samples_per_second"] == pytest.approx(48 / 6.0, abs=1e-3)
    assert a["train_runtime"] == 2.0 and a["tokens_per_second"] == 1500.0 and a["attempts"] == [1]
    assert b["llamafactory_last_attempt"]["train_runtime"] == 1.0  # kept, for the record
    listed = {Path(r.path).parent.name: r for r in summarise(tmp_path / "saves")}
    assert listed["b"].mean_loss == pytest.approx(mean, abs=1e-4) and listed["b"].attempts == (1, 2)
    row = next(line for line in format_table(list(listed.values())).splitlines() if "/b/" in line)
    assert f"{b['train_loss']:.4f}" in row and " 1,2 " in row and " 6.0 " in row


def test_the_mean_counts_each_step_once_whatever_the_logging_windows() -> None:
    losses = {2: 5.0, 4: 3.0, 5: 1.0}  # windows 1-2, 3-4, 5
    assert run_mean_loss(losses, 2.0, 10, 0) == (2.0, 10)  # not resumed: the Trainer's own mean
    # Resumed at 4: steps 1-4 from the log (5*2 + 3*2), steps 5-10 from the Trainer's 2.0 * 10.
    assert run_mean_loss(losses, 2.0, 10, 4) == ((16.0 + 20.0) / 10, 10)
    # Resumed at 5 after a log at 4: step 5 is in no record and is left out of the mean.
    assert run_mean_loss({2: 5.0, 4: 3.0}, 2.0, 10, 5) == ((16.0 + 20.0) / 9, 9)
    # Resumed from the last checkpoint, nothing left to train: the Trainer's sum is 0.
    assert run_mean_loss(losses, 0.0, 5, 5) == ((10.0 + 6.0 + 1.0) / 5, 5)


def test_a_run_shorter_than_logging_steps_has_its_mean_as_final_loss(tmp_path: Path) -> None:
    out = tmp_path / "saves" / "seed-42"
    out.mkdir(parents=True)
    (out / "trainer_log.jsonl").write_text(_line(3, None))  # 3 steps, logging_steps 10: only the closing line
    (out / "all_results.json").write_text(json.dumps({"epoch": 3.0, "train_loss": 6.25, "train_runtime": 0.5}))
    _attempt(out / "oda_sft_run.json", None, "finished", ("2026-12-03T06:50:00Z", "2026-12-03T06:50:04Z"))
    results = json.loads((out / "oda_sft_run.json").read_text())["results"]
    assert (
        results["final_loss"] == 6.25
        and results["final_step"] == 3
        and "mean loss of all 3 steps" in results["final_loss_note"]
    )
    run = summarise(tmp_path / "saves")[0]
    assert run.final_loss == 6.25 and "6.2500 (mean)" in format_table([run])
