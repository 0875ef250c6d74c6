"""Checkpoint only the first N decoder layers (fast profile only; the default never sets it).

LLaMA-Factory 0.9.4 checkpoints every decoder layer or none (`disable_gradient_checkpointing`).
When the memory allows more than none but less than all, this keeps the activations of the layers
after the first N, so backward recomputes N layers instead of all of them. A checkpointed layer
recomputes exactly the forward it discarded, so which layers are checkpointed changes speed and
memory only (tests/integration/test_profile_math.py proves it on the tiny model).

Enabled by name (`partial_checkpointing`, see train/patches/__init__.py) with ODA_SFT_CHECKPOINT_LAYERS=N
in the trainer's environment, with checkpointing on.
"""

from __future__ import annotations

import os
import sys
from types import ModuleType
from typing import Any

ENV = "ODA_SFT_CHECKPOINT_LAYERS"
WRITTEN_FOR = {"llamafactory": "0.9.4", "transformers": "4.57.1"}
TARGET = "llamafactory.model.model_utils.checkpointing"
FIX_HINT = (
    "install the versions LLaMA-Factory 0.9.4 pins (pip install 'transformers==4.57.1'), or train with "
    "--profile default"
)


def install(module: ModuleType) -> None:
    raw = os.environ.get(ENV, "").strip()
    if not raw.isdigit():
        raise SystemExit(f"oda-sft: {ENV}={raw!r} must be a number of layers")
    _patch(module, int(raw))


def _patch(module: ModuleType, checkpointed: int) -> None:
    original = module._gradient_checkpointing_enable

    def enable(self: Any, *args: Any, **kwargs: Any) -> None:
        original(self, *args, **kwargs)
        from transformers.modeling_layers import GradientCheckpointingLayer

        layers = [m for m in self.modules() if isinstance(m, GradientCheckpointingLayer)]
        for layer in layers[checkpointed:]:
            layer.gradient_checkpointing = False
        kept = max(len(layers) - checkpointed, 0)
        print(
            f"oda-sft: partial checkpointing: {min(checkpointed, len(layers))} of {len(layers)} decoder layers "
            f"checkpointed, {kept} keep their activations",
            file=sys.stderr,
            flush=True,
        )

    setattr(module, "_gradient_checkpointing_enable", enable)  # noqa: B010 (a module attribute, patched)
