"""Measuring stays under its documented memory cap on a file with one 50 MB sample (it used 7.3 GB)."""

from __future__ import annotations

import json
import random
import re
import subprocess
import sys
from pathlib import Path

import pytest

from oda_sft import tiny_model
from oda_sft.data.measure.lengths import MEMORY_CAP

CAP_BYTES = 1 << 30
assert MEMORY_CAP == "1 GiB"


@pytest.fixture(scope="module")
def big_dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    ddir = tmp_path_factory.mktemp("memory")
    rng = random.Random(0)
    words = ["alpha", "beta", "gamma", "delta", "the", "of", "number", "42", "x+y", "数学"]
    big = " ".join(rng.choice(words) for _ in range(52_000_000 // 5))
    records = [{"instruction": f"q{i}", "output": "a" * 100} for i in range(100)]
    records.insert(50, {"instruction": "one huge sample", "output": big})
    (ddir / "big.json").write_text(json.dumps(records, ensure_ascii=False), encoding="utf-8")
    (ddir / "dataset_info.json").write_text(json.dumps({"big": {"file_name": "big.json"}}))
    assert (ddir / "big.json").stat().st_size > 50_000_000
    return ddir


# A small parent starts the command and reads the kernel's peak-RSS accounting of its child: started
# straight from pytest, the child's count would include pytest's own pages from before exec.
MEASURE = """
import resource, subprocess, sys
done = subprocess.run(sys.argv[1:], capture_output=True, text=True)
sys.stdout.write(done.stdout + done.stderr)
print(f"PEAK_RSS_KIB={resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss} EXIT={done.returncode}")
"""


def _peak_rss(argv: list[str]) -> tuple[int, str]:
    """(peak resident bytes, output) of one run of argv."""
    out = subprocess.run([sys.executable, "-c", MEASURE, *argv], capture_output=True, text=True, check=True).stdout
    match = re.search(r"PEAK_RSS_KIB=(\d+) EXIT=(-?\d+)", out)
    assert match is not None and match.group(2) == "0", out[-3000:]
    return int(match.group(1)) * 1024, out


@pytest.mark.parametrize("exact", [False, True])
def test_data_inspect_peak_memory_stays_under_the_cap(big_dataset: Path, exact: bool) -> None:
    tiny_model.ensure_model()  # built beforehand (in this test's oda-sft home): building loads torch
    argv = [sys.executable, "-m", "oda_sft", "data", "inspect", "big", "--model", "tiny",
            "--dataset-dir", str(big_dataset), "--no-cache", *(["--exact"] if exact else [])]  # fmt: skip
    peak, out = _peak_rss(argv)
    print(f"data inspect {'--exact' if exact else '(fast)'}: peak RSS {peak / (1 << 20):.0f} MiB")
    assert peak < CAP_BYTES, f"{peak / (1 << 20):.0f} MiB"
    assert "#50 (5" in out and "MiB of text, at least" in out  # the big sample is named with its size
    assert "decision   standard" in out  # 1 of 101 over is not more than 1%
