"""Stamp each checkpoint-N with the data and config it was trained on (runs/stamp.py).

LLaMA-Factory saves checkpoints through transformers' Trainer, which writes trainer_state.json last
(TrainerState.save_to_json, transformers 4.57.1 trainer.py `_save_checkpoint`); oda-sft counts a
checkpoint complete only once that file is there (runs/outdir.py). This patch writes the stamp into
the checkpoint's folder right before it, atomically, so no kill can leave a complete checkpoint without
one. Only the process that saves the trainer state writes it (global rank 0), and only into
`checkpoint-N` folders: the final save at the top of the output dir is not a checkpoint.

Enabled by name (`checkpoint_stamp`, see train/patches/__init__.py) with the stamp's text in
ODA_SFT_CHECKPOINT_IDENTITY in the trainer's environment.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from types import ModuleType
from typing import Any

from oda_sft.runs import stamp

WRITTEN_FOR = {"transformers": "4.57.1"}
TARGET = "transformers.trainer_callback"
FIX_HINT = (
    "install the versions LLaMA-Factory 0.9.4 pins (pip install 'transformers==4.57.1'), or train without --resumable"
)
_CHECKPOINT = re.compile(r"checkpoint-\d+")


def install(module: ModuleType) -> None:
    text = os.environ.get(stamp.ENV, "")
    if not text:
        raise SystemExit(f"oda-sft: {stamp.ENV} is not set: the checkpoint_stamp patch has nothing to write")
    state = module.TrainerState
    if getattr(state.save_to_json, "__wrapped__", None) is None:  # once per process
        state.save_to_json = stamping(state.save_to_json, text)


def stamping(save_to_json: Any, text: str) -> Any:
    """TrainerState.save_to_json, writing the stamp first when the state goes into a checkpoint-N folder."""

    def save_to_json_stamped(self: Any, json_path: str) -> None:
        folder = Path(json_path).parent
        if _CHECKPOINT.fullmatch(folder.name):
            stamp.write(folder, text)
        save_to_json(self, json_path)

    save_to_json_stamped.__wrapped__ = save_to_json  # type: ignore[attr-defined]
    return save_to_json_stamped
