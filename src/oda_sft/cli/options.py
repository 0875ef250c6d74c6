"""Options shared by several commands, defined once."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from oda_sft.paths import default_dataset_dir

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
