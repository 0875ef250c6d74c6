"""Issue 13's goals, one pass/fail line each, from the bench.json files of benchmarks/gpu_check_8b.sh.

    python benchmarks/gpu_goals.py OUT/llama/bench.json [OUT/qwen/bench.json ...]

Goals (each under the decisions for 8xH100-80GB and for 8xH200, for every preset measured):
- std: fast >= 1.5x raw real tokens/s
- long: fast >= 1.15x raw, or the best reached and why (the decision's memory verdict)
- default >= 0.98x raw (where it ran)
- the loss equal to raw's at every step within 2e-3
- the memory model within 15% of every measured peak

Exit status: 0 when every goal that could be measured passed, 1 otherwise.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

STD_TARGET = 1.5
LONG_TARGET = 1.15
DEFAULT_TARGET = 0.98
LOSS_TOL = 2e-3
MEMORY_TOL = 0.15
NODES = ("8xH100-80GB", "8xH200")


def _line(ok: bool | None, text: str) -> str:
    return f"{ {True: 'PASS', False: 'FAIL', None: 'SKIP'}[ok]:4}  {text}"


def goals(report: dict[str, Any]) -> list[tuple[bool | None, str]]:
    shape = report.get("spec", {}).get("shape_name", "?")
    runs = report["runs"]
    by = {(r["data"], r["variant"]): r for r in runs}
    out: list[tuple[bool | None, str]] = []
    for data, target in (("std", STD_TARGET), ("long", LONG_TARGET)):
        for node in NODES:
            r = by.get((data, f"fast@{node}"))
            label = f"{shape} {data}: fast under the {node} decision >= {target}x raw"
            if r is None or r.get("skipped") or r.get("speedup_vs_raw") is None:
                why = (r or {}).get("skipped") or "not measured"
                out.append((False if r is not None and not r.get("skipped") else None, f"{label}: {why}"))
                continue
            x = r["speedup_vs_raw"]
            text = f"{label}: {x:.3f}x [{r.get('decision', '')}]"
            if x < target:
                memory = [n for n in r.get("decision_notes", []) if "checkpoint" in n]
                text += "; why: " + (" | ".join(memory) if memory else "see the decision notes in bench.json")
            out.append((x >= target, text))
    defaults = [r for r in runs if r["variant"] == "default"]
    measured = [r for r in defaults if r.get("speedup_vs_raw") is not None]
    if measured:
        worst = min(measured, key=lambda r: r["speedup_vs_raw"])
        out.append(
            (
                worst["speedup_vs_raw"] >= DEFAULT_TARGET,
                f"{shape}: default >= {DEFAULT_TARGET}x raw: "
                + ", ".join(f"{r['data']} {r['speedup_vs_raw']:.3f}x" for r in measured),
            )
        )
    else:
        why = next((r["skipped"] for r in defaults if r.get("skipped")), "not run")
        out.append((None, f"{shape}: default >= {DEFAULT_TARGET}x raw: {why}"))
    diffs = [
        (r["max_abs_loss_diff_vs_raw"], f"{r['data']}/{r['variant']}")
        for r in runs
        if r["variant"] != "raw" and r.get("max_abs_loss_diff_vs_raw") is not None
    ]
    broken = [f"{r['data']}/{r['variant']}" for r in runs if r.get("rc") not in (0, None) and not r.get("skipped")]
    if diffs:
        worst_diff = max(diffs)
        ok = worst_diff[0] <= LOSS_TOL and not broken
        extra = f"; failed runs: {', '.join(broken)}" if broken else ""
        out.append(
            (
                ok,
                f"{shape}: same loss as raw at every step (<= {LOSS_TOL}): "
                f"worst {worst_diff[0]:.4f} ({worst_diff[1]}){extra}",
            )
        )
    else:
        out.append((False if broken else None, f"{shape}: same loss as raw at every step: nothing compared"))
    errors = [
        (abs(r["memory_rel_error"]), r["memory_rel_error"], f"{r['data']}/{r['variant']}")
        for r in runs
        if r.get("memory_rel_error") is not None and not r.get("same_as")
    ]
    if errors:
        worst_err = max(errors)
        out.append(
            (
                worst_err[0] <= MEMORY_TOL,
                f"{shape}: memory model within {MEMORY_TOL:.0%} of every measured peak ({len(errors)} runs): "
                f"worst {worst_err[1]:+.1%} ({worst_err[2]})",
            )
        )
    else:
        out.append((None, f"{shape}: memory model vs measured peaks: no peak measured"))
    return out


def main(paths: list[str]) -> int:
    failed = False
    for path in paths:
        report = json.loads(Path(path).read_text(encoding="utf-8"))
        for ok, text in goals(report):
            print(_line(ok, text))
            failed |= ok is False
    return 1 if failed else 0


if __name__ == "__main__":
    if len(sys.argv) < 2:
        print(__doc__, file=sys.stderr)
        sys.exit(2)
    sys.exit(main(sys.argv[1:]))
