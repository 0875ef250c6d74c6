"""The throughput table: what `oda-sft bench` measured on real GPUs, shipped inside the package.

Each measurement is one benchmark run: the GPU, the date, the software versions, the model shape
it trained, the recipe preset and mode, the settings it ran with (micro-batch, accumulation, how
many layers were checkpointed) and what it achieved. `estimate` predicts a run's step time from
the measurement closest to it: the hardware efficiency (FLOPs computed per second over the GPU's
peak, padding and attention counted by cost/accounting.py) carries over to another dataset and
to the full-depth model; the real tokens/s does not.

`oda-sft bench --save-table` adds a bench.json's runs (replacing earlier ones with the same key).
ODA_SFT_THROUGHPUT_TABLE points `estimate` at another table file.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field, fields
from importlib import resources
from pathlib import Path
from typing import Any

from oda_sft.errors import UsageError
from oda_sft.util.fs import atomic_write_text

TABLE_ENV = "ODA_SFT_THROUGHPUT_TABLE"
TABLE_FILE = "throughput.json"


@dataclass(frozen=True)
class Measurement:
    source: str  # where the numbers come from (a bench.json, an issue's table)
    date: str
    gpu: str  # the device name as measured, e.g. "NVIDIA H200"
    card: str | None  # its cards.py name, when it is one of them
    gpus: int  # GPUs the measured run used
    versions: Mapping[str, str | None]
    shape: str  # the model shape trained, e.g. "llama3.1-8b-4L"
    num_layers: int
    preset: str  # the recipe preset it trained
    mode: str  # standard or long
    variant: str  # raw, default, fast, fast@8xH100-80GB, ...
    micro_batch: int
    accumulation: int
    checkpointed_layers: int  # decoder layers checkpointed (num_layers: all, 0: off)
    overlap_comm: bool
    step_time_s: float  # steady state, one optimizer step
    real_tokens_per_s: float
    efficiency: float  # hardware FLOPs per step / (step time x peak x gpus)
    mfu: float | None = None  # model FLOPs on real tokens / peak
    peak_allocated_gib: float | None = None
    note: str = ""
    same_as: tuple[str, ...] = field(default_factory=tuple)  # other variants that ran this same config

    @property
    def key(self) -> tuple[str, str, str, str, str]:
        return (self.card or self.gpu, self.shape, self.preset, self.mode, self.variant)

    @property
    def checkpointed_fraction(self) -> float:
        return self.checkpointed_layers / self.num_layers if self.num_layers else 1.0

    def describe(self) -> str:
        ck = (
            "checkpointing off"
            if self.checkpointed_layers == 0
            else "checkpointing all layers"
            if self.checkpointed_layers >= self.num_layers
            else f"checkpointing {self.checkpointed_layers} of {self.num_layers} layers"
        )
        versions = ", ".join(f"{k} {v}" for k, v in self.versions.items() if v)
        return (
            f"{self.shape} ({self.preset} {self.mode}, {self.variant}: micro-batch {self.micro_batch} x "
            f"{self.accumulation}, {ck}) on {self.gpus} x {self.gpu}, {self.date[:10]}, {versions}; "
            f"{self.step_time_s:.3g} s/step, efficiency {self.efficiency:.1%}; source: {self.source}"
        )

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Measurement:
        names = {f.name for f in fields(cls)}
        values = {k: v for k, v in data.items() if k in names}
        values["same_as"] = tuple(values.get("same_as") or ())
        return cls(**values)


@dataclass(frozen=True)
class Table:
    path: str  # where it was read from, for messages
    about: str
    measurements: tuple[Measurement, ...]

    def as_json(self) -> dict[str, Any]:
        rows = []
        for m in self.measurements:
            row = asdict(m)
            row["same_as"] = list(m.same_as)
            rows.append(row)
        return {"about": self.about, "measurements": rows}


def default_path() -> Path:
    forced = os.environ.get(TABLE_ENV, "").strip()
    if forced:
        return Path(forced).expanduser()
    return Path(str(resources.files("oda_sft.cost") / TABLE_FILE))


def load(path: Path | None = None) -> Table:
    path = path or default_path()
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UsageError(f"throughput table {path} does not exist: unset {TABLE_ENV} or point it at a table") from None
    except (OSError, ValueError) as exc:
        raise UsageError(f"cannot read the throughput table {path}: {exc}: restore it or unset {TABLE_ENV}") from None
    try:
        rows = tuple(Measurement.from_json(m) for m in data.get("measurements", []))
    except (TypeError, AttributeError) as exc:
        raise UsageError(f"throughput table {path} has a malformed measurement ({exc}): restore it") from None
    return Table(str(path), str(data.get("about", "")), rows)


def merged(table: Table, new: Iterable[Measurement]) -> Table:
    """`table` with `new` added; a new measurement replaces an old one with the same key."""
    incoming = list(new)
    keys = {m.key for m in incoming}
    kept = [m for m in table.measurements if m.key not in keys]
    return Table(table.path, table.about, tuple(kept + incoming))


def save(table: Table, path: Path) -> None:
    atomic_write_text(path, json.dumps(table.as_json(), indent=1) + "\n")
