"""The run's numbers: loss, runtime and throughput of the whole run, from LLaMA-Factory's files and the
manifest's attempts.

LLaMA-Factory's all_results.json speaks for the attempt that finished, not the run. The HF Trainer's
`train_loss` is the sum of the per-step losses *this attempt* trained divided by the run's global step,
so after a resume from checkpoint-r it leaves out steps 1..r (a run resumed at step 12 of 24 reports
about half its mean). Its `train_runtime` is this attempt's time, and its rates divide the whole run's
samples, steps or tokens by that time. Here the loss is the mean per-step loss of the whole run, and the
rates are the same counts over the run's runtime.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from oda_sft.runs import trainer_log

NO_STEP_LOGGED = "no step was logged (fewer steps than logging_steps): the mean loss of all {n} steps"
_RATES = ("train_samples_per_second", "train_steps_per_second")


def _json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) else None


def _dicts(attempts: Any) -> list[dict[str, Any]]:
    return [a if isinstance(a, dict) else {} for a in attempts] if isinstance(attempts, list) else []


def _resume_step(attempt: dict[str, Any]) -> int | None:
    """The step an attempt went on from: 0 for a fresh start, None when its checkpoint name is unreadable."""
    name = attempt.get("resumed_from")
    if not name:
        return 0
    match = re.fullmatch(r"checkpoint-(\d+)", str(name))
    return int(match.group(1)) if match else None


def _wall_seconds(attempt: dict[str, Any]) -> float | None:
    try:
        start = datetime.fromisoformat(str(attempt["started_at"]))
        end = datetime.fromisoformat(str(attempt["ended_at"]))
    except (KeyError, ValueError):
        return None
    return max((end - start).total_seconds(), 0.0)


def logged_loss_sum(losses: dict[int, float], upto: int | None = None) -> tuple[float, int]:
    """(sum of per-step losses, steps covered) over the logged steps up to `upto`. A logged loss is the
    mean over its logging window (the steps since the previous logged one), so it counts once per step."""
    total, previous = 0.0, 0
    for step, loss in losses.items():  # sorted by step
        if upto is not None and step > upto:
            break
        total += loss * (step - previous)
        previous = step
    return total, previous


def run_mean_loss(
    losses: dict[int, float], reported: float, global_step: int | None, resumed_at: int | None
) -> tuple[float, int] | None:
    """(the run's mean per-step train loss, the steps it covers).

    `reported` is the last attempt's all_results train_loss, which the HF Trainer computes as the sum of
    the per-step losses that attempt trained (steps resumed_at+1..global_step, exactly) over global_step.
    Steps 1..resumed_at come from the trainer log (logged losses are rounded to 4 places); steps after
    the last logged one at or before the resume point are not in any record and are left out. Without a
    resume this is the reported train_loss itself, the same number an uninterrupted run reports.
    """
    if resumed_at == 0:
        return reported, global_step or 0
    if global_step is None or resumed_at is None:
        before, covered = logged_loss_sum(losses)  # cannot split the run: the log alone
        return (before / covered, covered) if covered else None
    before, logged = logged_loss_sum(losses, min(resumed_at, global_step))
    covered = logged + max(global_step - resumed_at, 0)
    return ((before + reported * global_step) / covered, covered) if covered else None


def _counted_attempts(attempts: list[dict[str, Any]]) -> list[int]:
    """1-based numbers of the attempts the run's training is made of: from the last one that started
    fresh (an earlier attempt's work, with no checkpoint to go on from, was discarded) to the last."""
    first = 0
    for i, attempt in enumerate(attempts):
        if not attempt.get("resumed_from"):
            first = i
    return list(range(first + 1, len(attempts) + 1))


def training_results(
    output_dir: Path, attempts: Sequence[Any] | None = None, dataset_tokens: int | None = None
) -> dict[str, Any]:
    """The run's final and mean loss, runtime and throughput; `attempts` is the manifest's list (the last
    one is the attempt that just ended). dataset_tokens (real, unpadded tokens in one epoch) turns runtime
    into tokens/s when LLaMA-Factory does not count tokens itself."""
    tried = _dicts(list(attempts) if attempts is not None else [])
    summary = _json(output_dir / "all_results.json") or _json(output_dir / "train_results.json")
    entries = trainer_log.read(output_dir / trainer_log.LOG_NAME)
    losses = trainer_log.losses(entries)
    results: dict[str, Any] = {}
    if "epoch" in summary:
        results["epoch"] = summary["epoch"]
    used = _counted_attempts(tried) if tried else []
    if used:
        results["attempts"] = used
    global_step = _global_step(output_dir, entries)
    reported = _number(summary.get("train_loss"))
    if reported is not None:
        resumed_at = _resume_step(tried[-1]) if tried else 0
        mean = run_mean_loss(losses, reported, global_step, resumed_at)
        if mean is not None:
            results["train_loss"] = mean[0]
            if mean[1]:
                results["train_loss_steps"] = mean[1]
    if losses:
        results["final_step"], results["final_loss"] = max(losses.items())
    elif "train_loss" in results and global_step:
        # A finished run shorter than logging_steps logged no step: its mean is all there is.
        results["final_step"], results["final_loss"] = global_step, results["train_loss"]
        results["final_loss_note"] = NO_STEP_LOGGED.format(n=global_step)
    last_runtime = _number(summary.get("train_runtime"))
    if last_runtime:
        results.update(_rates(summary, last_runtime, tried, used, entries, dataset_tokens, results.get("epoch")))
    if len(tried) > 1 and summary:
        results["llamafactory_last_attempt"] = summary  # what it reported, for the record
    return results


def _global_step(output_dir: Path, entries: list[dict[str, Any]]) -> int | None:
    """The run's last optimizer step: trainer_state.json's, or the trainer log's last line's."""
    step = _json(output_dir / "trainer_state.json").get("global_step")
    if isinstance(step, int) and not isinstance(step, bool) and step >= 0:
        return step
    steps = trainer_log.steps(entries)
    return max(steps) if steps else None


def _rates(
    summary: dict[str, Any],
    last_runtime: float,
    tried: list[dict[str, Any]],
    used: list[int],
    entries: list[dict[str, Any]],
    dataset_tokens: int | None,
    epoch: Any,
) -> dict[str, Any]:
    """Runtime: the trainer's train_runtime for the attempt that finished, plus the wall-clock time of
    each earlier attempt the run is made of (a stopped trainer reports no runtime). Rates: the counts
    LLaMA-Factory divided by its attempt's time, divided by that runtime instead."""
    seconds = [*(_wall_seconds(tried[n - 1]) for n in used[:-1]), last_runtime]
    parts = [
        {"attempt": n, "seconds": s, "from": "wall clock" if i < len(seconds) - 1 else "trainer"}
        for i, (n, s) in enumerate(zip(used or [1], seconds, strict=True))
    ]
    runtime = sum(s or 0.0 for s in seconds)
    out: dict[str, Any] = {"train_runtime": round(runtime, 4)}
    if len(parts) > 1:
        out["train_runtime_parts"] = parts
    for key in _RATES:
        rate = _number(summary.get(key))
        if rate is not None:
            out[key] = round(rate * last_runtime / runtime, 3)
    tokens_rate = _number(summary.get("train_tokens_per_second"))
    seen = [e["total_tokens"] for e in entries if _number(e.get("total_tokens")) is not None]
    if tokens_rate is not None:
        out["tokens_per_second"] = round(tokens_rate * last_runtime / runtime, 1)
    elif dataset_tokens and _number(epoch) is not None:
        out["dataset_tokens_per_epoch"] = dataset_tokens
        out["tokens_per_second"] = round(dataset_tokens * float(epoch) / runtime, 1)
    elif seen:  # LLaMA-Factory's count of input tokens, carried across a resume in the trainer state
        out["tokens_per_second"] = round(float(seen[-1]) / runtime, 1)
    return out
