"""Read back what a run logged to its tracker, with each tracker's own reader: TensorBoard's EventAccumulator,
wandb's record protos from an offline run's .wandb file, mlflow's client on its store. A tracker package that is
not installed skips the test locally, saying why, and fails it under CI=true (the dev extra installs them)."""

from __future__ import annotations

import importlib.util
import json
import os
import struct
from pathlib import Path
from typing import Any

from realproc import system_missing


def need(module: str) -> None:
    if importlib.util.find_spec(module) is None:
        system_missing(f"{module} is not installed here: pip install -e '.[dev]' installs it")


def tensorboard_scalars(log_dir: Path) -> dict[str, list[tuple[int, float]]]:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    found = EventAccumulator(str(log_dir), size_guidance={"scalars": 0, "tensors": 0})
    found.Reload()
    return {tag: [(e.step, e.value) for e in found.Scalars(tag)] for tag in found.Tags()["scalars"]}


def tensorboard_texts(log_dir: Path) -> dict[str, list[str]]:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    found = EventAccumulator(str(log_dir), size_guidance={"scalars": 0, "tensors": 0})
    found.Reload()
    return {
        tag.removesuffix("/text_summary"): [b.decode() for e in found.Tensors(tag) for b in e.tensor_proto.string_val]
        for tag in found.Tags()["tensors"]
    }


def wandb_records(run_dir: Path, run_id: str) -> list[Any]:
    """Every record of the offline runs with this id under run_dir/wandb (each attempt and each eval writes an
    offline-run-<time>-<id> folder; `wandb sync` joins them into the one run). The .wandb file is wandb's
    LevelDB-style log (32 KiB blocks of checksum, length, type, then a piece of a Record proto)."""
    from wandb.proto import wandb_internal_pb2 as pb

    records = []
    for path in sorted((run_dir / "wandb").glob(f"offline-run-*-{run_id}/run-{run_id}.wandb")):
        data = path.read_bytes()
        assert data[:4] == b":W&B", path
        pos, piece = 7, b""
        while pos + 7 <= len(data):
            left = 32768 - pos % 32768
            _, length, kind = struct.unpack("<IHB", data[pos : pos + 7])
            if left < 7 or (kind == 0 and length == 0):
                pos += left
                continue
            piece += data[pos + 7 : pos + 7 + length]
            pos += 7 + length
            if kind in (1, 4):  # a whole record, or the last piece of one
                record = pb.Record()
                record.ParseFromString(piece)
                records.append(record)
                piece = b""
    return records


def wandb_history(records: list[Any]) -> list[dict[str, Any]]:
    return [
        {i.key or "/".join(i.nested_key): json.loads(i.value_json) for i in r.history.item}
        for r in records
        if r.WhichOneof("record_type") == "history"
    ]


def wandb_config(records: list[Any]) -> dict[str, Any]:
    found: dict[str, Any] = {}
    for r in records:
        kind = r.WhichOneof("record_type")
        updates = r.run.config.update if kind == "run" else r.config.update if kind == "config" else []
        found.update({u.key or "/".join(u.nested_key): json.loads(u.value_json) for u in updates})
    return found


def mlflow_run(uri: str, run_id: str) -> tuple[Any, dict[str, list[tuple[int, float]]]]:
    """The run, and each metric's history (step, value)."""
    os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")
    from mlflow.tracking import MlflowClient

    client = MlflowClient(uri)
    run = client.get_run(run_id)
    history = {k: [(m.step, m.value) for m in client.get_metric_history(run_id, k)] for k in run.data.metrics}
    return run, history
