"""What the terminal shows while the trainer runs (issue 28, item 3): the trainer's output goes to a log in the
run dir, named at the start; the terminal gets oda-sft's lines, a progress line and a summary; --verbose streams
the trainer as it always did; a failed trainer's last lines are shown, so an error is never hidden in a file."""

from __future__ import annotations

import sys
import textwrap
from pathlib import Path

import pytest

from oda_sft.train import launcher
from oda_sft.util import subproc

from realproc import oda_sft

RUN = Path("saves/tiny/full/sft-oda_demo/seed-42")


def test_a_tiny_train_reads_in_few_lines_and_its_log_holds_the_rest(data_dir: Path, tmp_path: Path) -> None:
    common = ["train", "-m", "tiny", "-d", "oda_demo", "--dataset-dir", str(data_dir), "--output-root", "saves"]
    done = oda_sft(*common, cwd=tmp_path)  # stdout and stderr are pipes here, not a terminal
    said = done.stdout + done.stderr
    assert done.returncode == 0, said[-3000:]
    run = tmp_path / RUN
    log = run / "logs" / "train-1.log"
    assert f"the trainer's output: {log}" in done.stderr
    assert len(said.splitlines()) <= 60, said
    assert done.stdout == ""  # nothing of the trainer's
    full = log.read_text()
    for line in ("Model config LlamaConfig", "***** train metrics *****", "Training completed"):
        assert line in full and line not in said
    assert "oda-sft: step 24/24, loss " in done.stderr  # the last progress line, always printed
    summary = [line for line in done.stderr.splitlines() if line.startswith("oda-sft: finished in ")]
    assert len(summary) == 1 and "final loss " in summary[0] and str(run) in summary[0], said
    assert f"eval --run {run}`" in done.stderr

    # --verbose: the trainer streams as it always did (its logger on stdout), and the log still keeps it all.
    again = oda_sft(*common, "--force", "--verbose", cwd=tmp_path)
    assert again.returncode == 0, again.stderr[-3000:]
    assert "***** train metrics *****" in again.stdout and "Model config LlamaConfig" in again.stderr
    assert "train metrics" in (run / "logs" / "train-1.log").read_text()
    (moved,) = run.parent.glob("seed-42.replaced-*")
    assert (moved / "logs" / "train-1.log").read_text() == full  # the earlier run's log went with it, as it was


FAILING = textwrap.dedent(
    """
    import sys
    for i in range(100):
        print(f"trainer line {i}", flush=True)
    print("RuntimeError: CUDA out of memory (stand-in)", file=sys.stderr, flush=True)
    sys.exit(3)
    """
)


def test_a_failed_trainer_shows_its_last_lines_and_names_its_log(
    tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "trainer.py").write_text(FAILING)
    run = tmp_path / "run"
    (run / "logs").mkdir(parents=True)
    (run / "logs" / "train-1.log").write_text("an earlier attempt's output\n")
    output = launcher.Output(run, 0)
    assert output.log == run / "logs" / "train-2.log"  # an earlier attempt's log is never overwritten
    status = launcher.run([sys.executable, str(tmp_path / "trainer.py")], {}, subproc.UNWATCHED, output)
    assert status == 3
    shown = capfd.readouterr()
    assert f"the last 40 lines of the trainer's output ({output.log}):" in shown.err
    assert "RuntimeError: CUDA out of memory (stand-in)" in shown.err
    assert "trainer line 99" in shown.err and "trainer line 50" not in shown.err + shown.out
    logged = output.log.read_text().splitlines()  # all of it, stdout and stderr, in the order written
    assert logged == [*(f"trainer line {i}" for i in range(100)), "RuntimeError: CUDA out of memory (stand-in)"]
    assert (run / "logs" / "train-1.log").read_text() == "an earlier attempt's output\n"
