"""With no network (and HF_HUB_OFFLINE unset), every command that needs a preset's tokenizer from the Hub
says so in one line within seconds: the tokenizer is resolved through data/sources/hub.py's one connection
attempt, not huggingface_hub's retries (about 24 s, 12 lines of warnings). Real processes, so what
huggingface_hub logs to stderr is seen as a user sees it."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import REPO, Cli
from realproc import free_port


@pytest.mark.parametrize(
    "command",
    [
        ["data", "inspect", "mine", "--model", "llama", "--no-cache"],
        ["estimate", "--model", "llama", "--dataset", "mine"],
        ["train", "-m", "llama", "-d", "mine", "--allow-no-gpu", "--output-root", "{tmp}/saves"],
        ["slurm", "--nodes", "1", "--gpus-per-node", "8", "-o", "{tmp}/job.sbatch", "--",
         "train", "-m", "llama", "-d", "mine", "--output-root", "{tmp}/saves"],
    ],
    ids=["data-inspect", "estimate", "train-auto", "slurm"],
)  # fmt: skip
def test_an_unreachable_hub_fails_in_one_line_within_seconds(command: list[str], cli: Cli, tmp_path: Path) -> None:
    ddir = tmp_path / "d"
    ddir.mkdir()
    data = tmp_path / "mine.jsonl"
    data.write_text('{"instruction": "What is 2+2?", "output": "4"}\n')
    assert cli("data", "add", "mine", str(data), "--dataset-dir", str(ddir)).code == 0  # registered, not measured
    env = {k: v for k, v in os.environ.items() if not k.startswith("HF_")}
    env.update(
        HF_ENDPOINT=f"http://127.0.0.1:{free_port()}",  # nothing listens there
        HF_HUB_CACHE=str(tmp_path / "hf"),
        PYTHONPATH=str(REPO / "src"),
    )
    # Last, so that for slurm the dataset dir goes to the train command it writes.
    argv = [a.replace("{tmp}", str(tmp_path)) for a in command] + ["--dataset-dir", str(ddir)]
    start = time.monotonic()
    proc = subprocess.run([sys.executable, "-m", "oda_sft", *argv], capture_output=True, text=True, env=env, timeout=60)
    elapsed = time.monotonic() - start
    lines = proc.stderr.splitlines()
    errors = [line for line in lines if line.startswith("error: ")]
    assert proc.returncode == 2 and len(errors) == 1 and lines[-1] == errors[0], proc.stderr
    # At most oda-sft's own "measuring ..." line before it: nothing from huggingface_hub.
    assert all(line.startswith("oda-sft: measuring mine with the llama tokenizer") for line in lines[:-1]), proc.stderr
    assert "cannot reach the Hugging Face Hub at http://127.0.0.1:" in errors[0]
    assert "to fetch meta-llama/Llama-3.1-8B (Connection refused): check the network or HF_ENDPOINT" in errors[0]
    assert "`hf download meta-llama/Llama-3.1-8B tokenizer.json tokenizer_config.json`" in errors[0]
    assert elapsed < 5, f"took {elapsed:.1f} s"
