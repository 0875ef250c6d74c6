"""Start a planned run: guard the output_dir, keep the rendered config and a manifest, launch.

Nothing here deletes a run. A run is finished, skipped, failed or interrupted; the manifest says which.
"""

from __future__ import annotations

import signal
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import yaml

from oda_sft import tiny_model
from oda_sft.data import tokenized_cache
from oda_sft.data.hashing import file_sha256
from oda_sft.errors import DatasetError, RunStateError
from oda_sft.runs import manifest
from oda_sft.runs.outdir import checkpoint_is_complete, checkpoint_is_full, inspect_output_dir, set_aside
from oda_sft.train import launcher
from oda_sft.train.plan import TrainPlan
from oda_sft.train.profile import FAST_KEYS
from oda_sft.train.render import dump_yaml
from oda_sft.util.console import say as _say
from oda_sft.util.fs import atomic_write_text

Outcome = Literal["finished", "skipped", "failed", "interrupted"]
# Keys that may differ between attempts of one run without changing what it trains: oda-sft's
# tokenized cache, and what --profile fast sets for speed alone.
_NOT_THE_RECIPE = frozenset({"tokenized_path", *FAST_KEYS})
# How a process ends when a person or a scheduler stops it: 128 + SIGINT/SIGTERM/SIGHUP.
_SIGNAL_EXITS = {128 + int(s) for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)}


@dataclass(frozen=True)
class RunResult:
    outcome: Outcome
    exit_code: int
    output_dir: Path


def check_launchable(plan: TrainPlan) -> None:
    dataset = plan.dataset
    if not dataset.registered:
        raise DatasetError(
            f"dataset {dataset.name} is not registered in {dataset.info_path}: "
            "add an entry for it (`oda-sft data add`) before training"
        )
    launcher.require_launcher()
    launcher.check_patches(launcher.patches_for(plan.request.resumable))
    if dataset.file is not None and not dataset.file.exists():
        raise DatasetError(
            f"dataset {dataset.name} is registered with file {dataset.file}, which does not exist: "
            "restore the file or register the dataset again"
        )


def _config_changes(before: dict[str, Any], after: dict[str, Any]) -> list[str]:
    keys = (set(before) | set(after)) - _NOT_THE_RECIPE
    return sorted(k for k in keys if before.get(k) != after.get(k))


def _kept_config_changes(plan: TrainPlan) -> list[str]:
    """The keys in which the config kept in the output dir differs from this plan's; [] without one."""
    kept = plan.config_path
    if not kept.is_file():
        return []
    return _config_changes(yaml.safe_load(kept.read_text(encoding="utf-8")) or {}, plan.config)


def _check_resumable(
    plan: TrainPlan, checkpoints: tuple[str, ...], description: str, say: Callable[[str], None]
) -> str | None:
    """The checkpoint LLaMA-Factory will resume from, after refusing what cannot resume exactly."""
    changed = _kept_config_changes(plan)
    if changed:
        raise RunStateError(
            f"{description} trained with a different config (differs in: {', '.join(changed)}): "
            "rerun with the same options to resume, or pass --force to move it aside and start over"
        )
    names = list(checkpoints)
    while names and not checkpoint_is_complete(plan.output_dir / names[-1]):
        # Killed while saving: LLaMA-Factory would pick this newest, broken one. Keep it, out of the way.
        moved = set_aside(plan.output_dir / names.pop(), label="incomplete")
        say(f"{moved.name.split('.')[0]} was cut short while saving; moved to {moved.name}")
    if not names:
        say(f"no complete checkpoint in {plan.output_dir}: training starts from step 0")
        return None
    last = plan.output_dir / names[-1]
    if not checkpoint_is_full(last):
        raise RunStateError(
            f"{description}, but {last.name} holds weights only (the recipe saves model-only checkpoints once "
            "per epoch), so the optimizer and learning-rate schedule cannot be restored and a resume would "
            f"not be the same training. Choose: --force to start over (the partial run is moved aside); or "
            f"--model-path {last} to train on from those weights as a new run (not the recipe's math); and "
            "pass --resumable next time for full checkpoints every --save-steps steps"
        )
    return last.name


