"""One PNG with the loss curves of many runs (matplotlib is imported only here, when asked to draw)."""

from __future__ import annotations

from pathlib import Path

from oda_sft.runs import trainer_log
from oda_sft.runs.listing import RunSummary


def _curve(run_dir: Path) -> tuple[list[int], list[float]]:
    losses = trainer_log.losses(trainer_log.read(run_dir / trainer_log.LOG_NAME))
    return list(losses), list(losses.values())


def plot(runs: list[RunSummary], target: Path) -> int:
    """One PNG with every run's loss curve; returns how many curves it drew."""
    curves = [(run, *_curve(Path(run.path))) for run in runs]
    curves = [c for c in curves if c[1]]
    if not curves:
        return 0  # nothing to draw: leave any existing file alone
    import matplotlib

    matplotlib.use("Agg")  # no display on a cluster node
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(10, 6))
    for run, steps, losses in curves:
        ax.plot(steps, losses, label=f"{run.model} {run.dataset} seed {run.seed} ({run.status})", linewidth=1.2)
    drawn = len(curves)
    ax.set_xlabel("step")
    ax.set_ylabel("training loss")
    ax.set_title("oda-sft runs: training loss")
    ax.grid(alpha=0.3)
    if drawn:
        ax.legend(fontsize=8)
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(f".{target.name}.partial.png")
    fig.savefig(partial, dpi=120, bbox_inches="tight")
    plt.close(fig)
    partial.replace(target)
    return drawn
