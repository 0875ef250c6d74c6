"""Loss curves: one PNG with many runs (`runs plot`), or one run's training_loss.png when LLaMA-Factory
was stopped before it drew it. matplotlib is imported only here, when asked to draw."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from oda_sft.runs import trainer_log
from oda_sft.util.tables import plot_text


class PlottedRun(Protocol):
    """What a curve needs of a run (listing.PlottedRun has it); listing imports the manifest, which
    imports this module to draw a missing plot, so this module does not import listing."""

    @property
    def path(self) -> str: ...
    @property
    def model(self) -> str: ...
    @property
    def dataset(self) -> str: ...
    @property
    def seed(self) -> int | None: ...
    @property
    def status(self) -> str: ...
    @property
    def final_loss(self) -> float | None: ...
    @property
    def final_step(self) -> int | None: ...
    @property
    def final_loss_note(self) -> str | None: ...


def _curve(run_dir: Path) -> tuple[list[int], list[float]]:
    losses = trainer_log.losses(trainer_log.read(run_dir / trainer_log.LOG_NAME))
    points = [(s, v) for s, v in losses.items() if math.isfinite(v)]
    return [s for s, _ in points], [v for _, v in points]


def label(run: PlottedRun) -> str:
    """model, dataset, seed and status; and the directory's name when it is not plain seed-N (a run moved
    aside, or one continued from a checkpoint), so that no two curves share a label."""
    name = Path(run.path).name
    text = f"{run.model} {run.dataset} seed {run.seed}"
    if name != f"seed-{run.seed}":
        text += f" [{name}]"
    return f"{text} ({run.status})"


@dataclass
class PlotResult:
    drawn: list[PlottedRun] = field(default_factory=list)
    left_out: list[tuple[PlottedRun, str]] = field(default_factory=list)  # with the reason
    as_points: list[tuple[PlottedRun, str]] = field(default_factory=list)  # drawn as one point, and what it is


def save_figure(fig: Any, target: Path) -> None:
    import matplotlib.pyplot as plt

    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(f".{target.name}.partial.png")
    try:
        fig.savefig(partial, dpi=120, bbox_inches="tight")
        partial.replace(target)
    finally:
        plt.close(fig)
        partial.unlink(missing_ok=True)


def pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")  # no display on a cluster node
    import matplotlib.pyplot as plt

    return plt


def plot(runs: Sequence[PlottedRun], target: Path) -> PlotResult:
    """One PNG with every run's loss curve; says which runs it drew and which it left out, and why."""
    result = PlotResult()
    curves = []
    for run in runs:
        if run.status == "unreadable":
            result.left_out.append((run, f"its {Path(run.path).name}/oda_sft_run.json cannot be read"))
            continue
        steps, losses = _curve(Path(run.path))
        if not steps and run.final_loss_note and run.final_step is not None and run.final_loss is not None:
            # A finished run shorter than logging_steps: its one number, the mean loss, at its last step.
            steps, losses = [run.final_step], [run.final_loss]
            result.as_points.append((run, f"drawn as one point at step {run.final_step}: {run.final_loss_note}"))
            name = f"{label(run)}: mean loss, no step logged"
        else:
            name = label(run)
        if not steps:
            result.left_out.append((run, "no loss logged yet"))
            continue
        curves.append((name, steps, losses))
        result.drawn.append(run)
    if not curves:
        return result  # nothing to draw: leave any existing file alone
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(10, 6))
    for name, steps, losses in curves:
        ax.plot(steps, losses, label=plot_text(name), linewidth=1.2, marker="o" if len(steps) == 1 else None)
    ax.set_xlabel("step")
    ax.set_ylabel("training loss")
    ax.set_title("oda-sft runs: training loss")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    save_figure(fig, target)
    return result


def plot_run(run_dir: Path, target: Path) -> bool:
    """One run's loss curve, as LLaMA-Factory's training_loss.png shows it; False when nothing is logged."""
    steps, losses = _curve(run_dir)
    if not steps:
        return False
    plt = pyplot()
    fig, ax = plt.subplots()
    ax.plot(steps, losses, color="#1f77b4", alpha=0.4, label="original")
    ax.set_title(plot_text(f"training loss of {run_dir}"))
    ax.set_xlabel("step")
    ax.set_ylabel("loss")
    ax.legend()
    save_figure(fig, target)
    return True
