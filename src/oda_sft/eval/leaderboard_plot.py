"""`oda-sft rank plot`: the leaderboard as bars (mean over seeds) with error bars (standard deviation),
one panel per group; the base model as a dashed line. matplotlib is imported only when drawing."""

from __future__ import annotations

from pathlib import Path

from oda_sft.eval.leaderboard import Board
from oda_sft.runs.plot import pyplot, save_figure
from oda_sft.util.tables import plot_text


def plot(board: Board, target: Path) -> int:
    """Draw every group that has a ranked row; returns how many bars were drawn (0: nothing written)."""
    panels = [(g, [r for r in g.rows if r.stat(board.by).mean is not None]) for g in board.groups]
    panels = [(g, rows) for g, rows in panels if rows]
    if not panels:
        return 0
    plt = pyplot()
    fig, axes = plt.subplots(len(panels), 1, figsize=(max(6.0, 1.2 * max(len(r) for _, r in panels) + 3),
                                                      4.2 * len(panels)), squeeze=False)  # fmt: skip
    bars = 0
    for ax, (group, rows) in zip(axes[:, 0], panels, strict=True):
        stats = [r.stat(board.by) for r in rows]
        means = [s.mean or 0.0 for s in stats]
        errors = [s.sd or 0.0 for s in stats]
        xs = range(len(rows))
        ax.bar(xs, means, yerr=errors, capsize=4, color="#4c72b0", alpha=0.85)
        for x, s in zip(xs, stats, strict=True):
            ax.annotate(
                f"n={s.n}",
                (x, (s.mean or 0.0) + (s.sd or 0.0)),
                textcoords="offset points",
                xytext=(0, 4),
                ha="center",
                fontsize=8,
            )  # above the error bar
        if group.base is not None and group.base.stat(board.by).mean is not None:
            ax.axhline(group.base.stat(board.by).mean, color="#c44e52", linestyle="--", label="base model")
            ax.legend(fontsize=8)
        ax.set_xticks(list(xs), [plot_text(r.label) for r in rows], rotation=30, ha="right", fontsize=8)
        ax.set_ylabel(f"{board.by} (0-100)")
        ax.set_title(plot_text(f"{group.preset}, evaluation {group.eval_id}: {board.by}, mean ± sd over seeds"),
                     fontsize=10)  # fmt: skip
        ax.grid(axis="y", alpha=0.3)
        bars += len(rows)
    fig.tight_layout()
    save_figure(fig, target)
    return bars
