"""`oda-sft rank plot`: the leaderboard as a figure for a paper or a slide, one panel per group, written as
PNG (300 dpi) and SVG beside it.

On a 0-100 axis: bars at the mean over seeds with its value written on it, error bars of one standard
deviation over seeds (where a row has two or more), the base model as a labelled dashed line, and between
neighbours a bracket saying whether `rank`'s paired test separates them (* separated, n.s. not). The
settings (benchmarks, OpenCompass, the test and its confidence, the evaluation id) are in the caption under
the panel and in the files' metadata, not in the title. matplotlib is imported only when drawing."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from oda_sft.eval.leaderboard import Board, Group, Row
from oda_sft.runs.plot import pyplot
from oda_sft.util.tables import plot_text

BAR = "#4c72b0"
BASE = "#c44e52"


def caption(group: Group, by: str, confidence: float) -> str:
    oc = group.opencompass
    where = f"OpenCompass {oc.get('version', '?')}{' (ODA fork)' if oc.get('fork') else ''}"
    return (
        f"{by} score (0-100): mean over seeds; error bars ±1 sd over seeds (none with one seed). "
        f"Benchmarks: {', '.join(group.benchmarks)}; {where}; evaluation settings {group.eval_id}. "
        f"Brackets: neighbours compared by a paired test over questions and seeds at {100 * confidence:g}% "
        "(* separated, n.s. not separated)."
        + (" †: answers cut at max_out_len (scored as wrong)." if any(r.cut for r in group.rows) else "")
    )


def _panel(ax: Any, group: Group, rows: list[Row], by: str, confidence: float) -> None:
    stats = [r.stat(by) for r in rows]
    means = [s.mean or 0.0 for s in stats]
    errors = [s.sd or 0.0 for s in stats]
    xs = list(range(len(rows)))
    ax.bar(xs, means, width=0.62, color=BAR, zorder=2, label=f"{by}, mean over seeds")
    if any(s.sd is not None for s in stats):
        ax.errorbar(xs, means, yerr=errors, fmt="none", ecolor="black", elinewidth=0.8, capsize=3, zorder=3,
                    label="±1 sd over seeds")  # fmt: skip
    for x, m, e in zip(xs, means, errors, strict=True):  # inside a tall bar, above a short one's error bar
        inside = m - e > 14
        ax.text(x, m / 2 if inside else m + e + 1.5, f"{m:.1f}", ha="center", va="center" if inside else "bottom",
                fontsize=7, color="white" if inside else "black", zorder=4)  # fmt: skip
    if group.base is not None and group.base.stat(by).mean is not None:
        base = group.base.stat(by).mean or 0.0
        ax.axhline(base, color=BASE, linestyle="--", linewidth=1, zorder=1, label=f"base model ({base:.1f})")
    tops = [m + e for m, e in zip(means, errors, strict=True)]
    for i, row in enumerate(rows[:-1]):
        if row.gap is None:
            continue
        y = min(96.0, max(tops[i], tops[i + 1]) + 9)
        ax.plot([i, i, i + 1, i + 1], [y - 1.5, y, y, y - 1.5], color="black", linewidth=0.7, zorder=4)
        mark = "*" if row.gap.separated else "n.s." if row.gap.method != "untested" else "untested"
        ax.text(i + 0.5, y + 0.6, mark, ha="center", va="bottom", fontsize=7)
    ticks = [f"{plot_text(r.label)}{' †' if r.cut else ''}\nseeds {','.join(map(str, r.seeds))}" for r in rows]
    ax.set_xticks(xs, ticks, rotation=30 if len(rows) > 4 else 0, ha="right" if len(rows) > 4 else "center",
                  fontsize=7)  # fmt: skip
    ax.set_ylim(0, 100)
    ax.set_ylabel(f"{by} (0-100)", fontsize=8)
    ax.tick_params(axis="y", labelsize=7)
    ax.set_title(plot_text(f"{group.preset}: {by}"), fontsize=9, pad=18)
    ax.grid(axis="y", alpha=0.3, zorder=0)
    ax.spines[["top", "right"]].set_visible(False)
    ax.legend(fontsize=6, loc="lower center", bbox_to_anchor=(0.5, 1.0), ncol=3, frameon=False, handlelength=1.5)
    ax.text(0, -0.32 if len(rows) <= 4 else -0.5, plot_text(caption(group, by, confidence)), transform=ax.transAxes,
            fontsize=6, va="top", ha="left", wrap=True)  # fmt: skip


def vector_path(target: Path) -> Path:
    return target.with_suffix(".svg")


def plot(board: Board, target: Path) -> int:
    """Draw every group that has a ranked row (PNG at `target`, SVG beside it); returns how many bars were
    drawn (0: nothing written)."""
    panels = [(g, [r for r in g.rows if r.stat(board.by).mean is not None]) for g in board.groups]
    panels = [(g, rows) for g, rows in panels if rows]
    if not panels:
        return 0
    plt = pyplot()
    width = max(3.4, 0.6 * max(len(r) for _, r in panels) + 1.6)  # a paper's column is 3.4 in wide
    fig, axes = plt.subplots(len(panels), 1, figsize=(width, 3.4 * len(panels)), squeeze=False)
    for ax, (group, rows) in zip(axes[:, 0], panels, strict=True):
        _panel(ax, group, rows, board.by, board.confidence)
    fig.tight_layout(h_pad=4)
    settings = [{"model": g.preset, "eval_id": g.eval_id, "settings": g.settings, "opencompass": g.opencompass}
                for g, _ in panels]  # fmt: skip
    meta = {"Title": f"oda-sft leaderboard ({board.by})", "Description": json.dumps(settings, sort_keys=True)}
    _save(fig, target, meta, plt)
    return sum(len(r) for _, r in panels)


def _save(fig: Any, target: Path, meta: dict[str, str], plt: Any) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    done = []
    try:
        for path, options in ((target, {"dpi": 300, "metadata": meta}),
                              (vector_path(target), {"metadata": {"Title": meta["Title"],
                                                                  "Description": meta["Description"]}})):  # fmt: skip
            partial = path.with_name(f".{path.name}.partial{path.suffix}")
            done.append(partial)
            fig.savefig(partial, bbox_inches="tight", **options)
        for partial, path in zip(done, (target, vector_path(target)), strict=True):
            partial.replace(path)
    finally:
        plt.close(fig)
        for partial in done:
            partial.unlink(missing_ok=True)
