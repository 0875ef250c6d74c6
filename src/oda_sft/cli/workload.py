"""The `-- train ...` / `-- sweep ...` part of `oda-sft slurm` and `oda-sft preflight`.

It is parsed by the subcommand's own parser, so the cluster script can only hold arguments the
subcommand accepts, and a mistake shows up here instead of on every node after the job started.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click
import typer
from click.core import ParameterSource

from oda_sft.errors import UsageError, one_line
from oda_sft.launch import LaunchOptions
from oda_sft.slurm import SUBCOMMANDS
from oda_sft.train_plan import TrainPlan, TrainRequest, plan_train

# What a subcommand must accept for the script to run it on several nodes.
_MULTINODE_PARAMS = ("nnodes", "node_rank", "master_addr", "master_port", "nproc_per_node")


@dataclass(frozen=True)
class Workload:
    subcommand: str
    args: tuple[str, ...]
    params: dict[str, Any]
    given: frozenset[str]  # params set on the command line rather than by default

    def path(self, name: str) -> Path | None:
        value = self.params.get(name)
        return Path(value).expanduser() if value not in (None, "") else None


def parse_workload(ctx: typer.Context, argv: list[str] | None, what: str) -> Workload:
    """Parse `<train|sweep> args...` with that command's own parser; nothing runs."""
    if not argv:
        raise UsageError(f"{what} needs the command to run after `--`, e.g. `-- train --model llama --dataset NAME`")
    sub, args = argv[0], argv[1:]
    if sub not in SUBCOMMANDS:
        raise UsageError(f"unknown subcommand {sub!r} after `--`: {what} runs {' or '.join(SUBCOMMANDS)}")
    group_ctx = ctx.parent
    group = group_ctx.command if group_ctx is not None else None
    command = group.get_command(group_ctx, sub) if isinstance(group, click.Group) and group_ctx else None
    if command is None:
        raise UsageError(f"this oda-sft has no `{sub}` command: update oda-sft, or run `train`")
    missing = [p for p in _MULTINODE_PARAMS if p not in {param.name for param in command.params}]
    if missing:
        flags = ", ".join("--" + p.replace("_", "-") for p in missing)
        raise UsageError(f"`oda-sft {sub}` has no {flags}: it cannot run on a cluster yet")
    try:
        sub_ctx = command.make_context(sub, list(args), parent=group_ctx)
    except click.exceptions.Exit:
        raise UsageError(f"`{sub} --help` is not a run: give the {sub} arguments themselves") from None
    except click.exceptions.ClickException as exc:
        raise UsageError(f"{sub} arguments after `--`: {one_line(exc.format_message())}") from None
    given = frozenset(
        name for name in sub_ctx.params if sub_ctx.get_parameter_source(name) is ParameterSource.COMMANDLINE
    )
    return Workload(sub, tuple(args), dict(sub_ctx.params), given)


def train_request(workload: Workload, launch: LaunchOptions | None = None) -> TrainRequest:
    """The TrainRequest `oda-sft train` builds from the same arguments."""
    # Every train option named like a TrainRequest field maps onto it, so options added to both
    # (profiles, resumable runs, ...) reach the plan without a change here.
    fields = {f.name for f in dataclasses.fields(TrainRequest)}
    kwargs: dict[str, Any] = {k: v for k, v in workload.params.items() if k in fields}
    kwargs.update(
        model_path=workload.path("model_path"),
        dataset_dir=Path(workload.params["dataset_dir"]),
        output_root=Path(workload.params["output_root"]),
        launch=launch or LaunchOptions(),
        overrides=list(workload.params.get("overrides") or []),
    )
    return TrainRequest(**kwargs)


def plan_workload(workload: Workload) -> TrainPlan | None:
    """The train plan (validates everything `train` would), or None for a sweep."""
    if workload.subcommand != "train":
        return None
    return plan_train(train_request(workload))


def output_root(workload: Workload) -> Path:
    return (workload.path("output_root") or Path("saves")).resolve()
