"""Options shared by several commands, defined once; and the app factory every (sub-)app uses."""

from __future__ import annotations

import dataclasses
import functools
import inspect
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, TypeVar, cast

import click
import typer
from typer.core import TyperCommand, TyperGroup

from oda_sft.cli.help_format import HelpContext, restore_argument_help, summaries
from oda_sft.eras import CURRENT, RecipeEra
from oda_sft.eras import HELP as ERA_HELP
from oda_sft.presets import preset_help
from oda_sft.train.request import LaunchOptions, Profile, RequestedMode, Tracker, TrainRequest
from oda_sft.util.console import set_verbose
from oda_sft.util.paths import default_dataset_dir

LAUNCH = "Launch (LLaMA-Factory's torchrun launcher)"
RUNS = "Checkpoints and caching"


S = TypeVar("S")


def spec_from(cls: type[S], ctx: typer.Context, **given: Any) -> S:
    """The dataclass `cls` from the command's options of the same names, plus `given`: the fields the
    command computes (renamed, split or parsed). A field with neither keeps its default.

    Only for plain values: Typer hands converted enums and lists to the command, not to ctx.params.
    """
    names = {f.name for f in dataclasses.fields(cast(Any, cls))}
    if unknown := sorted(set(given) - names):
        raise TypeError(f"{cls.__name__} has no field {', '.join(unknown)}")
    same = {name: value for name, value in ctx.params.items() if name in names and name not in given}
    return cls(**same, **given)


def optional(*names: str, help: str, **more: Any) -> Any:
    """An option with no default worth showing (None, or one its help text names): Typer shows none."""
    return typer.Option(*names, help=help, show_default=False, **more)


