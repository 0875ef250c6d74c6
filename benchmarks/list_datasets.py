"""`oda-sft list-datasets` on a registry of 10,000 measured entries, in a fresh temporary dataset dir.

    .venv/bin/python benchmarks/list_datasets.py [--entries 10000] [--file-kb 64] [--repeat 3]

Each entry has a data file of --file-kb KiB (sparse, so the disk stays empty) and a stored length
analysis, as `data inspect` writes them. Every command runs in a fresh process with its own empty
oda-sft home. Modules are byte-compiled once first, into the temporary dir, as an installed oda-sft has them.
Printed, wall and CPU seconds (CPU is what a busy shared machine distorts least):
`oda-sft --help` (start-up alone), the first listing (every file hashed in full), and the next ones
(every file verified from the sha256 cache: stat, open, 3 sampled blocks), with the CPU cost per
entry and the ratio to start-up. Files of 6 KiB or less are hashed whole every time (no cache);
pass --file-kb 4 to time that path.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ODA = [sys.executable, "-m", "oda_sft"]


def build(ddir: Path, entries: int, file_kb: int) -> None:
    info = {}
    for i in range(entries):
        name = f"set{i:05d}"
        path = ddir / f"{name}.json"
        head = json.dumps([{"instruction": f"q{i}", "output": "a"}]).encode()
        with path.open("wb") as f:
            f.write(head)
            f.truncate(file_kb * 1024)  # sparse: a hole reads as zeros
        sha = hashlib.sha256(path.read_bytes()).hexdigest()
        info[name] = {
            "file_name": path.name,
            "columns": {"prompt": "instruction", "query": "input", "response": "output"},
            "oda_sft": {
                "sha256": sha,
                "records": 1,
                "analyses": {
                    "meta-llama/Llama-3.1-8B": {
                        "sha256": sha,
                        "mode": "standard",
                        "reason": "0 of 1 samples exceed 4,096 tokens",
                        "rule": {"threshold_tokens": 4096, "max_percent_over": "1"},
                        "count": 1,
                        "measured_at": "2026-01-01T00:00:00Z",
                    }
                },
            },
        }
    (ddir / "dataset_info.json").write_text(json.dumps(info, indent=2))


def timed(argv: list[str], env: dict[str, str]) -> tuple[float, float]:
    """(wall, CPU) seconds of one fresh process; CPU counts only this child, so a busy machine shows less."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    subprocess.run(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, check=True)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def median_of(runs: list[tuple[float, float]]) -> tuple[float, float]:
    return statistics.median(w for w, _ in runs), statistics.median(c for _, c in runs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entries", type=int, default=10_000)
    parser.add_argument("--file-kb", type=int, default=64)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        ddir = Path(tmp) / "data"
        ddir.mkdir()
        build(ddir, args.entries, args.file_kb)
        env = {**os.environ, "ODA_SFT_HOME": str(Path(tmp) / "home")}
        # Compiled modules as an installed oda-sft has them (this sandbox sets PYTHONDONTWRITEBYTECODE),
        # kept in the temporary dir: nothing is written next to the sources.
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        env["PYTHONPYCACHEPREFIX"] = str(Path(tmp) / "pycache")
        timed([*ODA, "--help"], env)  # compiles once
        listing = [*ODA, "list-datasets", "--json", "--dataset-dir", str(ddir)]
        start_up = median_of([timed([*ODA, "--help"], env) for _ in range(args.repeat)])
        first = timed(listing, env)
        warm = median_of([timed(listing, env) for _ in range(args.repeat)])
        out = subprocess.run(listing, env=env, capture_output=True, text=True, check=True).stdout
        rows = [r for r in json.loads(out) if r["source"] == "registered"]
        assert len(rows) == args.entries and all(r["mode"] == "standard" for r in rows), "wrong listing"
        n = args.entries
        print(
            f"registry: {n:,} measured entries, data files of {args.file_kb} KiB; load average {os.getloadavg()[0]:.1f}"
        )
        print(f"{'':42s} {'wall':>8s} {'CPU':>8s} {'CPU/entry':>10s}")
        for label, (wall, cpu) in (
            ("oda-sft --help (start-up alone)", start_up),
            ("list-datasets, first (hashes every file)", first),
            ("list-datasets, again (verifies each file)", warm),
        ):
            per = "" if label.startswith("oda-sft") else f"{(cpu - start_up[1]) / n * 1e6:7.1f} us"
            print(f"{label:42s} {wall:7.3f}s {cpu:7.3f}s {per:>10s}")
        print(f"listing again / start-up: {warm[0] / start_up[0]:.1f}x wall, {warm[1] / start_up[1]:.1f}x CPU")


if __name__ == "__main__":
    main()
