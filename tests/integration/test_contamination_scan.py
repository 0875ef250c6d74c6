"""The scan on both cores: samples keep their file order across byte ranges, and a 1.5 GB file is scanned
in bounded memory (the file is written on the fly; its answers are long, its prompts short, as in CoT data)."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

from oda_sft.data.contamination.scan import scan
from oda_sft.data.formats.alpaca import Columns

GSM = "Natalia sold clips to 48 of her friends in April, and then she sold half as many clips in May."
BENCH = {"gsm8k": ["Janet has three ducks.", GSM], "arithmetic": ["What is 13 + 9?"]}


@pytest.mark.parametrize("layout", ["jsonl", "array", "pretty"])
def test_parallel_scan_numbers_samples_in_file_order(tmp_path: Path, layout: str) -> None:
    records = [{"instruction": f"filler question number {i} about nothing at all", "output": "x"} for i in range(3000)]
    for at in (0, 1234, 2999):
        records[at] = {"instruction": f"Please solve: {GSM}", "output": "72"}
    records[2000] = {"instruction": "what is 13 + 9?"}
    path = tmp_path / "d.json"
    if layout == "jsonl":
        path.write_text("".join(json.dumps(r) + "\n" for r in records))
    elif layout == "array":
        path.write_text("[\n" + ",\n".join(json.dumps(r) for r in records) + "\n]\n")
    else:
        path.write_text(json.dumps(records, indent=2))
    result = scan(path, Columns(), BENCH, workers=2, chunk=4096)
    assert result.count == 3000
    assert result.parallel is (layout != "pretty")
    assert sorted(result.matches) == [(0, 0, 1), (1234, 0, 1), (2000, 1, 0), (2999, 0, 1)]


SIZE = 1_500_000_000
SCAN = """
import json, resource, sys, time
from pathlib import Path
from oda_sft.data.contamination.scan import scan
from oda_sft.data.formats.alpaca import Columns
if __name__ == "__main__":
    start = time.perf_counter()
    found = scan(Path(sys.argv[1]), Columns(), json.loads(sys.argv[2]))
    print(json.dumps({"count": found.count, "samples": sorted({s for s, _b, _i in found.matches}),
                      "seconds": time.perf_counter() - start, "parallel": found.parallel}))
"""
MEASURE = """
import resource, subprocess, sys
done = subprocess.run(sys.argv[1:], capture_output=True, text=True)
sys.stdout.write(done.stdout + done.stderr)
print(f"PEAK_RSS_KIB={resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss} EXIT={done.returncode}")
"""
CAP_BYTES = 512 << 20


def _big_file(path: Path) -> tuple[int, list[int]]:
    """~1.5 GB of JSON Lines, written as it goes: (records, the planted ones)."""
    answer = "step " * 20_000  # 100 kB of answer, which the scan parses but does not tokenize
    lines = [json.dumps({"instruction": f"Question {i}: what is the colour of the sky today?", "output": answer})
             for i in range(1000)]  # fmt: skip
    block = ("\n".join(lines) + "\n").encode()
    planted = json.dumps({"instruction": f"Please solve:\n{GSM.upper()}", "output": answer}).encode() + b"\n"
    count, marks = 0, []
    with path.open("wb") as out:
        while out.tell() < SIZE:
            if count in (0, 7000, 14000):
                marks.append(count)
                out.write(planted)
                count += 1
            out.write(block)
            count += 1000
        marks.append(count)
        out.write(planted)
    return count + 1, marks


def test_a_1_5_gb_file_is_scanned_in_bounded_memory(tmp_path: Path) -> None:
    path = tmp_path / "big.jsonl"
    started = time.perf_counter()
    count, marks = _big_file(path)
    written = time.perf_counter() - started
    argv = [sys.executable, "-c", MEASURE, sys.executable, "-c", SCAN, str(path), json.dumps(BENCH)]
    out = subprocess.run(argv, capture_output=True, text=True, check=True).stdout
    match = re.search(r"PEAK_RSS_KIB=(\d+) EXIT=(-?\d+)", out)
    assert match is not None and match.group(2) == "0", out[-3000:]
    result = json.loads(out.splitlines()[0])
    peak = int(match.group(1)) * 1024
    size = path.stat().st_size
    print(f"{size / 1e9:.2f} GB written in {written:.0f} s, scanned in {result['seconds']:.0f} s "
          f"({size / 1e6 / result['seconds']:.0f} MB/s), peak RSS {peak / (1 << 20):.0f} MiB")  # fmt: skip
    assert size >= SIZE
    assert result["parallel"] and result["count"] == count and result["samples"] == marks
    assert peak < CAP_BYTES, f"{peak / (1 << 20):.0f} MiB"
