"""Benchmark: how fast JsonStream reads records (parse and checks) from a JSON list and from JSON Lines.

Every record of `data add`, `data inspect` and `train --mode auto` goes through this parse; it is timed
alone here, on length_decision.py's synthetic Alpaca data, in CPU seconds (the machine may be shared),
best of --repeat. With --against REV, the jsonstream.py of that git revision is timed too, interleaved
with this tree's, and the ratio printed.

    .venv/bin/python benchmarks/json_stream.py --samples 30000
    .venv/bin/python benchmarks/json_stream.py --samples 30000 --repeat 9 --against HEAD~1
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import ModuleType

from length_decision import build  # the same synthetic data (run from the repo root)
from oda_sft.data.formats import jsonstream

REPO = Path(__file__).resolve().parents[1]


def module_at(rev: str, tmp: Path) -> ModuleType:
    source = subprocess.run(
        ["git", "show", f"{rev}:src/oda_sft/data/formats/jsonstream.py"], cwd=REPO, check=True, capture_output=True
    ).stdout
    path = tmp / "jsonstream_then.py"
    path.write_bytes(source)
    spec = importlib.util.spec_from_file_location("jsonstream_then", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def cpu_seconds(module: ModuleType, path: Path) -> float:
    t0 = time.process_time()  # counts the hashing thread too
    for _record in module.JsonStream(path):
        pass
    return time.process_time() - t0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--samples", type=int, default=100_000)
    parser.add_argument("--long-share", type=float, default=0.05)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--against", default=None, help="a git revision whose jsonstream.py is timed too")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        array = Path(tmp) / "synthetic.json"
        build(array, args.samples, args.long_share, args.seed)
        lines = Path(tmp) / "synthetic.jsonl"
        records = json.loads(array.read_text(encoding="utf-8"))
        lines.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records), encoding="utf-8")
        del records
        then = module_at(args.against, Path(tmp)) if args.against else None
        for label, path in (("JSON list", array), ("JSON Lines", lines)):
            now_s, then_s = [], []
            for _ in range(args.repeat):
                now_s.append(cpu_seconds(jsonstream, path))
                if then is not None:
                    then_s.append(cpu_seconds(then, path))
            best = min(now_s)
            mb = path.stat().st_size / 1e6
            line = f"{label:10}  {args.samples / best:10,.0f} records/s  {mb / best:7.1f} MB/s  ({best:.3f} CPU s)"
            if then_s:
                line += f"; {args.against}: {min(then_s):.3f} CPU s, this/then {best / min(then_s):.3f}"
            print(line)


if __name__ == "__main__":
    main()
