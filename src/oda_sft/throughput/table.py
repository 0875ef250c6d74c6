"""`oda-sft bench --save-table`: a bench.json's GPU runs as throughput-table measurements."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

from oda_sft.cards import card_of_device
from oda_sft.cost.table import Measurement, Table, load, merged, save
from oda_sft.presets import Mode
from oda_sft.throughput.spec import BenchError

_MODES: dict[str, Mode] = {"std": "standard", "long": "long"}


def read_report(path: Path) -> dict[str, Any]:
    try:
        report = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise BenchError(
            f"{path} does not exist: run `oda-sft bench` first, or give the path of its bench.json"
        ) from None
    except (OSError, ValueError) as exc:
        raise BenchError(f"cannot read {path}: {exc}: give the bench.json `oda-sft bench` wrote") from None
    if not isinstance(report, dict) or "runs" not in report or "host" not in report:
        raise BenchError(f"{path} is not a bench.json written by `oda-sft bench`: give the one it wrote")
    return report


def measurements(report: dict[str, Any], source: str) -> list[Measurement]:
    """Every run of a GPU benchmark that finished with a steady step time and an efficiency."""
    host = report["host"]
    if host.get("device") != "gpu" or not host.get("gpu"):
        raise BenchError("the throughput table holds GPU measurements only: this bench.json was measured on a CPU")
    spec = report.get("spec", {})
    card = card_of_device(host["gpu"])
    out: list[Measurement] = []
    twins: dict[tuple[str, str], list[str]] = {}
    for run in report["runs"]:
        for original in run.get("same_as") or ():
            twins.setdefault((run["data"], original), []).append(run["variant"])
    for run in report["runs"]:
        if run.get("rc") != 0 or run.get("skipped") or run.get("same_as"):
            continue
        if not run.get("step_time_s") or not run.get("efficiency"):
            continue
        config = run.get("config", {})
        out.append(
            Measurement(
                source=source,
                date=str(report.get("date", "")),
                gpu=str(host["gpu"]),
                card=card.name if card else None,
                gpus=int(host.get("world_size") or 1),
                versions=dict(host.get("versions") or {}),
                shape=str(spec.get("shape_name") or spec.get("shape")),
                num_layers=int(run.get("num_layers") or 0),
                preset=str(spec.get("preset")),
                mode=_MODES[run["data"]],
                variant=str(run["variant"]),
                micro_batch=int(config.get("per_device_train_batch_size", 1)),
                accumulation=int(config.get("gradient_accumulation_steps", 1)),
                checkpointed_layers=int(run.get("checkpointed_layers") or 0),
                overlap_comm=bool(run.get("overlap_comm")),
                step_time_s=float(run["step_time_s"]),
                real_tokens_per_s=float(run.get("tokens_per_s") or 0.0),
                efficiency=float(run["efficiency"]),
                mfu=run.get("mfu"),
                peak_allocated_gib=run.get("peak_allocated_gib"),
                note=str(run.get("decision") or ""),
                same_as=tuple(twins.get((run["data"], run["variant"]), ())),
            )
        )
    if not out:
        raise BenchError("the bench.json has no finished GPU run with a step time: nothing to add to the table")
    return out


def save_table(report: dict[str, Any], source: str, table_path: Path | None) -> tuple[Table, int, Path]:
    """Merge the report's runs into the table at table_path (default: the shipped one)."""
    if table_path is not None and not table_path.exists():
        table = replace(load(None), path=str(table_path))  # a new table starts from the shipped one
    else:
        table = load(table_path)
    new = measurements(report, source)
    updated = merged(table, new)
    path = Path(table.path)
    try:
        save(updated, path)
    except OSError as exc:
        raise BenchError(
            f"cannot write the throughput table {path} ({exc.strerror or exc}): pass --table PATH "
            "and point ODA_SFT_THROUGHPUT_TABLE at it"
        ) from None
    return updated, len(new), path
