"""The 2025 era's packed length: cutoff_len as written, as LLaMA-Factory 0.9.2 used it.

0.9.4's DataArguments.__post_init__ (src/llamafactory/hparams/data_args.py, lines 182-183 at tag v0.9.4) lowers
cutoff_len by one whenever packing is on; 0.9.2's does not. So under 0.9.4 the recipe's long-CoT configs
(cutoff_len 32768, packing) truncate each sample at 32767 tokens and fill packs of 32767 (padded to 32768); under
0.9.2 samples kept 32768 tokens, in packs of 32768 (padded to 32769). The correction adds the one back.
"""

from __future__ import annotations

from collections.abc import Callable
from types import ModuleType
from typing import Any

WRITTEN_FOR = {"llamafactory": "0.9.4"}
TARGET = "llamafactory.hparams.data_args"
FIX_HINT = "install LLaMA-Factory 0.9.4 (pip install 'llamafactory==0.9.4'), or train with --recipe 2026"


def full_cutoff(post_init: Callable[[Any], None]) -> Callable[[Any], None]:
    def __post_init__(self: Any) -> None:
        post_init(self)
        if self.packing:
            self.cutoff_len += 1

    __post_init__.__wrapped__ = post_init  # type: ignore[attr-defined]
    return __post_init__


def install(data_args: ModuleType) -> None:
    arguments = data_args.DataArguments
    current = arguments.__post_init__
    if getattr(current, "__wrapped__", None) is None:  # once per process
        arguments.__post_init__ = full_cutoff(current)
