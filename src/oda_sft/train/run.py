"""Start a planned run: guard the output_dir, keep the rendered config and a manifest, launch.

Nothing here deletes a run. A run is finished, skipped, failed or interrupted; the manifest says which.

In order: every check that needs nothing written (the dataset, the launcher, the devices, the disk,
a live trainer, the output dir's state); then the output dir's lock (runs/lock.py), held until the
trainer and everything it started are gone; under it the same decision again, the config and manifest
written together, the trainer launched under its supervisor (util/subproc.py), and the manifest
finished however the trainer ended. Every suggestion printed is a whole command (train/advice.py).
"""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Literal

import yaml

from oda_sft import tiny_model
from oda_sft.data import tokenized_cache
from oda_sft.data.registry import hashing
from oda_sft.data.registry.hashing import file_sha256
from oda_sft.datasets_catalog.advice import add_command, fetchable
from oda_sft.errors import DatasetError, RunStateError, UsageError
from oda_sft.presets import ModelPreset
from oda_sft.runs import lock, manifest, space, stamp
from oda_sft.runs.outdir import (
    OutputState,
    inspect_output_dir,
    set_aside,
)
from oda_sft.runs.record import RunFacts, run_record
from oda_sft.train import launcher, outdir_policy
from oda_sft.train.advice import Rerun
from oda_sft.train.plan import TrainPlan, settle_mode
from oda_sft.train.render import dump_yaml
from oda_sft.util import signals, subproc
from oda_sft.util.console import say
from oda_sft.util.fs import atomic_write_text
from oda_sft.util.paths import data_command

Outcome = Literal["finished", "skipped", "failed", "interrupted"]
# How a process ends when a person or a scheduler stops it: 128 + SIGINT/SIGTERM/SIGHUP. (A SIGKILL
# counts only when oda-sft sent it: otherwise it is the OOM killer, a failure.)
_SIGNAL_EXITS = {signals.exit_code(s) for s in signals.STOP_SIGNALS}


@dataclass(frozen=True)
class RunResult:
    outcome: Outcome
    exit_code: int  # what oda-sft exits with: 0 finished or skipped, 128+N when signal N stopped it
    output_dir: Path
    stopped: bool = False  # a signal asked oda-sft to stop (a sweep then starts no further run)


def check_launchable(plan: TrainPlan) -> None:
    dataset = plan.dataset
    if not dataset.registered:
        add = add_command(dataset.name, plan.request.dataset_dir)
        fix = (
            f"`{add}` fetches and converts it, or pass --fetch"
            if dataset.catalog is not None or fetchable(dataset.name)
            else f"register it with `{add}`"
        )
        raise DatasetError(f"dataset {dataset.name} is not registered in {dataset.info_path}: {fix}")
    launcher.require_launcher()
    launcher.check_patches(launcher.patches_for(plan.request.resumable, plan.request.recipe))
    if dataset.file is not None and not dataset.file.exists():
        raise DatasetError(
            f"dataset {dataset.name} is registered with file {dataset.file}, which does not exist: restore the "
            f"file, or put it back from its source with `{_put_back(plan)}`"
        )


def _put_back(plan: TrainPlan) -> str:
    """`data add NAME SOURCE --force`, with the file the dataset was registered from when it is still there
    (then it works as printed: data add puts the registered content back)."""
    dataset = plan.dataset
    source = dataset.meta.get("source")
    path = source.get("path") if isinstance(source, dict) and source.get("type") == "file" else None
    if fetchable(dataset.name) or not isinstance(path, str) or not Path(path).is_file():
        return add_command(dataset.name, plan.request.dataset_dir, "--force")
    return data_command("add", dataset.name, plan.request.dataset_dir, path, "--force")


def check_devices(plan: TrainPlan, allow_no_gpu: bool = False) -> None:
    """A real preset on a node without a visible GPU would fail inside LLaMA-Factory seconds later
    (bf16 and DeepSpeed need GPUs): refuse before anything is written, unless told to launch anyway."""
    check_devices_for(plan.preset, plan.gpu_count, allow_no_gpu)


def check_devices_for(preset: ModelPreset, gpu_count: int, allow_no_gpu: bool = False) -> None:
    if gpu_count > 0 or preset.embedded or allow_no_gpu:
        return
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    why = f"CUDA_VISIBLE_DEVICES={visible!r}" if visible is not None else "no NVIDIA driver devices"
    raise UsageError(
        f"no GPU is visible on {socket.gethostname()} ({why}), and the {preset.name} recipe trains in bf16 "
        "with DeepSpeed on GPUs: run it on a GPU node (`oda-sft slurm` writes the job), or add --allow-no-gpu "
        "to launch it anyway"
    )


