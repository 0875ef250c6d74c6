"""What one optimizer step computes, from sample lengths, the way LLaMA-Factory 0.9.4 batches them.

The benchmark (from the tokenized data it trained on) and `estimate` (from a dataset's measured
lengths) both use these functions, so a step's work is counted one way everywhere.

- Unpacked (standard): a micro-batch of m samples is padded to its longest row, rounded up to a
  multiple of 8 (the SFT collator's pad_to_multiple_of). Samples reach a micro-batch in random
  order, so the expected row length is E[round8(max of m draws)] over the length distribution.
- Packed (long): samples of at most cutoff_len tokens are packed by LLaMA-Factory's greedy
  knapsack into rows of capacity cutoff_len, each padded to cutoff_len + 1 (the padding's mask
  is 1, so it is computed and attends like real tokens).

Work per rank per step is counted in computed tokens (padding included) and attention pairs
(sum over rows of L(L+1), causal); `hardware_flops` turns them into FLOPs for a model shape.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Sequence
from dataclasses import dataclass

from oda_sft.shapes import ModelShape

PAD_MULTIPLE = 8


@dataclass(frozen=True)
class StepWork:
    """What one rank computes in one optimizer step (expected values)."""

    computed_tokens: float  # tokens the GPU runs, padding included
    attention_pairs: float  # sum over computed rows of L(L+1)
    real_tokens: float  # tokens of real samples
    micro_batches: int

    @property
    def padding_fraction(self) -> float:
        return 1 - self.real_tokens / self.computed_tokens if self.computed_tokens else 0.0


def _round_up(n: int, multiple: int = PAD_MULTIPLE) -> int:
    return -(-n // multiple) * multiple


def expected_padded_row(lengths: Sequence[int], micro_batch: int) -> tuple[float, float]:
    """(E[row tokens], E[row attention pairs]) of a micro-batch of `micro_batch` random samples
    padded to the longest: E[f(max)] = sum_k f(x_k) ((k/n)^m - ((k-1)/n)^m) over sorted x."""
    ordered = sorted(lengths)
    n = len(ordered)
    if n == 0:
        return 0.0, 0.0
    tokens = pairs = 0.0
    for k, x in enumerate(ordered, 1):
        weight = (k / n) ** micro_batch - ((k - 1) / n) ** micro_batch
        if weight:
            padded = _round_up(x)
            tokens += weight * padded
            pairs += weight * padded * (padded + 1)
    return tokens, pairs


def unpacked_step(lengths: Sequence[int], micro_batch: int, accumulation: int, cutoff: int) -> StepWork:
    """A step of `accumulation` padded micro-batches of `micro_batch` samples (lengths cut at cutoff)."""
    cut = [min(x, cutoff) for x in lengths]
    row_tokens, row_pairs = expected_padded_row(cut, micro_batch)
    rows = micro_batch * accumulation
    mean = sum(cut) / len(cut) if cut else 0.0
    return StepWork(rows * row_tokens, rows * row_pairs, rows * mean, accumulation)


def greedy_knapsack(lengths: Sequence[int], capacity: int) -> list[list[int]]:
    """LLaMA-Factory 0.9.4's packing (data/processor/processor_utils.py): fill one row at a time,
    each time with the longest remaining sample that still fits."""
    numbers = sorted(lengths)
    rows: list[list[int]] = []
    while numbers:
        row: list[int] = []
        room = capacity
        while numbers:
            index = bisect.bisect_right(numbers, room) - 1
            if index < 0:
                break
            room -= numbers[index]
            row.append(numbers.pop(index))
        if not row:  # a sample longer than a row: LLaMA-Factory drops it
            numbers.pop()
            continue
        rows.append(row)
    return rows


def packed_step(rows: Sequence[Sequence[int]], micro_batch: int, accumulation: int, cutoff: int) -> StepWork:
    """A step of `micro_batch x accumulation` packed rows of cutoff + 1 tokens."""
    width = cutoff + 1
    n_rows = micro_batch * accumulation
    real = sum(sum(r) for r in rows) / len(rows) if rows else 0.0
    return StepWork(n_rows * width, n_rows * width * (width + 1), n_rows * real, accumulation)


def hardware_flops(shape: ModelShape, work: StepWork) -> float:
    """FLOPs of one step's forward and backward as computed (padding included, recomputation not):
    6 x matmul parameters per computed token, plus causal attention: a row of L tokens attends
    L(L+1)/2 pairs, each 2 x 2 x q_dim FLOPs forward (QK^T and AV), x3 with backward, so
    6 x layers x q_dim x L(L+1) (the same count as throughput/metrics.py's MFU)."""
    return (
        6.0 * shape.matmul_params * work.computed_tokens + 6.0 * shape.num_layers * shape.q_dim * work.attention_pairs
    )


def steps_per_epoch(samples_or_rows: int, micro_batch: int, accumulation: int, world: int) -> int:
    """Optimizer steps in one epoch of `samples_or_rows` (accelerate pads to full micro-batches on
    every rank; the trainer steps on what is left at the end of an epoch)."""
    if samples_or_rows <= 0:
        return 0
    per_rank = math.ceil(samples_or_rows / (micro_batch * world))
    return math.ceil(per_rank / accumulation)
