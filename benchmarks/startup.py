"""Start-up time of the light commands, against a bare interpreter and `llamafactory-cli version`.

    .venv/bin/python benchmarks/startup.py [--repeat 5]

Each command runs in a fresh process; the median of --repeat runs is reported, with its ratio to
`python -c pass` measured in the same run (this machine is noisy; the ratio is what to compare).
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
ODA = [sys.executable, "-m", "oda_sft"]
COMMANDS = {
    "python -c pass": [sys.executable, "-c", "pass"],
    "oda-sft --help": [*ODA, "--help"],
    "oda-sft list-datasets": [*ODA, "list-datasets"],
    "oda-sft train --dry-run (llama)": [*ODA, "train", "-m", "llama", "-d", "OpenR1-Math-220k", "--dry-run"],
    "oda-sft train --dry-run (tiny)": [*ODA, "train", "-m", "tiny", "-d", "oda_demo", "--dry-run"],
}


def timed(argv: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(argv, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--with-llamafactory", action="store_true", help="also time `llamafactory-cli version` once")
    args = parser.parse_args()
    base = None
    for name, argv in COMMANDS.items():
        median = statistics.median(timed(argv) for _ in range(args.repeat))
        base = base or median
        print(f"{name:36s} {median * 1000:8.0f} ms  {median / base:5.1f}x bare python")
    if args.with_llamafactory:
        took = timed([str(Path(sys.executable).parent / "llamafactory-cli"), "version"])
        print(f"{'llamafactory-cli version':36s} {took * 1000:8.0f} ms  {took / base:5.1f}x bare python")


if __name__ == "__main__":
    main()