def launch_config_path(plan: TrainPlan) -> Path:
    """Node rank 0 keeps the run's config. Other nodes launch from their own file: a node's render can
    differ (--profile fast weighs its own free memory), and one shared file would be last-writer-wins."""
    rank = plan.request.launch.node_rank
    return plan.config_path if rank == 0 else plan.output_dir / f"oda_sft_config.node-{rank}.yaml"


def prepare_launch(plan: TrainPlan, allow_no_gpu: bool = False) -> TrainPlan:
    """Check, once, that the run can start (dataset, launcher, devices), then measure its data when
    --mode auto needs that: nothing is measured or written for a run that cannot start."""
    check_launchable(plan)
    check_devices(plan, allow_no_gpu)
    return replace(settle_mode(plan), checked=True)


def start_run(
    plan: TrainPlan,
    force: bool = False,
    tokenized_cache_on: bool = True,
    allow_no_gpu: bool = False,
) -> RunResult:
    """Run the plan. Returns how it ended; the trainer's exit status is in exit_code."""
    if not plan.checked:
        plan = prepare_launch(plan, allow_no_gpu)
    rerun = Rerun(plan.request, tokenized_cache_on, allow_no_gpu)
    options = plan.request.launch
    if force and options.nnodes > 1:
        raise RunStateError(
            "--force with --nnodes > 1 would have every node move the run aside at once: move the earlier run "
            "aside yourself first (or choose another --output-root), then start the nodes without --force"
        )
    out = plan.output_dir
    # Refusals first, while nothing is written: a live trainer, then what the output dir holds.
    lock.refuse_if_busy(out, options.node_rank)
    if outdir_policy.decide_action(plan, inspect_output_dir(out), force, rerun) != "skip":
        space.check(plan.config, plan.preset.shape.params, out, len(inspect_output_dir(out).checkpoints))

    with lock.acquire(out, options.node_rank) as run_lock:
        state = inspect_output_dir(out)  # again, now that no other oda-sft can change it
        action = outdir_policy.decide_action(plan, state, force, rerun)
        if action == "skip":
            return _skip(plan, state, rerun)
        return _launch(plan, state, action, rerun, run_lock, tokenized_cache_on)


def _skip(plan: TrainPlan, state: OutputState, rerun: Rerun) -> RunResult:
    with signals.critical():
        repaired = manifest.settle_finished(plan.output_dir)
    if repaired:
        say(repaired)
    moved = outdir_policy.data_change(plan)
    if moved is not None:
        say(f"skipped: {state.describe()}, but {moved.describe(plan)}. To train it on the new content (the old "
            f"run is moved aside, not deleted): `{rerun.command(force=True)}`")  # fmt: skip
        return RunResult("skipped", 0, plan.output_dir)
    say(f"skipped: {state.describe()}. To train it again (the old run is moved aside, not deleted): "
        f"`{rerun.command(force=True)}`")  # fmt: skip
    return RunResult("skipped", 0, plan.output_dir)


def _launch(
    plan: TrainPlan,
    state: OutputState,
    action: outdir_policy.Action,
    rerun: Rerun,
    run_lock: lock.RunLock,
    tokenized_cache_on: bool,
) -> RunResult:
    out = plan.output_dir
    options = plan.request.launch
    resumed_from = _make_room(plan, state, action)
    # Held from here on as well as the lock file, so a live run is found even if that file is deleted.
    run_lock.hold_dir()

    if plan.needs_tiny_model and not tiny_model.is_built():
        say("building the tiny model (first use; cached afterwards)")
        tiny_model.ensure_model()

    config = dict(plan.config)
    cache = _use_tokenized_cache(plan, config, tokenized_cache_on)
    config_path = launch_config_path(plan)
    patches = launcher.patches_for(plan.request.resumable, plan.request.recipe)
    argv, env = launcher.build_command(
        config_path, options, plan.gpu_count, deepspeed=bool(config.get("deepspeed")), patches=patches
    )
    writes_manifest = options.node_rank == 0  # one record per run, on shared storage
    manifest_path = out / manifest.MANIFEST_NAME
    trainer_env = dict(env)  # what the trainer gets; `env` is what is shown and recorded
    if "checkpoint_stamp" in patches:  # each checkpoint-N then records what it was trained on (runs/stamp.py)
        dataset = plan.dataset
        trainer_env[stamp.ENV] = stamp.encode(dataset.name, dataset.sha256, dataset.revision, config)
    opened = outdir_policy.open_tracker(plan, config, writes_manifest)
    trainer_env.update(opened.env)  # the tracker run's id and settings: the trainer's, not shown or recorded
    record: dict[str, Any] = {}
    signalled: list[int] = []
    try:
        with signals.critical():  # the config and its manifest are written together, or neither
            atomic_write_text(config_path, dump_yaml(config))
            if writes_manifest:
                record = _start_record(plan, config, patches, cache, rerun, argv, env, resumed_from, opened.record)
        say(f"config kept at {config_path}")
        counted = cache.tokenized_path if cache is not None and not resumed_from else None  # for tokens/s
        output = launcher.Output(out, options.node_rank, counted)
        say(output.session.announce())
        watch = subproc.Watch(signalled.append, run_lock.pass_fds(), run_lock.record_supervisor)
        status = launcher.run(argv, trainer_env, watch, output)
    except signals.Interrupted as exc:  # stopped before the trainer started: it never will
        if record:
            manifest.finish(
                manifest_path, record, "interrupted", exc.exit_code, note="stopped before the trainer started"
            )
        raise
    except BaseException:
        if record:  # never leave a run that did not start marked as running
            _record_no_start(manifest_path, record)
        raise
    return _finish(plan, record, status, signalled, cache, writes_manifest, rerun, output)


