"""--help, list-datasets and train --dry-run must not import torch, transformers or llamafactory."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

HEAVY = ("torch", "transformers", "llamafactory", "datasets", "deepspeed", "tokenizers")


@pytest.mark.parametrize(
    "args",
    [
        ["--help"],
        ["list-datasets"],
        ["train", "--model", "llama", "--dataset", "OpenR1-Math-220k", "--dry-run"],
        ["train", "--model", "tiny", "--dataset", "oda_demo", "--dry-run"],
    ],
)
def test_light_paths_import_nothing_heavy(args: list[str], data_dir: Path) -> None:
    if args[0] != "--help":
        args = [*args, "--dataset-dir", str(data_dir)]
    code = (
        "import sys\n"
        "from oda_sft.cli import main\n"
        f"rc = main({args!r})\n"
        f"heavy = sorted(m for m in sys.modules if m.split('.')[0] in {HEAVY!r})\n"
        "print('HEAVY', heavy, file=sys.stderr)\n"
        "sys.exit(rc)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert "HEAVY []" in proc.stderr
