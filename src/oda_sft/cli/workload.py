"""The `-- train ...` / `-- sweep ...` (and `-- eval ...`) part of `oda-sft slurm` and `oda-sft preflight`.

It is parsed by running the real command with a `Capture` as its context object: train and sweep
hand over the requests they would run and return; eval hands over its arguments as it read them.
So the cluster script can only hold arguments the subcommand accepts, and a mistake shows up here
instead of on every node after the job started.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import typer

from oda_sft.cli.options import RunOptions
from oda_sft.cluster.slurm import EVAL, SUBCOMMANDS
from oda_sft.errors import UsageError
from oda_sft.train.request import TrainRequest

if TYPE_CHECKING:  # the eval job's module is imported when a job is made, not by --help
    from oda_sft.cluster.evaljob import EvalArgs


@dataclass
class Capture:
    """The context object under which train and sweep record what they would run, and return."""

    run: RunOptions | None = None
    requests: list[TrainRequest] = field(default_factory=list)
    eval: EvalArgs | None = None


def captured(ctx: typer.Context, run: RunOptions, requests: list[TrainRequest]) -> bool:
    """True (and the requests recorded) when this command only parses for `slurm` or `preflight`."""
    if not isinstance(ctx.obj, Capture):
        return False
    ctx.obj.run, ctx.obj.requests = run, requests
    return True


def captured_eval(ctx: typer.Context, args: EvalArgs) -> bool:
    """True (and the arguments recorded) when `eval` only parses for `oda-sft slurm`."""
    if not isinstance(ctx.obj, Capture):
        return False
    ctx.obj.eval = args
    return True


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
    capture = _capture(sub, args)
    if capture.run is None:
        raise UsageError(f"`{sub} --help` is not a run: give the {sub} arguments themselves after `--`")
    return Workload(sub, tuple(args), capture.run, capture.requests)


def parse_eval(args: list[str]) -> EvalArgs:
    """Parse `eval` arguments with eval's own parser (and its first refusals); nothing runs."""
    capture = _capture(EVAL, args)
    if capture.eval is None:
        raise UsageError("`eval --help` is not an eval: give the eval arguments themselves after `--`")
    return capture.eval


def _capture(sub: str, args: list[str]) -> Capture:
    from oda_sft.cli import main  # the app registers this module's users: import it when called

    capture = Capture()
    code = main([sub, *args], obj=capture)  # a parse error is printed there, as for any command
    if code != 0:
        raise typer.Exit(code)
    return capture