def _make_room(plan: TrainPlan, state: OutputState, action: outdir_policy.Action) -> str | None:
    """Resume (a checkpoint cut short moved aside) or replace (the earlier run moved aside); returns the
    checkpoint LLaMA-Factory resumes from."""
    resumed_from = None
    if action == "resume":
        resumed_from = outdir_policy.set_aside_incomplete(plan, state.checkpoints)
        if resumed_from:
            say(f"resuming: {state.describe()}; LLaMA-Factory continues from {resumed_from}")
    if action == "replace":
        with signals.critical():
            moved = set_aside(plan.output_dir)
        say(f"--force: moved the earlier run to {moved}")
    return resumed_from


def _use_tokenized_cache(
    plan: TrainPlan, config: dict[str, Any], tokenized_cache_on: bool
) -> tokenized_cache.CacheEntry | None:
    """The run's tokenized cache entry, its path set in config; None when the cache is off for it."""
    dataset = plan.dataset
    cache = None
    if tokenized_cache_on and plan.request.launch.nnodes > 1:
        # Every node's local rank 0 preprocesses at once; none may read a copy another node is writing.
        say("tokenized cache off for a multi-node run: LLaMA-Factory tokenizes on each node")
    elif tokenized_cache_on and dataset.identity is not None:
        off = tokenized_cache.off_reason(config)
        if off is not None:
            say(off)
        else:
            cache = tokenized_cache.prepare(config, dataset)
            config["tokenized_path"] = str(cache.tokenized_path)
            hit = "hit, preprocessing skipped" if cache.hit else "miss, tokenizing once"
            say(f"tokenized cache {cache.key}: {hit}")
    return cache


def _start_record(
    plan: TrainPlan,
    config: dict[str, Any],
    patches: tuple[str, ...],
    cache: tokenized_cache.CacheEntry | None,
    rerun: Rerun,
    argv: list[str],
    env: dict[str, str],
    resumed_from: str | None,
    tracked: dict[str, Any] | None,
) -> dict[str, Any]:
    """Write the manifest of this attempt (node rank 0 only), an unusable earlier one moved aside first."""
    options = plan.request.launch
    note = outdir_policy.set_aside_unusable_manifest(plan, resumed_from)
    nproc = int(env.get("NPROC_PER_NODE", max(plan.gpu_count, 1)))
    facts = RunFacts(
        preset=plan.preset.name,
        model_path=str(config["model_name_or_path"]),
        dataset=plan.dataset,
        mode=plan.decision.mode,
        mode_source=plan.decision.source,
        mode_reason=plan.decision.reason,
        seed=plan.request.seed,
        profile=plan.request.profile,
        resumable=plan.request.resumable,
        patches=tuple(patches),
        config_path=plan.config_path,
        tokenized_cache={"key": cache.key, "hit": cache.hit} if cache else None,
        output_dir=plan.output_dir,
        nnodes=options.nnodes,
        rerun=rerun.command(),
        recipe_era=plan.request.recipe,
        tracker=tracked,
    )
    return manifest.start(
        plan.output_dir / manifest.MANIFEST_NAME,
        run=run_record(facts),
        launch_argv=argv,
        launch_env=launcher.shown_env(env),
        gpu_count=plan.gpu_count,
        world_size=options.nnodes * nproc,
        resumed_from=resumed_from,
        note=note,
    )


