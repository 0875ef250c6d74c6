"""Options shared by several commands, defined once."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from oda_sft.launch import LaunchOptions
from oda_sft.modes import RequestedMode
from oda_sft.paths import default_dataset_dir
from oda_sft.profiles import Profile

LAUNCH = "Launch (LLaMA-Factory's torchrun launcher)"
RUNS = "Checkpoints and caching"

DatasetDirOpt = Annotated[
    Path,
    typer.Option(
        "--dataset-dir",
        help="Directory holding dataset_info.json [default: $ODA_SFT_DATASET_DIR, else the project's data/]",
        show_default=False,
        default_factory=default_dataset_dir,
    ),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON for scripts instead of a table.")]

ModelOpt = Annotated[str, typer.Option("--model", "-m", help="Preset: llama, qwen, qwen3 or tiny.")]
OverridesArg = Annotated[
    list[str] | None, typer.Argument(help="LLaMA-Factory key=value overrides, after `--`.", show_default=False)
]
ModeOpt = Annotated[RequestedMode, typer.Option(help="auto decides from the catalog or the recorded length.")]
ModelPathOpt = Annotated[
    Path | None, typer.Option(help="Train a local checkpoint under the preset's recipe.", show_default=False)
]
OutputRootOpt = Annotated[Path, typer.Option(help="Root of the <model>/full/sft-DATASET/seed-SEED tree.")]
ForceOpt = Annotated[bool, typer.Option(help="Train again over a finished run (moved aside, never deleted).")]
DryRunOpt = Annotated[bool, typer.Option(help="Show what would run; start nothing.")]
ProfileOpt = Annotated[
    Profile, typer.Option(help="default: the recipe exactly. fast: same math, faster (docs/performance.md).")
]

NprocOpt = Annotated[
    int | None, typer.Option(help="Processes (GPUs) per node [default: all visible].", rich_help_panel=LAUNCH)
]
NnodesOpt = Annotated[int, typer.Option(help="Number of nodes.", rich_help_panel=LAUNCH)]
NodeRankOpt = Annotated[int, typer.Option(help="This node's rank, 0 to nnodes-1.", rich_help_panel=LAUNCH)]
MasterAddrOpt = Annotated[
    str | None, typer.Option(help="Rank-0 node address (needed when nnodes > 1).", rich_help_panel=LAUNCH)
]
MasterPortOpt = Annotated[int | None, typer.Option(help="Rank-0 node port.", rich_help_panel=LAUNCH)]

ResumableOpt = Annotated[
    bool,
    typer.Option(help="Full checkpoints (optimizer state too) every --save-steps; same math.", rich_help_panel=RUNS),
]
SaveStepsOpt = Annotated[
    int | None,
    typer.Option(
        help="Steps between --resumable checkpoints [default: 500].", show_default=False, rich_help_panel=RUNS
    ),
]
TokenizedCacheOpt = Annotated[
    bool, typer.Option(help="Reuse tokenized data across seeds and runs (oda-sft's cache).", rich_help_panel=RUNS)
]


def new_app(name: str, help: str, **settings: Any) -> typer.Typer:
    """A Typer app or sub-app with oda-sft's settings: plain help text, errors handled by oda-sft."""
    defaults: dict[str, Any] = {
        "no_args_is_help": True,
        "add_completion": False,
        "pretty_exceptions_enable": False,
        "rich_markup_mode": None,
    }
    return typer.Typer(name=name, help=help, **{**defaults, **settings})


def launch_options(
    nproc_per_node: int | None, nnodes: int, node_rank: int, master_addr: str | None, master_port: int | None
) -> LaunchOptions:
    return LaunchOptions(nproc_per_node, nnodes, node_rank, master_addr, master_port)
