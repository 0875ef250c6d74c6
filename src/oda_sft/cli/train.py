"""`oda-sft train`: one run of the recipe."""

from __future__ import annotations

import shlex
from dataclasses import replace
from typing import TYPE_CHECKING, Annotated

import typer

from oda_sft.cli.options import RunOptions, takes_run_options
from oda_sft.errors import OdaSftError
from oda_sft.util.console import say

# The work is imported inside the command: `--help` and the other commands stay light.
if TYPE_CHECKING:
    from oda_sft.train.plan import TrainPlan
    from oda_sft.train.request import TrainRequest


def render_dry_run(plan: TrainPlan) -> str:
    """The config as YAML, followed by the command and environment as comments: still valid YAML."""
    from oda_sft.train import launcher
    from oda_sft.train.render import dump_yaml
    from oda_sft.train.run import launch_config_path

    config_path = launch_config_path(plan)  # node rank > 0 launches from its own file
    argv, env = launcher.build_command(
        config_path,
        plan.request.launch,
        plan.gpu_count,
        deepspeed=bool(plan.config.get("deepspeed")),
        patches=launcher.patches_for(plan.request.resumable, plan.request.recipe),
    )
    lines = [dump_yaml(plan.config).rstrip(), "", f"# config file: {config_path}"]
    lines.append(f"# command: {shlex.join(argv)}")
    for key, value in launcher.shown_env(env).items():
        lines.append(f"# env: {key}={value if key in ('PATH', 'PYTHONPATH') else shlex.quote(value)}")
    return "\n".join(lines)


def dry_run_checks(plan: TrainPlan, allow_no_gpu: bool) -> None:
    """What the real run would refuse before launching: raised (exit code and all) after the config is
    shown. Warnings only for a node without a GPU (a dry run is how a login node shows a config) and for
    a catalog dataset not registered yet (the plan's notes already say it must be)."""
    from oda_sft.datasets_catalog.advice import fetchable
    from oda_sft.runs import lock
    from oda_sft.train.run import check_devices, check_launchable

    try:
        check_devices(plan, allow_no_gpu)
    except OdaSftError as exc:
        say(f"warning: a real run on this node would stop: {exc}")
    holder = lock.probe(plan.output_dir, plan.request.launch.node_rank)
    if holder is not None:
        say(f"warning: {holder.busy_line(plan.output_dir)}")
    if plan.dataset.registered or not fetchable(plan.dataset.name):  # else the plan's notes say it must be
        check_launchable(plan)


def train_request(dataset: str, run: RunOptions, seed: int) -> TrainRequest:
    """The run `train` makes of its arguments (`oda-sft slurm` and `preflight` plan it too)."""
    return replace(run.request, dataset=dataset, seed=seed)


@takes_run_options
def train(
    dataset: Annotated[str, typer.Option("--dataset", "-d", help="Dataset name (catalog or dataset_info.json).")],
    run: RunOptions,
    seed: Annotated[int, typer.Option(help="Training seed.")] = 42,
) -> None:
    """Train one dataset with the ODA recipe."""
    from oda_sft.data.registry.fetch import fetch_missing
    from oda_sft.train.plan import plan_train
    from oda_sft.train.run import prepare_launch, start_run

    request = train_request(dataset, run, seed)
    if run.fetch:
        fetch_missing([dataset], request.dataset_dir, dry_run=run.dry_run)
    plan = plan_train(request)
    if not run.dry_run:
        plan = prepare_launch(plan, run.allow_no_gpu)  # its notes then name the mode it trains in
    for note in plan.notes:
        say(note)
    if run.dry_run:
        typer.echo(render_dry_run(plan))
        dry_run_checks(plan, run.allow_no_gpu)
        return
    result = start_run(plan, force=run.force, tokenized_cache_on=run.tokenized_cache, allow_no_gpu=run.allow_no_gpu)
    if result.exit_code:
        raise typer.Exit(result.exit_code)
