"""`--report-to`: the experiment tracker a run logs to (LLaMA-Factory's and transformers' `report_to`).

A tracker is an optional extra (`pip install 'oda-sft[wandb]'`): one that is not installed is refused in
one line before anything starts, instead of transformers' error after the model has loaded. The tracker
run is named <model>/<dataset>/seed-<n>; TensorBoard writes into a fixed folder of the run dir, so every
attempt of a resumed run adds to the same tracker run. The manifest records what the trainer was told.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

from oda_sft.errors import UsageError

# The module transformers 4.57.1 looks for (integrations/integration_utils.py: is_*_available, and its
# INTEGRATION_TO_CALLBACK, which holds all four names); tensorboardX will do for tensorboard.
_MODULES: dict[str, tuple[str, ...]] = {
    "tensorboard": ("tensorboard", "tensorboardX"),
    "wandb": ("wandb",),
    "mlflow": ("mlflow",),
    "swanlab": ("swanlab",),
}
TENSORBOARD_DIR = "tensorboard"  # in the run dir: TensorBoard reads every event file of a folder as one run


def require(tracker: str) -> None:
    """One line, before anything starts, when the tracker's package is not installed."""
    modules = _MODULES.get(tracker, ())
    if modules and not any(importlib.util.find_spec(m) is not None for m in modules):
        raise UsageError(
            f"--report-to {tracker} needs the {modules[0]} package, which is not installed here: "
            f"pip install 'oda-sft[{tracker}]', or leave --report-to out"
        )


def run_name(model: str, dataset: str, seed: int) -> str:
    return f"{model}/{dataset}/seed-{seed}"


def settings(tracker: str, name: str, output_dir: Path) -> dict[str, Any]:
    """The trainer's settings for `tracker`, merged into the rendered config."""
    found: dict[str, Any] = {"report_to": tracker, "run_name": name}
    if tracker == "tensorboard":
        found["logging_dir"] = str(output_dir / TENSORBOARD_DIR)
    return found


def record(config: dict[str, Any]) -> dict[str, Any] | None:
    """The manifest's `tracker`: what the rendered config tells the trainer, whether from --report-to or
    from a `-- report_to=` override; None when the config names no tracker."""
    report_to = config.get("report_to")
    if report_to in (None, "none", ["none"]):
        return None
    found: dict[str, Any] = {"report_to": report_to, "run_name": config.get("run_name")}
    if config.get("logging_dir"):
        found["logging_dir"] = config["logging_dir"]
    return found
