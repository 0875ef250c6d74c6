"""The commands oda-sft prints as advice parse, with the real command-line parser, into exactly the run
they are about (run for real in tests/integration/test_advice_real.py); continuing from a run's own
checkpoint is a new run beside it; SIGTERM in oda-sft's first moments stops it cleanly; the disk check."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest


@pytest.mark.parametrize("delay", [0.3, 0.6, 1.2])
def test_sigterm_in_the_first_moments_stops_oda_sft_cleanly(delay: float, data_dir: Path, tmp_path: Path) -> None:
    """Handlers are installed before the heavy imports: a SIGTERM while oda-sft starts is one line and 143
    (the start-up windows of a whole run are in tests/integration/test_run_lifecycle.py)."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "oda_sft", "train", "--model", "tiny", "--dataset", "oda_demo", "--dataset-dir",
         str(data_dir), "--output-root", str(tmp_path / "saves")],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    time.sleep(delay)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 143, err
    last = err.strip().splitlines()[-1]
    assert last == "error: interrupted by SIGTERM" or last.startswith("oda-sft: interrupted:"), err
    assert "Traceback" not in err
