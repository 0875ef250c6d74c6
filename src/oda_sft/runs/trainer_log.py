"""The one reader of LLaMA-Factory's trainer_log.jsonl: a JSON object per logging step.

LLaMA-Factory appends on resume, so a step can appear twice; the later entry is the one that
counts. A line cut short by a kill, or anything that is not an object, is skipped.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

LOG_NAME = "trainer_log.jsonl"


def read(path: Path) -> list[dict[str, Any]]:
    """Every well-formed entry, in file order; [] when the file is missing or unreadable."""
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return []
    rows: list[dict[str, Any]] = []
    for line in text.splitlines():
        try:
            row = json.loads(line)
        except ValueError:
            continue
        if isinstance(row, dict):
            rows.append(row)
    return rows


def _step(value: Any) -> int | None:
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value < 2**53:
        return value  # a float can hold it: anything larger is not a step
    return None


def steps(rows: list[dict[str, Any]]) -> list[int]:
    """Every step a line names, loss or not (the line LLaMA-Factory writes when training ends has none)."""
    return [s for s in (_step(row.get("current_steps")) for row in rows) if s is not None]


def losses(rows: list[dict[str, Any]]) -> dict[int, float]:
    """step -> loss, the later entry winning where a resumed run logged a step again."""
    out: dict[int, float] = {}
    for row in rows:
        step, loss = _step(row.get("current_steps")), row.get("loss")
        if step is not None and isinstance(loss, int | float) and not isinstance(loss, bool):
            out[step] = float(loss)
    return dict(sorted(out.items()))
