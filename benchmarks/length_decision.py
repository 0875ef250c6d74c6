"""Benchmark: the fast standard/long decision against exact tokenization of every sample.

Builds a synthetic Alpaca dataset (default 100,000 samples: mostly short instruction data, with
a share of long chain-of-thought samples), then times

  (a) the decision `train --mode auto` makes: byte-bound shortcut, largest-first, early stop;
  (b) exact tokenization of every sample with the same tokenizer (`data inspect --exact`);
  (c) for reference, the tokenizer alone on the same texts, already in memory.

It asserts both decisions agree and prints the times and the ratio (a)/(b).

    .venv/bin/python benchmarks/length_decision.py                 # long data, tiny tokenizer
    .venv/bin/python benchmarks/length_decision.py --long-share 0.005   # standard data
    .venv/bin/python benchmarks/length_decision.py --model llama --model-path DIR
"""

from __future__ import annotations

import argparse
import json
import random
import tempfile
import time
from pathlib import Path

from oda_sft.data.formats.alpaca import Columns
from oda_sft.data.measure.length_rule import Rule
from oda_sft.data.measure.lengths import measure_file
from oda_sft.data.measure.token_counter import LengthCounter
from oda_sft.presets import PRESETS

WORDS = (  # noqa: SIM905 - a word list reads better as prose
    "the of and to a in is that for it as was with be by on not he this are or his from at which but have "
    "an they you were her she there been one all we their has would when if so what no out up said into "
    "then them can only other new some could these two may first any time like now my over such our man "
    "me even most made after also did many before must through back years where much your way well down "
    "should because each just those people how too little state good very make world still own see men "
    "work long get here between both life being under never day same another know while last might us "
    "great old year off come since against go came right used take three wait let check compute so "
    "therefore hence equation solve integer prime sum product factor answer verify step 0 1 2 3 4 5 6 7 8 9 "
    "x y z n k = + - * / ( ) \\frac{1}{2} \\sqrt{3} 数学 答案 é ü 🙂"
).split()


def words(rng: random.Random, n_chars: int) -> str:
    out: list[str] = []
    size = 0
    while size < n_chars:
        w = rng.choice(WORDS)
        out.append(w)
        size += len(w) + 1
    return " ".join(out)


def build(path: Path, n: int, long_share: float, seed: int) -> None:
    rng = random.Random(seed)
    with path.open("w", encoding="utf-8") as f:
        f.write("[\n")
        for i in range(n):
            if rng.random() < long_share:  # long CoT: 12k-80k characters of reasoning, then the answer
                record = {
                    "instruction": words(rng, rng.randint(100, 800)),
                    "input": "",
                    "output": "<think>\n" + words(rng, rng.randint(12_000, 80_000)) + "\n</think>\nThe answer is 7.",
                }
            else:  # instruction data: a few hundred to a few thousand characters
                record = {
                    "instruction": words(rng, rng.randint(20, 600)),
                    "input": words(rng, rng.randint(0, 400)) if rng.random() < 0.3 else "",
                    "output": words(rng, int(rng.lognormvariate(6.5, 0.8))),
                }
                if rng.random() < 0.1:
                    record["system"] = "You are a helpful assistant."
                if rng.random() < 0.05:
                    record["history"] = [[words(rng, 200), words(rng, 600)]]
            f.write(("" if i == 0 else ",\n") + json.dumps(record, ensure_ascii=False))
        f.write("\n]\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--samples", type=int, default=100_000)
    parser.add_argument("--long-share", type=float, default=0.05, help="share of long-CoT samples")
    parser.add_argument("--model", default="tiny", choices=sorted(PRESETS))
    parser.add_argument("--model-path", type=Path, default=None)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    counter = LengthCounter.load(PRESETS[args.model], args.model_path)
    rule = Rule()
    columns = Columns.full()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "synthetic.json"
        t0 = time.perf_counter()
        build(path, args.samples, args.long_share, args.seed)
        size_mb = path.stat().st_size / 1e6
        print(f"dataset: {args.samples:,} samples, {size_mb:,.0f} MB, built in {time.perf_counter() - t0:.1f}s")
        print(f"tokenizer: {counter.ref.label}; rule: {rule.describe()}")

        fast = measure_file(path, counter, rule, columns, exact=False)
        print(f"(a) auto decision:     {fast.seconds:7.2f}s  -> {fast.mode}: {fast.reason}")
        print(f"    tokenized {fast.measured:,} of {fast.count:,} samples")
        exact = measure_file(path, counter, rule, columns, exact=True)
        print(f"(b) exact, every sample: {exact.seconds:5.2f}s  -> {exact.mode}: {exact.reason}")

        # (c) The tokenizer alone, texts already in memory: the floor for (b).
        records = json.loads(path.read_text(encoding="utf-8"))
        from oda_sft.data.formats import alpaca

        samples = [alpaca.turns(r, columns) for r in records]
        del records
        t0 = time.perf_counter()
        for i in range(0, len(samples), 2048):
            counter.lengths(samples[i : i + 2048])
        bare = time.perf_counter() - t0
        print(f"(c) tokenizer alone:   {bare:7.2f}s  ((b) spends {100 * bare / exact.seconds:.0f}% in the tokenizer)")

    print(f"ratio (b)/(a): {exact.seconds / fast.seconds:.1f}x")
    assert fast.mode == exact.mode, f"decisions differ: fast {fast.mode}, exact {exact.mode}"


if __name__ == "__main__":
    main()
