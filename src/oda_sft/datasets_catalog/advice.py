"""The `oda-sft data add` a user needs to register a dataset by name: every message that advises it builds it here."""

from __future__ import annotations

from pathlib import Path

from oda_sft.datasets_catalog.oda_release import PREFIX, SUBSETS, subset_of
from oda_sft.datasets_catalog.records import DATASETS
from oda_sft.errors import UsageError
from oda_sft.names import check_name
from oda_sft.util.paths import data_command


def oda_subset(name: str) -> str:
    """X for a name `data add oda:X` registers (oda-X, X a known or valid subset name); "" for any other name."""
    subset = subset_of(name)
    if not subset or name in DATASETS:
        return ""
    if subset not in SUBSETS:
        try:
            check_name("ODA subset", subset)  # the Hub may still list it (data add checks)
        except UsageError:
            return ""
    return subset


def add_args(name: str) -> tuple[str, ...]:
    """What follows `oda-sft data add` to register NAME: a catalog name alone, oda-X as oda:X (both fetched),
    any other name with a SOURCE placeholder for the user to fill in."""
    if name in DATASETS:
        return (name,)
    subset = oda_subset(name)
    return (PREFIX + subset,) if subset else (name, "SOURCE")


def fetchable(name: str) -> bool:
    """`data add` fetches NAME by itself (no SOURCE): a catalog dataset or an ODA subset."""
    return "SOURCE" not in add_args(name)


def add_command(name: str, dataset_dir: Path | None, *extra: str) -> str:
    """`oda-sft data add ... [--dataset-dir DIR]` for NAME, quoted as a user types it (see add_args)."""
    first, *rest = add_args(name)
    return data_command("add", first, dataset_dir, *rest, *extra)
