"""oda_sft_checkpoint.json: the data and config a checkpoint was trained on, kept inside checkpoint-N.

The run's manifest records the same, but a manifest can be deleted, cut short or copied from another
run, and a resume on other data than a checkpoint was trained on trains on mixed data without a word.
So each checkpoint carries its own identity: the trainer writes this file into checkpoint-N (through
the checkpoint_stamp patch, train/patches/) just before trainer_state.json, the file whose presence
makes a checkpoint complete (runs/outdir.py); a complete checkpoint saved by this oda-sft is stamped.

oda-sft hands the identity to the trainer in ENV, as this module's JSON; the trainer only copies it.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from oda_sft.util.fs import atomic_write_text

STAMP_NAME = "oda_sft_checkpoint.json"
ENV = "ODA_SFT_CHECKPOINT_IDENTITY"
SCHEMA = 1


def encode(dataset: str, sha256: str | None, revision: str | None, config: Mapping[str, Any]) -> str:
    """The stamp's text: the dataset's name and content (sha256, source commit) and the trainer's config."""
    identity = {
        "schema": SCHEMA,
        "dataset": {"name": dataset, "sha256": sha256, "revision": revision},
        "config": dict(config),
    }
    return json.dumps(identity, indent=2, sort_keys=True, default=str) + "\n"


def write(checkpoint: Path, text: str) -> None:
    """Called in the trainer, before trainer_state.json is written: atomic, so a kill leaves none or all."""
    atomic_write_text(checkpoint / STAMP_NAME, text)


@dataclass(frozen=True)
class Stamp:
    dataset: str
    sha256: str | None
    revision: str | None
    config: dict[str, Any]


def read(checkpoint: Path) -> Stamp | str:
    """The checkpoint's stamp, or what is wrong with it (missing, corrupt, not one oda-sft wrote)."""
    path = checkpoint / STAMP_NAME
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return f"{checkpoint.name} holds no {STAMP_NAME}: it was saved by an older oda-sft, or the file was removed"
    except OSError as exc:
        return f"{checkpoint.name}/{STAMP_NAME} cannot be read ({exc.strerror})"
    try:
        data = json.loads(text)
    except ValueError:
        return f"{checkpoint.name}/{STAMP_NAME} is corrupt (not valid JSON)"
    dataset = data.get("dataset") if isinstance(data, dict) else None
    config = data.get("config") if isinstance(data, dict) else None
    if (
        not isinstance(dataset, dict)
        or not isinstance(config, dict)
        or not isinstance(dataset.get("name"), str)
        or not isinstance(dataset.get("sha256"), str | None)
        or data.get("schema") != SCHEMA
    ):
        return f"{checkpoint.name}/{STAMP_NAME} is not a stamp this oda-sft wrote (no dataset and config in it)"
    revision = dataset.get("revision")
    return Stamp(dataset["name"], dataset["sha256"], revision if isinstance(revision, str) else None, config)
