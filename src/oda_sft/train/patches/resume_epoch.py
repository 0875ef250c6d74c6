"""Exact resume in any epoch: the loader that skips a resumed epoch's first batches keeps that epoch.

The bug (accelerate 1.11.0, fixed upstream by huggingface/accelerate PR 4071 after the last release
LLaMA-Factory 0.9.4 allows, accelerate<=1.11.0): transformers' Trainer resumes a run inside epoch E by
calling `train_dataloader.set_epoch(E)` and then `skip_first_batches(train_dataloader, n)`. That builds
a new DataLoaderShard whose `iteration` starts at 0, and its `__iter__` calls `set_epoch(0)` on the
shared SeedableRandomSampler, which then draws epoch 0's permutation (seed + 0) instead of epoch E's.
Resuming inside the first epoch is unaffected (E == 0); resuming inside a later epoch replays another
order of the data, so the loss differs from the uninterrupted run from the first resumed step on.

The correction: the loader skip_first_batches returns starts at the original loader's iteration, so
its own `set_epoch(iteration)` sets epoch E. Only the name transformers.trainer calls is replaced.
"""

from __future__ import annotations

from collections.abc import Callable
from types import ModuleType
from typing import Any

WRITTEN_FOR = {"accelerate": "1.11.0", "transformers": "4.57.1"}
TARGET = "transformers.trainer"
FIX_HINT = (
    "install the versions LLaMA-Factory 0.9.4 pins (pip install 'accelerate==1.11.0' 'transformers==4.57.1'), "
    "or train without --resumable"
)


def keep_epoch(skip_first_batches: Callable[..., Any]) -> Callable[..., Any]:
    """skip_first_batches, returning a loader that continues the epoch its input was set to."""

    def skip_first_batches_in_epoch(dataloader: Any, num_batches: int = 0) -> Any:
        skipped = skip_first_batches(dataloader, num_batches)
        iteration = getattr(dataloader, "iteration", None)
        if isinstance(iteration, int) and hasattr(skipped, "iteration"):
            skipped.iteration = iteration
        return skipped

    skip_first_batches_in_epoch.__wrapped__ = skip_first_batches  # type: ignore[attr-defined]
    return skip_first_batches_in_epoch


def install(trainer_module: ModuleType) -> None:
    current = trainer_module.skip_first_batches
    if getattr(current, "__wrapped__", None) is None:  # once per process
        setattr(trainer_module, "skip_first_batches", keep_epoch(current))  # noqa: B010
