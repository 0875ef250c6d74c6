"""What an output_dir already holds, and the rules for starting a run in it.

oda-sft never deletes a run. --force moves an earlier run aside instead.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

StateKind = Literal["fresh", "finished", "interrupted", "occupied"]

CONFIG_NAME = "oda_sft_config.yaml"
# Files LLaMA-Factory writes only when training ends.
_FINISH_MARKERS = ("all_results.json", "train_results.json")
# Weights at the top of output_dir; LLaMA-Factory refuses such a directory unless told to overwrite.
_WEIGHT_FILES = (
    "model.safetensors",
    "model.safetensors.index.json",
    "pytorch_model.bin",
    "pytorch_model.bin.index.json",
)
_CHECKPOINT = re.compile(r"checkpoint-(\d+)")


@dataclass(frozen=True)
class OutputState:
    kind: StateKind
    path: Path
    checkpoints: tuple[str, ...] = ()
    contents: tuple[str, ...] = ()

    def describe(self) -> str:
        listed = ", ".join(self.contents[:6]) + (", ..." if len(self.contents) > 6 else "")
        if self.kind == "finished":
            return f"{self.path} holds a finished run ({listed})"
        if self.kind == "interrupted":
            return f"{self.path} holds an unfinished run with {', '.join(self.checkpoints)}"
        if self.kind == "occupied":
            return f"{self.path} holds model weights but no finished run ({listed})"
        return f"{self.path} is new"


def inspect_output_dir(path: Path) -> OutputState:
    if not path.is_dir():
        return OutputState("fresh", path)
    contents = tuple(sorted(p.name for p in path.iterdir() if not p.name.startswith(".")))
    checkpoints = tuple(sorted((n for n in contents if _CHECKPOINT.fullmatch(n)), key=lambda n: int(n.split("-")[1])))
    if any(m in contents for m in _FINISH_MARKERS):
        return OutputState("finished", path, checkpoints, contents)
    if checkpoints:
        return OutputState("interrupted", path, checkpoints, contents)
    if any(w in contents for w in _WEIGHT_FILES):
        return OutputState("occupied", path, checkpoints, contents)
    return OutputState("fresh", path, checkpoints, contents)


def continued_output_dir(output_dir: Path, model_path: Path) -> Path:
    """Where a run that starts from weights inside its own output dir trains: a sibling named after them
    (seed-42/checkpoint-8 -> seed-42.from-checkpoint-8). So continuing from a checkpoint is a new run
    beside the old one, and nothing (not even --force) ever moves its own input away."""
    try:
        inside = model_path.resolve().relative_to(output_dir.resolve())
    except ValueError:
        return output_dir
    label = re.sub(r"[^A-Za-z0-9._-]+", "_", "-".join(inside.parts)) or "final"
    return output_dir.with_name(f"{output_dir.name}.from-{label}")


def checkpoint_is_full(checkpoint: Path) -> bool:
    """True when a checkpoint can resume training exactly: optimizer and scheduler state included.

    The recipe's save_only_model checkpoints hold weights only.
    """
    has_optimizer = (checkpoint / "optimizer.pt").is_file() or any(checkpoint.glob("global_step*"))
    return has_optimizer and (checkpoint / "trainer_state.json").is_file()


def checkpoint_is_complete(checkpoint: Path, world_size: int = 1) -> bool:
    """Whether a checkpoint was written to the end. The trainer writes trainer_state.json last on rank 0,
    so a save cut short leaves it missing or cut off; but every other rank writes its own RNG state
    alongside, at its own pace, so each rank's file must be there too. Files torch saves are zip
    archives whose last record is written last, and a safetensors file says how long it must be:
    both are checked, so a kill in the middle of any of them is caught."""
    try:
        state = json.loads((checkpoint / "trainer_state.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    if not isinstance(state, dict):
        return False
    if world_size > 1 and any(not (checkpoint / f"rng_state_{rank}.pth").is_file() for rank in range(world_size)):
        return False
    for file in checkpoint.iterdir():
        if file.suffix in (".pt", ".pth", ".bin") and not _torch_file_complete(file):
            return False
        if file.suffix == ".safetensors" and not _safetensors_complete(file):
            return False
    return True


def _torch_file_complete(path: Path) -> bool:
    """torch.save's zip format ends with the end-of-central-directory record (PK\\x05\\x06, 22 bytes).
    A file with fewer than 2 bytes was created and not yet written (a rank stopped inside torch.save)."""
    try:
        with path.open("rb") as handle:
            magic = handle.read(2)
            if len(magic) < 2:
                return False
            if magic != b"PK":
                return True  # torch's legacy format: nothing to check it against
            handle.seek(0, os.SEEK_END)
            size = handle.tell()
            if size < 22:
                return False
            handle.seek(size - 22)
            return handle.read(4) == b"PK\x05\x06"
    except OSError:
        return False


def _safetensors_complete(path: Path) -> bool:
    """A safetensors file: 8 bytes of header length, the JSON header, then the tensors it lists."""
    try:
        with path.open("rb") as handle:
            header_len = int.from_bytes(handle.read(8), "little")
            header = json.loads(handle.read(header_len))
            size = path.stat().st_size
    except (OSError, ValueError):
        return False
    ends = [v["data_offsets"][1] for k, v in header.items() if k != "__metadata__" and isinstance(v, dict)]
    return size == 8 + header_len + max(ends, default=0)


# The weights a model dir holds: one file, or shards listed by an index (transformers' save_pretrained).
_WEIGHT_FORMATS = (
    ("model.safetensors.index.json", "model.safetensors", _safetensors_complete),
    ("pytorch_model.bin.index.json", "pytorch_model.bin", _torch_file_complete),
)


def weights_problem(model_dir: Path) -> str | None:
    """What keeps model_dir's weights from loading, in a few words, or None when they are all there:
    model.safetensors, model-*.safetensors listed by model.safetensors.index.json, pytorch_model.bin or
    pytorch_model-*.bin listed by pytorch_model.bin.index.json; each file whole (not cut short)."""
    for index_name, single, whole in _WEIGHT_FORMATS:
        index = model_dir / index_name
        if index.is_file():
            try:
                listed = json.loads(index.read_text(encoding="utf-8"))["weight_map"].values()
                shards = sorted({str(s) for s in listed})
            except (OSError, ValueError, KeyError, TypeError, AttributeError):
                return f"an unreadable {index_name}"
            if not shards or any(Path(s).name != s for s in shards):
                return f"a {index_name} that lists no shards, or shards outside the dir"
            absent = [s for s in shards if not (model_dir / s).is_file()]
            if absent:
                more = f" and {len(absent) - 1} more" if len(absent) > 1 else ""
                return f"no {absent[0]}{more} ({index_name} lists {len(shards)} shards)"
            cut = [s for s in shards if not whole(model_dir / s)]
            return f"a {cut[0]} cut short" if cut else None
        if (model_dir / single).is_file():
            return None if whole(model_dir / single) else f"a {single} cut short"
    return "no model weights (model.safetensors, pytorch_model.bin, or their sharded forms with an index)"


def set_aside_from(path: Path) -> tuple[str, str] | None:
    """(the name it had, the label) for a dir set_aside moved (seed-42.replaced-<time>[-N]); else None."""
    found = _ASIDE.fullmatch(path.name)
    return (found["name"], found["label"]) if found else None


_ASIDE = re.compile(r"(?P<name>.+)\.(?P<label>[a-z]+)-\d{8}T\d{6}Z(-\d+)?")


def set_aside(path: Path, label: str = "replaced") -> Path:
    """Rename an earlier run to a sibling (seed-42.replaced-<time>), so nothing is lost."""
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    return _rename_unique(path, f"{path.name}.{label}-{stamp}")


def set_aside_checkpoint(checkpoint: Path) -> Path:
    """Move a checkpoint that was cut short while saving out of the trainer's way, keeping it:
    incomplete.checkpoint-16.<time>. Not checkpoint-16.<anything>: the trainer's save_total_limit
    rotation counts every `checkpoint-*` entry as a checkpoint of its own, and would delete it."""
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    return _rename_unique(checkpoint, f"incomplete.{checkpoint.name}.{stamp}")


def _rename_unique(path: Path, name: str) -> Path:
    target = path.with_name(name)
    suffix = 1
    while target.exists():
        suffix += 1
        target = path.with_name(f"{name}-{suffix}")
    path.rename(target)
    return target
