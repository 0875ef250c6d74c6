"""What to do with a run's output dir as it is: train, resume, skip or replace, and what is refused.

train/run.py carries the decision out under the run's lock; what stands in its way (a checkpoint cut
short, an unusable manifest) is set aside here, never deleted. Every refusal names whole commands built
from the run's own request (train/advice.py).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import yaml

from oda_sft.datasets_catalog.advice import add_command, fetchable
from oda_sft.errors import RunStateError
from oda_sft.runs import manifest, stamp, tracker
from oda_sft.runs.outdir import (
    OutputState,
    checkpoint_is_complete,
    checkpoint_is_full,
    inspect_output_dir,
    set_aside,
    set_aside_checkpoint,
)
from oda_sft.train.advice import Rerun
from oda_sft.train.plan import TrainPlan
from oda_sft.train.profile import FAST_KEYS, recipe_equivalent
from oda_sft.util.console import say
from oda_sft.util.paths import data_command

# Keys that may differ between attempts of one run without changing what it trains: oda-sft's
# tokenized cache, what --profile fast sets for speed alone, and how many processes tokenize.
_NOT_THE_RECIPE = frozenset({"tokenized_path", "preprocessing_num_workers", *FAST_KEYS})


def _config_changes(before: dict[str, Any], after: dict[str, Any]) -> list[str]:
    # fast's DeepSpeed file differs from the recipe's in overlap_comm alone: compared as the recipe's.
    before, after = recipe_equivalent(before), recipe_equivalent(after)
    keys = (set(before) | set(after)) - _NOT_THE_RECIPE
    return sorted(k for k in keys if before.get(k) != after.get(k))


def _kept_config_changes(plan: TrainPlan) -> list[str]:
    """The keys in which the config kept in the output dir differs from this plan's; [] without one."""
    kept = plan.config_path
    if not kept.is_file():
        return []
    try:
        before = yaml.safe_load(kept.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError:
        before = {"(unreadable oda_sft_config.yaml)": True}
    return _config_changes(before if isinstance(before, dict) else {}, plan.config)


def _recorded_command(plan: TrainPlan) -> str | None:
    record = run_manifest(plan)[0] or {}
    rerun = record.get("rerun")
    return rerun if isinstance(rerun, str) and rerun else None


def run_manifest(plan: TrainPlan) -> tuple[dict[str, Any] | None, str | None]:
    """(the output dir's manifest, None) when it is this run's record; else (None, what is wrong with it:
    missing, corrupt, not a run record, or another run's: another model, dataset or seed)."""
    path = plan.output_dir / manifest.MANIFEST_NAME
    record, problem = manifest.examine(path)
    if record is None:
        return None, problem
    dataset, model = record.get("dataset"), record.get("model")
    if not isinstance(dataset, dict) or not isinstance(model, dict) or not isinstance(record.get("attempts"), list):
        return None, f"{path} is not a run record oda-sft wrote (no dataset, model and attempts in it)"
    theirs = (model.get("preset"), dataset.get("name"), record.get("seed"))
    if theirs != (plan.preset.name, plan.dataset.name, plan.request.seed):
        return None, f"{path} is another run's (model {theirs[0]}, dataset {theirs[1]}, seed {theirs[2]})"
    return record, None


def unusable_manifest(plan: TrainPlan) -> str | None:
    """What is wrong with a manifest that is there but cannot be this run's record; None otherwise."""
    record, problem = run_manifest(plan)
    exists = os.path.lexists(plan.output_dir / manifest.MANIFEST_NAME)
    return problem if record is None and exists else None


@dataclass(frozen=True)
class DataChange:
    """The run in the output dir was trained on other content than its dataset holds now."""

    was: str  # sha256 the run's manifest records
    now: str  # sha256 of the registered file today
    was_revision: str | None  # the source commit the run's content was converted from, if recorded

    def describe(self, plan: TrainPlan, subject: str = "it") -> str:
        return (
            f"{subject} was trained on other content of dataset {plan.dataset.name} (sha256 {self.was[:12]}) than "
            f"it holds now ({self.now[:12]}; registered again or changed since)"
        )

    def register_again(self, plan: TrainPlan) -> str:
        """The command that registers the run's content again: exact for a catalog dataset whose source
        commit was recorded (and differs from today's), else with the SOURCE it came from to fill in."""
        dataset = plan.dataset
        rev = self.was_revision
        # A catalog dataset or an ODA subset is fetched by name at its recorded commit; otherwise (and when
        # no older commit is known) only the user has the old content: a SOURCE placeholder.
        if fetchable(dataset.name) and rev and rev != dataset.revision:
            return add_command(dataset.name, plan.request.dataset_dir, "--revision", rev, "--force")
        return data_command("add", dataset.name, plan.request.dataset_dir, "SOURCE", "--force")


def data_change(plan: TrainPlan) -> DataChange | None:
    """How the data the run in the output dir started on differs from the dataset's now; None when it
    does not (or either side is unknown: no manifest of this run, a dataset oda-sft cannot hash)."""
    record = run_manifest(plan)[0] or {}
    recorded = record.get("dataset")
    recorded = recorded if isinstance(recorded, dict) else {}
    was, now = recorded.get("sha256"), plan.dataset.sha256
    if not isinstance(was, str) or not was or not now or was == now:
        return None
    revision = recorded.get("revision")
    return DataChange(was, now, revision if isinstance(revision, str) else None)


def world_size(plan: TrainPlan) -> int:
    return plan.request.launch.world_size(plan.gpu_count)


def last_complete(out: Path, checkpoints: tuple[str, ...], world: int) -> Path | None:
    for name in reversed(checkpoints):
        if checkpoint_is_complete(out / name, world):
            return out / name
    return None


def _weights_only_advice(rerun: Rerun, checkpoint: Path) -> str:
    return (
        f"to start over (the partial run is moved aside, nothing is deleted): `{rerun.command(force=True)}`; "
        f"to train on from {checkpoint.name}'s weights as a new run (its own output dir, not the recipe's math): "
        f"`{rerun.command(model_path=checkpoint)}`; add --resumable next time for checkpoints a run can resume from"
    )


Action = Literal["skip", "train", "resume", "replace"]


def decide_action(plan: TrainPlan, state: OutputState, force: bool, rerun: Rerun) -> Action:
    """What to do with the output dir as it is; raises for what must be refused. Reads only."""
    if force:
        return "train" if state.kind == "fresh" else "replace"
    if state.kind == "finished":
        changed = _kept_config_changes(plan)
        if changed:
            raise RunStateError(
                f"{state.describe()}, trained with a different config (differs in: {', '.join(changed)}): to "
                f"train it again with this config (the old run is moved aside, not deleted): "
                f"`{rerun.command(force=True)}`; or choose another --output-root"
            )
        return "skip"
    if state.kind == "occupied":
        raise RunStateError(
            f"{state.describe()}: LLaMA-Factory cannot start there. To move it aside (nothing is deleted) and "
            f"train: `{rerun.command(force=True)}`; or choose another --output-root"
        )
    if state.kind == "interrupted":
        _refuse_other_training(plan, state, rerun)
        return "resume"
    return "train"


def _refuse_other_training(plan: TrainPlan, state: OutputState, rerun: Rerun) -> None:
    """Resume only what is proven to continue the same training: the checkpoint it resumes from was trained
    on the content the dataset holds now, with this config. Its stamp proves it (runs/stamp.py); without
    one (an older oda-sft's checkpoint), only this run's own manifest and kept config can."""
    last = last_complete(plan.output_dir, state.checkpoints, world_size(plan))
    stamped = stamp.read(last) if last is not None else None
    if isinstance(stamped, stamp.Stamp):
        assert last is not None
        moved = _stamp_change(plan, stamped)
        if moved is not None:
            raise _mixed_data(plan, state, rerun, moved, last.name)
        _refuse_config_change(plan, state, rerun, _config_changes(stamped.config, plan.config))
    else:
        moved = data_change(plan)  # from the manifest, when it is this run's
        if moved is not None:
            raise _mixed_data(plan, state, rerun, moved, "it")
        _refuse_config_change(plan, state, rerun, _kept_config_changes(plan))
    if last is not None and not checkpoint_is_full(last):
        raise RunStateError(
            f"{state.describe()}, but {last.name} holds weights only (the recipe saves model-only checkpoints "
            "once per epoch), so the optimizer and learning-rate schedule cannot be restored and a resume would "
            f"not be the same training. {_weights_only_advice(rerun, last)}"
        )
    if last is not None and isinstance(stamped, str):
        unproven = _manifest_proof_missing(plan)
        if unproven is not None:
            raise RunStateError(
                f"{state.describe()}, but {stamped}, and {unproven}: nothing proves which data and config it was "
                f"trained with, and a resume on others would train on mixed data. To start over (the old run is "
                f"moved aside, nothing is deleted): `{rerun.command(force=True)}`; or put the run's own "
                f"{manifest.MANIFEST_NAME} back and run this again"
            )


def _stamp_change(plan: TrainPlan, stamped: stamp.Stamp) -> DataChange | None:
    now = plan.dataset.sha256
    if stamped.sha256 == now and (now is not None or stamped.dataset == plan.dataset.name):
        return None
    return DataChange(stamped.sha256 or "unknown", now or "unknown", stamped.revision)


def _mixed_data(plan: TrainPlan, state: OutputState, rerun: Rerun, moved: DataChange, subject: str) -> RunStateError:
    return RunStateError(
        f"{state.describe()}, but {moved.describe(plan, subject)}: resuming would train on mixed data. To resume "
        f"it, register its content again (`{moved.register_again(plan)}`) and run this again; or to start "
        f"over on the new content (the old run is moved aside, nothing is deleted): `{rerun.command(force=True)}`"
    )


def _refuse_config_change(plan: TrainPlan, state: OutputState, rerun: Rerun, changed: list[str]) -> None:
    if not changed:
        return
    recorded = _recorded_command(plan)
    resume = f"to resume it, run the command it was started with: `{recorded}`; " if recorded else ""
    raise RunStateError(
        f"{state.describe()}, trained with a different config (differs in: {', '.join(changed)}): "
        f"{resume}to start over with this config (the old run is moved aside): `{rerun.command(force=True)}`"
    )


def _manifest_proof_missing(plan: TrainPlan) -> str | None:
    """For a checkpoint without a stamp: None when this run's manifest shows every attempt trained on the
    content the dataset holds now, and its config is kept; else why it does not."""
    record, problem = run_manifest(plan)
    if record is None:
        return problem
    now = plan.dataset.sha256
    recorded = record["dataset"].get("sha256")
    # Each attempt records its data (older manifests may not): one on other content made the run mixed already.
    trained_on = {recorded, *(a.get("dataset_sha256", recorded) for a in record["attempts"] if isinstance(a, dict))}
    if trained_on != {now}:
        shown = ", ".join(sorted(str(s)[:12] for s in trained_on))
        return f"{manifest.MANIFEST_NAME} does not show it trained on this content alone (sha256 {shown})"
    if not plan.config_path.is_file():
        return f"{plan.config_path.name}, the config it was trained with, is missing"
    return None


def set_aside_incomplete(plan: TrainPlan, checkpoints: tuple[str, ...]) -> str | None:
    """The checkpoint LLaMA-Factory will resume from, after moving checkpoints cut short while saving
    out of its way (it would pick the newest, broken one). Nothing is deleted."""
    names = list(checkpoints)
    while names and not checkpoint_is_complete(plan.output_dir / names[-1], world_size(plan)):
        name = names.pop()
        moved = set_aside_checkpoint(plan.output_dir / name)
        say(f"{name} was cut short while saving; moved to {moved.name}")
    if not names:
        say(f"no complete checkpoint in {plan.output_dir}: training starts from step 0")
        return None
    return names[-1]


def set_aside_unusable_manifest(plan: TrainPlan, resumed_from: str | None) -> str | None:
    """A manifest that is corrupt or another run's is moved aside (kept, not overwritten) before this attempt
    starts a record of its own; returns the note its first attempt keeps."""
    problem = unusable_manifest(plan)
    if problem is None:
        gone = resumed_from and not os.path.lexists(plan.output_dir / manifest.MANIFEST_NAME)
        return f"{manifest.MANIFEST_NAME} was missing: the attempts before this one are not recorded" if gone else None
    moved = set_aside(plan.output_dir / manifest.MANIFEST_NAME, "unusable")
    say(f"{problem}: moved it to {moved.name}; this attempt starts a new record")
    return f"the earlier {manifest.MANIFEST_NAME} was unusable ({problem}); kept as {moved.name}"


def after_interrupt(out: Path, rerun: Rerun, world: int) -> str:
    """What the person can do next, as commands that work as printed."""
    state = inspect_output_dir(out)
    last = last_complete(out, state.checkpoints, world) if state.kind == "interrupted" else None
    if last is None:
        return f"no checkpoint was saved, so running it again starts from step 0: `{rerun.command()}`"
    if checkpoint_is_full(last):
        return f"to resume from {last.name}: `{rerun.command()}`"
    return f"{last.name} holds weights only, so the run cannot resume exactly; {_weights_only_advice(rerun, last)}"


def open_tracker(plan: TrainPlan, config: dict[str, Any], writes_manifest: bool) -> tracker.Opened:
    """The tracker run this attempt logs to: the one the output dir's manifest recorded (a resumed run continues
    it; a manifest that cannot be this run's names none), else a new one. Only node rank 0's trainer logs, and
    only it records."""
    found = tracker.record(config)
    if not writes_manifest or found is None:
        return tracker.Opened(found, {})
    usable = unusable_manifest(plan) is None
    earlier = (manifest.read(plan.output_dir / manifest.MANIFEST_NAME) or {}).get("tracker") if usable else None
    data = plan.dataset
    about = tracker.run_config(plan.preset.name, data.name, data.sha256, plan.request.recipe, plan.request.seed, config)
    return tracker.open_run(found, earlier, plan.output_dir, about)
