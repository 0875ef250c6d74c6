"""Benchmark: `data contamination`'s scan, in MB/s of dataset file, against a benchmark set the size of
ODA's whole `--suite all` (the issue asks for at least 20 MB/s on this machine's two cores).

Builds the synthetic Alpaca dataset of length_decision.py (instruction data with a share of long
chain-of-thought samples, some non-ASCII text; a JSON list, one record per line, as `data add` writes),
plants copies of benchmark questions in it, and times the scan on every core and on one. The benchmark
side is synthetic too (no benchmark data needs to be cached): --items questions of 8 to 200 words.

    .venv/bin/python benchmarks/contamination_speed.py                    # 100,000 samples, 30,000 items
    .venv/bin/python benchmarks/contamination_speed.py --samples 400000
"""

from __future__ import annotations

import argparse
import json
import os
import random
import tempfile
import time
from pathlib import Path

from length_decision import build, words
from oda_sft.data.contamination.scan import scan
from oda_sft.data.formats.alpaca import Columns


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--samples", type=int, default=100_000)
    parser.add_argument("--long-share", type=float, default=0.05, help="share of long-CoT samples")
    parser.add_argument("--items", type=int, default=30_000, help="benchmark questions in all")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    rng = random.Random(args.seed)
    # ODA's `all` suite holds about 30,000 test questions (MMLU-Pro's 12,032, BBH's 6,511, MATH's 5,000, ...).
    items = [words(random.Random(args.seed + 1 + i), rng.randint(40, 1200)) for i in range(args.items)]
    benchmarks = {f"bench{i}": items[i::20] for i in range(20)}
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "synthetic.json"
        t0 = time.perf_counter()
        build(path, args.samples, args.long_share, args.seed)
        lines = path.read_text(encoding="utf-8").split("\n")
        planted = sorted(rng.sample(range(1, args.samples + 1), 10))  # line 0 is "["
        for at in planted:
            lines[at] = json.dumps({"instruction": "Solve: " + items[at % len(items)], "output": "7"}) + (
                "," if lines[at].endswith(",") else ""
            )
        path.write_text("\n".join(lines), encoding="utf-8")
        size_mb = path.stat().st_size / 1e6
        print(f"dataset: {args.samples:,} samples, {size_mb:,.0f} MB, built in {time.perf_counter() - t0:.1f}s")
        print(f"benchmarks: {len(benchmarks)}, {len(items):,} questions; cores: {os.cpu_count()}")
        for workers in (None, 1):
            t0 = time.perf_counter()
            found = scan(path, Columns.full(), benchmarks, workers=workers)
            seconds = time.perf_counter() - t0
            hits = sorted({s for s, _b, _i in found.matches})
            label = "every core" if workers is None else "one core"
            print(f"{label:>10}: {seconds:6.2f}s  {size_mb / seconds:6.1f} MB/s  ({found.count:,} samples, "
                  f"{len(hits)} overlapping)")  # fmt: skip
            assert [h + 1 for h in hits] == planted, (hits, planted)


if __name__ == "__main__":
    main()