DatasetDirOpt = Annotated[
    Path,
    optional(
        "--dataset-dir",
        help="Directory holding dataset_info.json [default: $ODA_SFT_DATASET_DIR, else "
        "$XDG_DATA_HOME/oda-sft/datasets, else ~/.local/share/oda-sft/datasets]",
        default_factory=default_dataset_dir,
    ),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON for scripts instead of a table.")]
ModelOpt = Annotated[str, typer.Option("--model", "-m", help=preset_help())]
RecipeOpt = Annotated[RecipeEra, typer.Option("--recipe", help=ERA_HELP)]


@dataclass(frozen=True)
class RunOptions:
    """What train and sweep share: the request (without dataset and seed) and how to carry it out."""

    request: TrainRequest
    force: bool
    dry_run: bool
    tokenized_cache: bool
    fetch: bool = False  # fetch and convert unregistered catalog datasets first (once, before anything starts)
    allow_no_gpu: bool = False
    verbose: bool = False


VerboseOpt = Annotated[
    bool, typer.Option("--verbose", "-v", help="Show the trainer's own output as it runs, not a progress line.")
]


def _run_options(
    model: ModelOpt,
    dataset_dir: DatasetDirOpt,
    overrides: Annotated[
        list[str] | None,
        typer.Argument(help="LLaMA-Factory key=value overrides, after `--`.", show_default=False),
    ] = None,
    mode: Annotated[RequestedMode, typer.Option(help="auto decides from the catalog or the measured length.")] = "auto",
    model_path: Annotated[Path | None, optional(help="Train a local checkpoint under the preset's recipe.")] = None,
    output_root: Annotated[Path, typer.Option(help="Root of the <model>/full/sft-DATASET/seed-SEED tree.")] = Path(
        "saves"
    ),
    nproc_per_node: Annotated[
        int | None, typer.Option(help="Processes (GPUs) per node [default: all visible].", rich_help_panel=LAUNCH)
    ] = None,
    nnodes: Annotated[int, typer.Option(help="Number of nodes.", rich_help_panel=LAUNCH)] = 1,
    node_rank: Annotated[int, typer.Option(help="This node's rank, 0 to nnodes-1.", rich_help_panel=LAUNCH)] = 0,
    master_addr: Annotated[
        str | None, typer.Option(help="Rank-0 node address (needed when nnodes > 1).", rich_help_panel=LAUNCH)
    ] = None,
    master_port: Annotated[int | None, typer.Option(help="Rank-0 node port.", rich_help_panel=LAUNCH)] = None,
    force: Annotated[bool, typer.Option(help="Train again over a finished run (moved aside, never deleted).")] = False,
    dry_run: Annotated[bool, typer.Option(help="Show what would run; start nothing.")] = False,
    fetch: Annotated[
        bool,
        typer.Option(
            "--fetch",
            help="First fetch and convert each catalog dataset that is not registered yet (`oda-sft data add "
            "NAME`), once, before anything starts.",
        ),
    ] = False,
    resumable: Annotated[
        bool,
        typer.Option(
            help="Full checkpoints (optimizer state too) every --save-steps; same math.", rich_help_panel=RUNS
        ),
    ] = False,
    save_steps: Annotated[
        int | None,
        optional(help="Steps between --resumable checkpoints [default: 500].", rich_help_panel=RUNS),
    ] = None,
    tokenized_cache: Annotated[
        bool, typer.Option(help="Reuse tokenized data across seeds and runs (oda-sft's cache).", rich_help_panel=RUNS)
    ] = True,
    profile: Annotated[
        Profile, typer.Option(help="default: the recipe exactly. fast: same math, faster (docs/performance.md).")
    ] = "default",
    recipe: RecipeOpt = CURRENT,
    report_to: Annotated[
        Tracker | None,
        optional(
            help="Log to this experiment tracker, an optional package (a missing one says how to install it) "
            "[default: the trainer's]."
        ),
    ] = None,
    allow_no_gpu: Annotated[
        bool,
        typer.Option(
            help="Launch a GPU preset even where no GPU is visible (it then needs CPU-capable overrides).",
            rich_help_panel=LAUNCH,
        ),
    ] = False,
    verbose: VerboseOpt = False,
) -> RunOptions:
    request = TrainRequest(
        model=model,
        dataset="",
        mode=mode,
        model_path=model_path,
        dataset_dir=dataset_dir,
        output_root=output_root,
        launch=LaunchOptions(nproc_per_node, nnodes, node_rank, master_addr, master_port),
        overrides=list(overrides or []),
        profile=profile,
        resumable=resumable,
        save_steps=save_steps,
        recipe=recipe,
        report_to=report_to,
    )
    return RunOptions(request, force, dry_run, tokenized_cache, fetch, allow_no_gpu, verbose)


def with_run_options(given: dict[str, Any]) -> dict[str, Any]:
    """A command's arguments as Typer passes them, with the shared run options gathered into `run`."""
    shared = inspect.signature(_run_options).parameters
    own = {name: value for name, value in given.items() if name not in shared}
    return {**own, "run": _run_options(**{name: given[name] for name in shared})}


def takes_run_options(command: Callable[..., None]) -> Callable[..., None]:
    """Give a command (train, sweep) the shared run options, declared once in `_run_options`.

    Typer reads a command's options from its signature, so the wrapper's signature is the
    command's own parameters plus `_run_options`'; the command receives them as `run: RunOptions`.
    """
    shared = inspect.signature(_run_options, eval_str=True).parameters
    own = [p for name, p in inspect.signature(command, eval_str=True).parameters.items() if name != "run"]

    @functools.wraps(command)
    def wrapper(**kwargs: Any) -> None:
        given = with_run_options(kwargs)
        set_verbose(given["run"].verbose)
        command(**given)

    params = [p.replace(kind=inspect.Parameter.KEYWORD_ONLY) for p in (*own, *shared.values())]
    wrapper.__signature__ = inspect.Signature(params, return_annotation=None)  # type: ignore[attr-defined]
    wrapper.__annotations__ = {p.name: p.annotation for p in params} | {"return": None}
    return wrapper


def _unescape(formatter: click.HelpFormatter) -> None:
    # Typer escapes "[" for rich markup whenever rich is installed, even with rich_markup_mode=None,
    # so plain help would show a literal "\\[required]" and "\\[default: 42]".
    formatter.buffer[:] = [part.replace("\\[", "[") for part in formatter.buffer]


class _PlainHelp(click.Command):
    """Help pages wrapped at spaces only, every argument with its help (cli/help_format.py)."""

    context_class = HelpContext

    def format_arguments(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        pass  # Typer's format_options lists them under "Arguments"; Click >= 8.5 would list them again

    def format_help(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        restore_argument_help(self)
        super().format_help(ctx, formatter)
        _unescape(formatter)


class PlainHelpCommand(_PlainHelp, TyperCommand):
    pass


class PlainHelpGroup(_PlainHelp, TyperGroup):
    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        commands = [(name, cmd) for name in self.list_commands(ctx) if (cmd := self.get_command(ctx, name))]
        rows = summaries(commands)
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)


class _App(typer.Typer):
    def command(self, *args: Any, **kwargs: Any) -> Any:
        kwargs.setdefault("cls", PlainHelpCommand)
        return super().command(*args, **kwargs)


def new_app(name: str, help: str, **settings: Any) -> typer.Typer:
    """A Typer app or sub-app with oda-sft's settings: plain help text, errors handled by oda-sft."""
    defaults: dict[str, Any] = {
        "no_args_is_help": True,
        "add_completion": False,
        "pretty_exceptions_enable": False,
        "rich_markup_mode": None,
        "cls": PlainHelpGroup,
    }
    return _App(name=name, help=help, **{**defaults, **settings})
