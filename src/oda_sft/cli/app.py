"""The oda-sft app: this module only registers commands; each lives in its own module."""

from __future__ import annotations

import functools
import signal
import sys
from collections.abc import Callable
from typing import Any, TypeVar

import click
import typer
import typer.main

from oda_sft import __version__
from oda_sft.cli import data
from oda_sft.cli.bench import bench
from oda_sft.cli.estimate import estimate
from oda_sft.cli.list_datasets import list_datasets
from oda_sft.cli.options import new_app
from oda_sft.cli.preflight import preflight
from oda_sft.cli.results.eval import eval_command
from oda_sft.cli.results.eval_data import fetch as fetch_eval_data
from oda_sft.cli.results.push import push
from oda_sft.cli.results.rank import plot as plot_rank
from oda_sft.cli.results.rank import rank
from oda_sft.cli.results.runs import list_runs, plot_runs
from oda_sft.cli.results.setup_eval import setup_eval
from oda_sft.cli.slurm import slurm
from oda_sft.cli.sweep import sweep
from oda_sft.cli.train import train
from oda_sft.errors import handle_errors, one_line
from oda_sft.util import signals

F = TypeVar("F", bound=Callable[..., Any])

app = new_app("oda-sft", "Train the OpenDataArena SFT recipe with LLaMA-Factory.")


def _errors_to_exit_codes(func: F) -> F:
    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        with handle_errors():
            return func(*args, **kwargs)

    return wrapper  # type: ignore[return-value]


def _version(value: bool) -> None:
    if value:
        typer.echo(f"oda-sft {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="Show the version."),
) -> None:
    """Train the OpenDataArena SFT recipe with LLaMA-Factory."""


app.command("train")(_errors_to_exit_codes(train))
app.command("eval")(_errors_to_exit_codes(eval_command))
app.command("setup-eval")(_errors_to_exit_codes(setup_eval))
app.command("sweep")(_errors_to_exit_codes(sweep))
app.command("list-datasets")(_errors_to_exit_codes(list_datasets))
app.add_typer(data.build_app(_errors_to_exit_codes), name="data")
app.command("slurm")(_errors_to_exit_codes(slurm))
app.command("preflight")(_errors_to_exit_codes(preflight))
app.command("bench")(_errors_to_exit_codes(bench))
app.command("estimate")(_errors_to_exit_codes(estimate))
app.command("push")(_errors_to_exit_codes(push))

runs_app = new_app("runs", "The runs under an output root.", no_args_is_help=False, invoke_without_command=True)
runs_app.callback()(_errors_to_exit_codes(list_runs))
runs_app.command("plot")(_errors_to_exit_codes(plot_runs))
app.add_typer(runs_app, name="runs")

rank_app = new_app(
    "rank", "Rank the datasets by their evaluations.", no_args_is_help=False, invoke_without_command=True
)
rank_app.callback()(_errors_to_exit_codes(rank))
rank_app.command("plot")(_errors_to_exit_codes(plot_rank))
app.add_typer(rank_app, name="rank")

eval_data_app = new_app("eval-data", "The benchmark data OpenCompass reads.")
eval_data_app.command("fetch")(_errors_to_exit_codes(fetch_eval_data))
app.add_typer(eval_data_app, name="eval-data")


@functools.cache
def _command() -> click.Command:
    """The Click tree, built once per process. Typer rebuilds all of it on every call (about 50 ms
    here), which in-process callers pay again: every CLI test."""
    return typer.main.get_command(app)


def run(argv: list[str] | None = None) -> int:
    """Run one command; usage errors become one line, like every other error."""
    try:
        result = _command().main(args=argv, prog_name="oda-sft", standalone_mode=False)
    except click.exceptions.UsageError as exc:
        if type(exc).__name__ == "NoArgsIsHelpError":  # `oda-sft` or `oda-sft data` alone: show the help as is
            print(exc.format_message(), file=sys.stderr, flush=True)
            return exc.exit_code
        hint = f" (see `{exc.ctx.command_path} --help`)" if exc.ctx else ""
        print(f"error: {one_line(exc.format_message())}{hint}", file=sys.stderr, flush=True)
        return exc.exit_code
    except click.exceptions.Abort as exc:  # click turns a KeyboardInterrupt in its own code into Abort
        cause = exc.__cause__ or exc.__context__
        if isinstance(cause, signals.Interrupted):
            return signals.report(cause.signum)
        return signals.report(signals.received() or signal.SIGINT)  # a library re-raised a bare KeyboardInterrupt
    except signals.Interrupted as exc:  # a signal outside any command's error handling (while parsing)
        return signals.report(exc.signum)
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else 1
    return result if isinstance(result, int) else 0
