"""The progress line's pure parts: log names that never overwrite, a log's tail as a terminal shows it, and the
line made of LLaMA-Factory's trainer_log.jsonl."""

from __future__ import annotations

from pathlib import Path

import pytest

from oda_sft.runs import trainer_log
from oda_sft.util import progress


def test_a_new_log_never_takes_an_earlier_attempts_name(tmp_path: Path) -> None:
    first = progress.new_log(tmp_path / "logs", "train")
    first.write_text("attempt 1")
    second = progress.new_log(tmp_path / "logs", "train")
    assert [first.name, second.name] == ["train-1.log", "train-2.log"]
    assert first.read_text() == "attempt 1" and second.read_text() == ""


def test_the_nodes_of_one_run_number_an_attempt_alike(tmp_path: Path) -> None:
    # Two nodes share the run dir: node 1 started first, and node 0's log of the same attempt was train-2.log.
    logs = tmp_path / "logs"
    assert progress.new_log(logs, "train", ".node-1").name == "train-1.node-1.log"
    assert progress.new_log(logs, "train").name == "train-1.log"
    assert progress.new_log(logs, "train", ".node-1").name == "train-2.node-1.log"
    assert progress.new_log(logs, "train").name == "train-2.log"
    assert progress.new_log(logs, "train", ".node-12").name == "train-1.node-12.log"


def test_the_tail_shows_a_progress_bar_once(tmp_path: Path) -> None:
    log = tmp_path / "x.log"
    log.write_text("".join(f"line {i}\n" for i in range(50)) + " 10%|#\r 50%|##\r100%|###\nError: boom\n\n")
    shown = progress.tail(log, 3)
    assert shown == ["line 49", "100%|###", "Error: boom"]


def test_the_progress_line_reads_the_trainer_log() -> None:
    rows = [
        {"current_steps": 10, "total_steps": 24, "loss": 6.25, "epoch": 1.25, "elapsed_time": "0:00:10",
         "remaining_time": "0:00:14"},
        {"current_steps": 20, "total_steps": 24, "loss": 6.2, "epoch": 2.5, "elapsed_time": "0:00:20",
         "remaining_time": "0:00:04"},
    ]  # fmt: skip
    assert trainer_log.progress(rows, 1000) == "step 20/24, loss 6.2000, 125 tokens/s, 0:00:04 left"
    assert trainer_log.progress(rows) == "step 20/24, loss 6.2000, 0:00:04 left"
    done = [*rows, {"current_steps": 24, "total_steps": 24, "epoch": 3.0, "elapsed_time": "0:00:24"}]
    assert trainer_log.progress(done) == "step 24/24, loss 6.2000"
    assert trainer_log.progress([]) is None


def test_off_a_terminal_the_line_is_plain_and_rare(capsys: pytest.CaptureFixture[str]) -> None:
    texts = iter(["a", "b", "c"])
    line = progress.Line(lambda: next(texts), interval_s=3600)
    assert not line.terminal
    line.update()
    line.update()
    line.finish()  # the last state, always
    assert capsys.readouterr().err == "oda-sft: a\noda-sft: c\n"
