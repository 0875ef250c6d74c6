"""How long `rank`'s paired test takes at ODA's scale: 100 datasets x 4 seeds x 20 benchmarks x 2,000
questions (repeat8 benchmarks as 8 repetitions of 30), ranked neighbours compared on 4 domains and overall.

    .venv/bin/python benchmarks/rank_stats.py [datasets] [seeds] [questions]
"""

from __future__ import annotations

import sys
import time

import numpy as np

from oda_sft.eval.stats import paired

DOMAINS = ["general", "math", "code", "reasoning"]
BENCHES = ["drop", "ifeval", "agieval", "mmlu_pro", "omni_math", "olympiadbench_math", "gsm8k", "math", "math500",
           "aime2024", "humaneval", "humaneval_plus", "mbpp", "livecodebench", "arc_c", "bbh", "korbench", "calm",
           "gpqa"]  # fmt: skip


def main() -> None:
    datasets, seeds, n = (int(a) for a in (sys.argv[1:] + ["100", "4", "2000"][len(sys.argv) - 1 :]))
    rng = np.random.default_rng(0)
    start = time.perf_counter()
    rows = []
    for d in range(datasets):
        skill = 0.3 + 0.4 * d / datasets
        docs = []
        for _ in range(seeds):
            entry = {}
            for b in BENCHES:
                if b == "aime2024":
                    subsets = {f"aime2024-run{r}": (rng.random(30) < skill).astype(float).tolist() for r in range(8)}
                else:
                    subsets = {b: (rng.random(n) < skill).astype(float).tolist()}
                entry[b] = {"questions": n, "subsets": subsets}
            docs.append({"benchmarks": entry})
        values = [float(rng.normal(100 * skill, 0.5)) for _ in range(seeds)]
        rows.append((paired.row_data(docs, BENCHES, {b: 100 * skill for b in BENCHES}), values))
    built = time.perf_counter()
    metrics = [*DOMAINS, "overall"]
    weights = {m: paired.weights(m, BENCHES, DOMAINS) for m in metrics}
    separated = 0
    for (up, uv), (down, dv) in zip(rows[::-1], rows[-2::-1], strict=False):
        for m in metrics:
            separated += paired.compare(uv, dv, up, down, weights[m]).separated
    done = time.perf_counter()
    print(f"{datasets} datasets x {seeds} seeds x {len(BENCHES)} benchmarks x {n} questions: "
          f"evidence {built - start:.2f} s (building the test data, not the JSON reading), "
          f"{(datasets - 1) * len(metrics)} comparisons {done - built:.3f} s; {separated} separated")  # fmt: skip


if __name__ == "__main__":
    main()