def start_run(
    plan: TrainPlan, force: bool = False, say: Callable[[str], None] = _say, tokenized_cache_on: bool = True
) -> RunResult:
    """Run the plan. Returns how it ended; the trainer's exit status is in exit_code."""
    check_launchable(plan)
    if force and plan.request.launch.nnodes > 1:
        raise RunStateError(
            "--force with --nnodes > 1 would have every node move the run aside at once: move the earlier run "
            "aside yourself first (or choose another --output-root), then start the nodes without --force"
        )
    out = plan.output_dir
    state = inspect_output_dir(out)
    resumed_from = None
    if state.kind == "finished" and not force:
        changed = _kept_config_changes(plan)
        if changed:
            raise RunStateError(
                f"{state.describe()}, trained with a different config (differs in: {', '.join(changed)}): pass "
                "--force to move it aside and train with this one, or choose another --output-root"
            )
        say(f"skipped: {state.describe()}. Pass --force to train again; the old run is then moved aside, not deleted")
        return RunResult("skipped", 0, out)
    if state.kind == "occupied" and not force:
        raise RunStateError(
            f"{state.describe()}: LLaMA-Factory cannot start there. Pass --force to move it aside "
            "(nothing is deleted), or choose another --output-root"
        )
    if state.kind == "interrupted" and not force:
        resumed_from = _check_resumable(plan, state.checkpoints, state.describe(), say)
        if resumed_from:
            say(f"resuming: {state.describe()}; LLaMA-Factory continues from {resumed_from}")
    if force and state.kind != "fresh":
        say(f"--force: moved the earlier run to {set_aside(out)}")

    if plan.needs_tiny_model and not tiny_model.is_built():
        say("building the tiny model (first use; cached afterwards)")
        tiny_model.ensure_model()

    config = dict(plan.config)
    dataset = plan.dataset
    data_sha = dataset.sha256
    cache = None
    if tokenized_cache_on and plan.request.launch.nnodes > 1:
        # Every node's local rank 0 preprocesses at once; none may read a copy another node is writing.
        say("tokenized cache off for a multi-node run: LLaMA-Factory tokenizes on each node")
    elif tokenized_cache_on and data_sha is not None:
        cache = tokenized_cache.prepare(config, data_sha, dict(dataset.entry or {}))
        config["tokenized_path"] = str(cache.tokenized_path)
        say(f"tokenized cache {cache.key}: " + ("hit, preprocessing skipped" if cache.hit else "miss, tokenizing once"))

    options = plan.request.launch
    # Node rank 0 keeps the run's config. Other nodes launch from their own file: a node's render can
    # differ (--profile fast weighs its own free memory), and one shared file would be last-writer-wins.
    config_path = plan.config_path
    if options.node_rank > 0:
        config_path = plan.output_dir / f"oda_sft_config.node-{options.node_rank}.yaml"
    atomic_write_text(config_path, dump_yaml(config))
    argv, env = launcher.build_command(
        config_path,
        options,
        plan.gpu_count,
        deepspeed=bool(config.get("deepspeed")),
        patches=launcher.patches_for(plan.request.resumable),
    )
    say(f"config kept at {config_path}")

    writes_manifest = options.node_rank == 0  # one record per run, on shared storage
    manifest_path = out / manifest.MANIFEST_NAME
    record: dict[str, Any] = {}
    if writes_manifest:
        nproc = int(env.get("NPROC_PER_NODE", max(plan.gpu_count, 1)))
        record = manifest.start(
            manifest_path,
            run={
                "model": {"preset": plan.preset.name, "path": config["model_name_or_path"]},
                "dataset": {
                    "name": dataset.name,
                    "dir": str(dataset.dir),
                    "file": str(dataset.file) if dataset.file else None,
                    "sha256": data_sha,
                },
                "mode": {"mode": plan.decision.mode, "source": plan.decision.source, "reason": plan.decision.reason},
                "seed": plan.request.seed,
                "profile": plan.request.profile,
                "resumable": plan.request.resumable,
                "config": {"path": str(plan.config_path), "sha256": file_sha256(plan.config_path)},
                "tokenized_cache": {"key": cache.key, "hit": cache.hit} if cache else None,
                "output_dir": str(out),
                "nnodes": options.nnodes,
            },
            launch_argv=argv,
            launch_env=launcher.shown_env(env),
            gpu_count=plan.gpu_count,
            world_size=options.nnodes * nproc,
            resumed_from=resumed_from,
        )

    signals: list[int] = []
    try:
        status = launcher.run(argv, env, on_signal=signals.append)
    except BaseException:
        if writes_manifest:  # never leave a run that did not start marked as running
            manifest.finish(manifest_path, record, "failed", 127)
        raise
    outcome: manifest.Status
    if status == 0:
        outcome = "finished"
    elif signals or status in _SIGNAL_EXITS:
        outcome = "interrupted"
    else:
        outcome = "failed"
    if cache is not None and writes_manifest and tokenized_cache.promote(cache):
        say(f"tokenized cache {cache.key} saved for later runs")
    if writes_manifest:
        tokens = None
        if cache is not None and tokenized_cache.is_complete(cache.path) and outcome == "finished":
            tokens = tokenized_cache.count_tokens(cache.path)
        manifest.finish(manifest_path, record, outcome, status, dataset_tokens=tokens)
    if outcome == "interrupted":
        say(f"interrupted: {out} is kept as it is; run the same command again to resume")
    elif outcome == "failed":
        say(f"failed with exit status {status}: see the log above; {manifest_path.name} records the run")
    return RunResult(outcome, status, out)
