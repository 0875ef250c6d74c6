"""The 2025 era's packing: packed sequences without position_ids, as LLaMA-Factory 0.9.2 built them.

0.9.4's PackedSupervisedDatasetProcessor (src/llamafactory/data/processor/supervised.py, lines 167-197 at tag
v0.9.4) adds position_ids that restart at 0 for each sample in a pack; 0.9.2's (same file at v0.9.2) has none,
so the model numbered positions 0..N-1 across the whole pack. The recipe's long-CoT configs pack (packing: true,
neat_packing: false), so under 0.9.4 every packed sample after the first sees other RoPE positions than it did
for ODA's published runs. Attention is unchanged either way: without neat_packing the mask is all ones in both.
"""

from __future__ import annotations

from collections.abc import Callable
from types import ModuleType
from typing import Any

WRITTEN_FOR = {"llamafactory": "0.9.4"}
TARGET = "llamafactory.data.processor.supervised"
FIX_HINT = "install LLaMA-Factory 0.9.4 (pip install 'llamafactory==0.9.4'), or train with --recipe 2026"


def without_position_ids(preprocess: Callable[..., Any]) -> Callable[..., Any]:
    def preprocess_dataset(self: Any, examples: dict[str, list[Any]]) -> Any:
        model_inputs = preprocess(self, examples)
        model_inputs.pop("position_ids", None)
        return model_inputs

    preprocess_dataset.__wrapped__ = preprocess  # type: ignore[attr-defined]
    return preprocess_dataset


def install(supervised: ModuleType) -> None:
    packed = supervised.PackedSupervisedDatasetProcessor
    current = packed.preprocess_dataset
    if getattr(current, "__wrapped__", None) is None:  # once per process
        packed.preprocess_dataset = without_position_ids(current)
