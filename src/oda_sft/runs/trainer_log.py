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


def losses(rows: list[dict[str, Any]]) -> dict[int, float]:
    """step -> loss, the later entry winning where a resumed run logged a step again."""
    out: dict[int, float] = {}
    for row in rows:
        step, loss = row.get("current_steps"), row.get("loss")
        if (
            isinstance(step, int)
            and not isinstance(step, bool)
            and 0 <= step < 2**53  # a float can hold it: anything larger is not a step
            and isinstance(loss, int | float)
            and not isinstance(loss, bool)
        ):
            out[step] = float(loss)
    return dict(sorted(out.items()))
