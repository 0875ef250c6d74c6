"""A full disk while the tiny model is built is an OS error (exit 6) naming where it was being built,
and leaves no half-built model behind. The limit is real: RLIMIT_FSIZE in the child process makes the
kernel fail writes past N bytes (EFBIG), as a full disk fails them (ENOSPC), without touching the machine."""

from __future__ import annotations

import os
import resource
import signal
import subprocess
import sys
from pathlib import Path

import pytest


def _limit(size: int) -> None:
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (size, size))


@pytest.mark.parametrize(
    "limit",
    [2_000, 200_000],  # the tokenizer's files fail first (OSError); then the weights (safetensors' own error)
)
def test_a_full_disk_while_building_the_tiny_model_is_exit_6_naming_the_path(tmp_path: Path, limit: int) -> None:
    env = {**os.environ, "ODA_SFT_HOME": str(tmp_path / "home"), "HF_HUB_OFFLINE": "1"}
    ddir = Path(__file__).resolve().parents[2] / "data"
    proc = subprocess.run(
        [sys.executable, "-m", "oda_sft", "data", "inspect", "oda_demo", "--model", "tiny", "--dataset-dir",
         str(ddir), "--no-cache"],
        env=env, capture_output=True, text=True, timeout=600, preexec_fn=lambda: _limit(limit),
    )  # fmt: skip
    assert proc.returncode == 6, proc.stderr[-2000:]
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "File too large" in errors[0]
    assert str(tmp_path / "home" / "models" / "tiny-llama-") in errors[0]
    models = tmp_path / "home" / "models"
    assert not [p.name for p in models.iterdir()], "a half-built model (or its staging dir) was left"
