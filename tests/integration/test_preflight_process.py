"""`oda-sft preflight`: what each node checks before torchrun, and how a failure reads."""

from __future__ import annotations

import socket
import subprocess
import time
from pathlib import Path

from realproc import ODA_SFT, env_without_venv

HOST = socket.gethostname()


def _train(data_dir: Path, tmp_path: Path) -> list[str]:
    return ["train", "--model", "tiny", "--dataset", "oda_demo", "--dataset-dir", str(data_dir),
            "--output-root", str(tmp_path / "saves")]  # fmt: skip


def test_wrong_gpu_count_fails_fast_naming_the_node(tmp_path: Path, data_dir: Path) -> None:
    """A real process, as the sbatch script runs it on each node."""
    env = env_without_venv(ODA_SFT_GPU_COUNT="4", SLURM_NODEID="3")
    argv = [str(ODA_SFT), "preflight", "--gpus-per-node", "8", "--master-addr", "127.0.0.1", "--",
            *_train(data_dir, tmp_path)]  # fmt: skip
    began = time.monotonic()
    done = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=60)
    elapsed = time.monotonic() - began
    assert done.returncode == 5
    assert done.stderr.splitlines() == [
        f"error: preflight failed on node 3 ({HOST}): 4 GPU(s) visible, expected 8 (--gpus-per-node); "
        "check the allocation (--gpus-per-node in sbatch) and CUDA_VISIBLE_DEVICES"
    ]
    assert elapsed < 10, f"preflight took {elapsed:.1f} s"
