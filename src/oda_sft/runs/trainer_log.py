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


def _seconds(value: Any) -> float | None:
    """LLaMA-Factory's "H:MM:SS" (or "D day, H:MM:SS") as seconds."""
    if not isinstance(value, str):
        return None
    days = 0
    if "day" in value:
        head, _, value = value.partition(",")
        days = int(head.split()[0]) if head.split()[0].isdigit() else 0
    parts = value.strip().split(":")
    if len(parts) != 3 or not all(p.isdigit() for p in parts):
        return None
    h, m, s = (int(p) for p in parts)
    return float(days * 86400 + h * 3600 + m * 60 + s)


def progress(rows: list[dict[str, Any]], dataset_tokens: int | None = None) -> str | None:
    """One line from the newest entry: step/total, the last loss, tokens/s, time left. Tokens/s is
    LLaMA-Factory's own throughput when it logs one (include_num_input_tokens_seen), else the dataset's
    tokens times the epochs done over the time taken; left out when neither is known. None before step 1."""
    latest = next((r for r in reversed(rows) if _step(r.get("current_steps")) is not None), None)
    if latest is None:
        return None
    parts = [f"step {latest['current_steps']}/{latest.get('total_steps', '?')}"]
    loss = losses(rows)
    if loss:
        parts.append(f"loss {list(loss.values())[-1]:.4f}")
    elapsed = _seconds(latest.get("elapsed_time"))
    rate = latest.get("throughput")
    epoch = latest.get("epoch")
    if not isinstance(rate, int | float) and dataset_tokens and isinstance(epoch, int | float) and elapsed:
        rate = dataset_tokens * epoch / elapsed
    if isinstance(rate, int | float) and rate > 0:
        parts.append(f"{rate:,.0f} tokens/s")
    remaining = latest.get("remaining_time")
    if isinstance(remaining, str) and latest.get("current_steps") != latest.get("total_steps"):
        parts.append(f"{remaining} left")
    return ", ".join(parts)


def final_loss(rows: list[dict[str, Any]]) -> float | None:
    found = losses(rows)
    return list(found.values())[-1] if found else None
