"""Start a planned run: guard the output_dir, keep the rendered config, launch the trainer."""

from __future__ import annotations

import sys
from collections.abc import Callable

import yaml

from oda_sft import launch, tiny
from oda_sft.errors import DatasetError, RunStateError
from oda_sft.fsutil import atomic_write_text
from oda_sft.outputs import inspect_output_dir, set_aside
from oda_sft.recipe import dump_yaml
from oda_sft.train_plan import TrainPlan

SKIPPED = 0


def _say(message: str) -> None:
    print(f"oda-sft: {message}", file=sys.stderr, flush=True)


def check_launchable(plan: TrainPlan) -> None:
    if not plan.registered:
        raise DatasetError(
            f"dataset {plan.request.dataset} is not registered in {plan.config['dataset_dir']}/dataset_info.json: "
            "add an entry for it (`oda-sft data add`) before training"
        )


def start_run(plan: TrainPlan, force: bool = False, say: Callable[[str], None] = _say) -> int:
    """Run the plan and return the trainer's exit status. Deletes nothing, ever."""
    check_launchable(plan)
    state = inspect_output_dir(plan.output_dir)
    if state.kind == "finished" and not force:
        say(f"skipped: {state.describe()}. Pass --force to train again; the old run is then moved aside, not deleted")
        return SKIPPED
    if state.kind == "occupied" and not force:
        raise RunStateError(
            f"{state.describe()}: LLaMA-Factory cannot start there. Pass --force to move it aside "
            "(nothing is deleted), or choose another --output-root"
        )
    if state.kind == "interrupted" and not force:
        kept = plan.config_path
        if kept.is_file():
            before = yaml.safe_load(kept.read_text(encoding="utf-8"))
            if before != plan.config:
                changed = sorted(k for k in set(before) | set(plan.config) if before.get(k) != plan.config.get(k))
                raise RunStateError(
                    f"{state.describe()} trained with a different config (differs in: {', '.join(changed)}): "
                    "rerun with the same options to resume, or pass --force to move it aside and start over"
                )
        say(f"resuming: {state.describe()}; LLaMA-Factory continues from {state.checkpoints[-1]}")
    if force and state.kind != "fresh":
        moved = set_aside(plan.output_dir)
        say(f"--force: moved the earlier run to {moved}")

    model_note = ""
    if plan.needs_tiny_model and not tiny.is_built():
        model_note = "building the tiny model (first use; cached afterwards)"
        say(model_note)
        tiny.ensure_model()

    atomic_write_text(plan.config_path, dump_yaml(plan.config))
    argv, env = launch.build_command(plan.config_path, plan.request.launch, plan.gpu_count)
    say(f"config kept at {plan.config_path}")
    return launch.run(argv, env)
