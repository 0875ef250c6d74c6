"""Preprocessing time on a 3-seed sweep: LLaMA-Factory tokenizing afresh for every seed, against
oda-sft's tokenized cache (tokenize and save once, then load for the other seeds).

It runs LLaMA-Factory's own data pipeline (get_dataset) in this process, on a synthetic Alpaca
dataset and the embedded tiny tokenizer, and prints both totals and their ratio. It also checks
that the cached dataset is identical to a fresh one.

    .venv/bin/python benchmarks/sweep_preprocessing.py [--samples 20000] [--seeds 3] [--workers 2]
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

from oda_sft import tiny_model as tiny

WORDS = ["the", "model", "answers", "each", "question", "step", "by", "then", "checks", "result", "carefully"]


def make_dataset(path: Path, samples: int) -> None:
    rng = random.Random(0)
    records = []
    for i in range(samples):
        n = rng.choice([40, 120, 400, 1500])  # words: short chat to long-ish reasoning
        records.append(
            {
                "instruction": f"Question {i}: " + " ".join(rng.choices(WORDS, k=20)),
                "input": "",  # LLaMA-Factory needs the column even when it is empty
                "output": " ".join(rng.choices(WORDS, k=n)),
            }
        )
    path.write_text(json.dumps(records))
    (path.parent / "dataset_info.json").write_text(json.dumps({"bench": {"file_name": path.name}}))


def args_for(data_dir: Path, out: Path, workers: int, seed: int, tokenized: Path | None) -> dict[str, Any]:
    config: dict[str, Any] = {
        "model_name_or_path": str(tiny.ensure_model()),
        "stage": "sft",
        "do_train": True,
        "finetuning_type": "full",
        "dataset": "bench",
        "dataset_dir": str(data_dir),
        "template": "default",
        "cutoff_len": 4096,
        "overwrite_cache": True,
        "preprocessing_num_workers": workers,
        "output_dir": str(out),
        "seed": seed,
        "report_to": "none",
    }
    if tokenized is not None:
        config["tokenized_path"] = str(tokenized)
    return config


def preprocess(config: dict[str, Any]) -> tuple[float, Any]:
    from llamafactory.data import get_dataset, get_template_and_fix_tokenizer
    from llamafactory.hparams import get_train_args
    from llamafactory.model import load_tokenizer

    model_args, data_args, training_args, _, _ = get_train_args(config)
    tokenizer_module = load_tokenizer(model_args)
    template = get_template_and_fix_tokenizer(tokenizer_module["tokenizer"], data_args)
    start = time.perf_counter()
    module = get_dataset(template, model_args, data_args, training_args, stage="sft", **tokenizer_module)
    return time.perf_counter() - start, module["train_dataset"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=20000)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="oda-bench-"))
    try:
        (work / "data").mkdir()
        make_dataset(work / "data" / "bench.json", args.samples)
        fresh_times, fresh = [], None
        for seed in range(args.seeds):
            took, fresh = preprocess(args_for(work / "data", work / f"fresh-{seed}", args.workers, seed, None))
            fresh_times.append(took)
        cache = work / "tokenized"
        cached_times, cached = [], None
        for seed in range(args.seeds):
            took, cached = preprocess(args_for(work / "data", work / f"cached-{seed}", args.workers, seed, cache))
            cached_times.append(took)
        assert fresh is not None and cached is not None
        same = fresh["input_ids"] == cached["input_ids"] and fresh["labels"] == cached["labels"]
        print(f"samples {args.samples}, seeds {args.seeds}, preprocessing_num_workers {args.workers}")
        print("fresh  per seed (s): " + ", ".join(f"{t:.2f}" for t in fresh_times))
        print("cached per seed (s): " + ", ".join(f"{t:.2f}" for t in cached_times) + "  (first one tokenizes + saves)")
        total_fresh, total_cached = sum(fresh_times), sum(cached_times)
        saved = total_fresh - total_cached
        print(f"total fresh {total_fresh:.2f} s, total cached {total_cached:.2f} s, saved {saved:.2f} s")
        print(f"ratio fresh/cached: {total_fresh / total_cached:.2f}x; cached dataset identical to fresh: {same}")
        if not same:
            raise SystemExit("the cached dataset differs from a fresh one")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