def _record_no_start(manifest_path: Path, record: dict[str, Any]) -> None:
    """The trainer never started (an error before it did): the record says interrupted or failed, never running."""
    asked = signals.received()
    if asked is not None:  # a library turned oda-sft's Interrupted into an error of its own
        manifest.finish(
            manifest_path, record, "interrupted", signals.exit_code(asked), note="stopped before the trainer started"
        )
    else:
        manifest.finish(manifest_path, record, "failed", 127)


def _finish(
    plan: TrainPlan,
    record: dict[str, Any],
    status: int,
    signalled: list[int],
    cache: tokenized_cache.CacheEntry | None,
    writes_manifest: bool,
    rerun: Rerun,
    output: launcher.Output | None = None,
) -> RunResult:
    out = plan.output_dir
    manifest_path = out / manifest.MANIFEST_NAME
    trained = inspect_output_dir(out).kind == "finished"
    outcome: manifest.Status
    if status == 0 or (trained and (signalled or status in _SIGNAL_EXITS)):
        # Stopped after LLaMA-Factory wrote its results (while it plotted the loss, say): the training
        # is complete, and the manifest, `runs` and a rerun all say finished.
        outcome = "finished"
    elif signalled or status in _SIGNAL_EXITS:
        outcome = "interrupted"
    else:
        outcome = "failed"
    # The person's signal decides the exit status (Ctrl-C: 130, even though the trainer got SIGTERM),
    # and the manifest records the same number oda-sft exits with.
    code = 0 if outcome == "finished" else signals.exit_code(signalled[0]) if signalled else status
    with signals.critical():
        identity, file = plan.dataset.identity, plan.dataset.file
        moved = identity is not None and file is not None and hashing.current_stamp(file) != identity.stamp
        if writes_manifest and moved:
            say(f"warning: {file} changed while the run used it; the manifest's sha256 is what it held at start")
            record["dataset"] = {**record["dataset"], "changed_during_run": True}
        if cache is not None and writes_manifest:
            kept = tokenized_cache.promote(cache)  # only if the data file is still what the key was made from
            if kept.saved:
                say(f"tokenized cache {cache.key} saved for later runs")
            elif kept.note is not None:
                say(f"warning: {kept.note}")
                record["tokenized_cache"] = {**(record.get("tokenized_cache") or {}), "discarded": kept.note}
            if tokenized_cache.is_complete(cache.path) and not cache.hit:
                # The kept config named the staging copy, which is gone now: name the entry it became.
                _point_kept_config_at(plan, str(cache.path), record)
        if writes_manifest:
            tokens = None
            if cache is not None and tokenized_cache.is_complete(cache.path) and outcome == "finished":
                tokens = tokenized_cache.count_tokens(cache.path)
            note = "stopped after training had finished" if outcome == "finished" and status != 0 else None
            manifest.finish(manifest_path, record, outcome, code, dataset_tokens=tokens, note=note)
            if outcome == "finished":
                drawn = manifest.draw_missing_plot(out)
                if drawn:
                    say(f"drew {drawn.name}, which LLaMA-Factory had not written before it was stopped")
    if outcome == "finished" and status != 0:
        say(f"stopped after training had finished: {out} holds the complete run")
    elif outcome == "interrupted":
        after = outdir_policy.after_interrupt(out, rerun, outdir_policy.world_size(plan))
        say(f"interrupted: {out} is kept as it is; {after}")
    elif outcome == "failed":
        full = space.diagnose(out)
        seen = f"see the log above{f' ({output.log})' if output is not None else ''}"
        cause = f"{full}: free some space, then go on with `{rerun.command()}`" if full else seen
        say(f"failed with exit status {status}: {cause}; {manifest_path.name} records the run")
    if outcome == "finished" and output is not None:
        for line in output.summary():
            say(line)
    return RunResult(outcome, code, out, stopped=bool(signalled))


def _point_kept_config_at(plan: TrainPlan, tokenized_path: str, record: dict[str, Any]) -> None:
    kept = plan.config_path
    try:
        config = yaml.safe_load(kept.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError):
        return
    if not isinstance(config, dict) or config.get("tokenized_path") == tokenized_path:
        return
    config["tokenized_path"] = tokenized_path
    atomic_write_text(kept, dump_yaml(config))
    if record:
        record["config"] = {**record.get("config", {}), "sha256": file_sha256(kept)}
