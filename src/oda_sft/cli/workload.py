"""The `-- train ...` / `-- sweep ...` (and `-- eval ...`) part of `oda-sft slurm` and `oda-sft preflight`.

It is parsed by that command's own parser (its options, types and defaults, built from the command
itself), and turned into requests by the function the command itself uses; nothing runs. So the
cluster script can only hold arguments the subcommand accepts, and a mistake shows up here instead of
on every node after the job started.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import click
import typer
import typer.main

from oda_sft.cli.options import RunOptions, new_app, with_run_options
from oda_sft.cli.results.eval import eval_args, eval_command
from oda_sft.cli.sweep import sweep, sweep_requests
from oda_sft.cli.train import train, train_request
from oda_sft.cluster.slurm import EVAL, SUBCOMMANDS
from oda_sft.errors import UsageError
from oda_sft.train.request import TrainRequest

if TYPE_CHECKING:  # the eval planning is imported when an eval is parsed, not by --help
    from oda_sft.eval.plans.plan import EvalArgs


@dataclass(frozen=True)
class Workload:
    subcommand: str
    args: tuple[str, ...]
    run: RunOptions
    requests: list[TrainRequest]  # train: one; sweep: one per dataset x seed


def parse_workload(argv: list[str] | None, what: str) -> Workload:
    """Parse `<train|sweep> args...` with that command's own parser; nothing runs."""
    if not argv:
        raise UsageError(f"{what} needs the command to run after `--`, e.g. `-- train --model llama --dataset NAME`")
    sub, args = argv[0], argv[1:]
    if sub not in SUBCOMMANDS:
        raise UsageError(f"unknown subcommand {sub!r} after `--`: {what} runs {' or '.join(SUBCOMMANDS)}")
    given = _arguments(train if sub == "train" else sweep, sub, args)
    if given is None:
        raise UsageError(f"`{sub} --help` is not a run: give the {sub} arguments themselves after `--`")
    given = with_run_options(given)
    requests = [train_request(**given)] if sub == "train" else sweep_requests(**given)
    return Workload(sub, tuple(args), given["run"], requests)


def parse_eval(args: list[str]) -> EvalArgs:
    """Parse `eval` arguments with eval's own parser (and its first refusals); nothing runs."""
    given = _arguments(eval_command, EVAL, args)
    if given is None:
        raise UsageError("`eval --help` is not an eval: give the eval arguments themselves after `--`")
    given.pop("verbose", None)  # how the job shows its output, not what it evaluates
    return eval_args(**given)


def _arguments(command: Callable[..., None], name: str, args: list[str]) -> dict[str, Any] | None:
    """The arguments Typer would call `command` with for `oda-sft NAME args...`; None after --help (printed).

    A parse error is a click.UsageError naming `oda-sft NAME --help`: the app prints it as for any command."""

    @functools.wraps(command)  # the command's own options: Typer reads them off its signature
    def arguments(**given: Any) -> dict[str, Any]:
        return dict(given)

    app = new_app(name, "")
    app.command(name)(arguments)
    parser = typer.main.get_command(app)  # one command: that command itself, not a group
    root = click.Context(click.Group("oda-sft"), info_name="oda-sft")
    try:
        with parser.make_context(name, list(args), parent=root) as ctx:
            given: dict[str, Any] = parser.invoke(ctx)
    except click.exceptions.Exit:  # --help: the help is printed
        return None
    return given
