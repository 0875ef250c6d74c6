"""`oda-sft train`: one run of the recipe."""

from __future__ import annotations

import shlex
from dataclasses import replace
from typing import Annotated

import typer

from oda_sft.cli.options import RunOptions, takes_run_options
from oda_sft.cli.workload import captured
from oda_sft.train import launcher
from oda_sft.train.plan import TrainPlan, plan_train, settle_mode
from oda_sft.train.render import dump_yaml
from oda_sft.train.run import start_run
from oda_sft.util.console import say


def render_dry_run(plan: TrainPlan) -> str:
    """The config as YAML, followed by the command and environment as comments: still valid YAML."""
    argv, env = launcher.build_command(
        plan.config_path,
        plan.request.launch,
        plan.gpu_count,
        deepspeed=bool(plan.config.get("deepspeed")),
        patches=launcher.patches_for(plan.request.resumable),
    )
    lines = [dump_yaml(plan.config).rstrip(), "", f"# config file: {plan.config_path}"]
    lines.append(f"# command: {shlex.join(argv)}")
    for key, value in launcher.shown_env(env).items():
        lines.append(f"# env: {key}={value if key in ('PATH', 'PYTHONPATH') else shlex.quote(value)}")
    return "\n".join(lines)


@takes_run_options
def train(
    ctx: typer.Context,
    dataset: Annotated[str, typer.Option("--dataset", "-d", help="Dataset name (catalog or dataset_info.json).")],
    run: RunOptions,
    seed: Annotated[int, typer.Option(help="Training seed.")] = 42,
) -> None:
    """Train one dataset with the ODA recipe."""
    request = replace(run.request, dataset=dataset, seed=seed)
    if captured(ctx, run, [request]):
        return
    plan = plan_train(request)
    if not run.dry_run:
        plan = settle_mode(plan)
    for note in plan.notes:
        say(note)
    if run.dry_run:
        typer.echo(render_dry_run(plan))
        return
    result = start_run(plan, force=run.force, tokenized_cache_on=run.tokenized_cache)
    if result.exit_code:
        raise typer.Exit(result.exit_code)
