"""Length analyses of registered datasets: measure one, and store it in its dataset_info.json entry.

An analysis is stored under the entry's oda_sft.analyses, keyed by tokenizer, with the sha256 of
the content it measured and the rule it decided under. That is the one place a decision lives:
`train --mode auto`, `data inspect`, `list-datasets`, Slurm and preflight all read it from there.
"""

from __future__ import annotations

from pathlib import Path

from oda_sft.data import files
from oda_sft.data.formats import alpaca
from oda_sft.data.measure.length_rule import Rule
from oda_sft.data.measure.lengths import LengthReport, Progress, measure_file
from oda_sft.data.measure.token_counter import LengthCounter
from oda_sft.data.registry import info_file
from oda_sft.data.registry.dataset_dir import ANALYSES_KEY, META_KEY, ResolvedDataset
from oda_sft.data.registry.info_file import RegistryFile
from oda_sft.datasets_catalog.advice import add_command
from oda_sft.errors import DatasetError
from oda_sft.util.clock import utc_now


def _dir(dataset: ResolvedDataset) -> Path | None:
    """The --dataset-dir a printed command needs: none for the demo shipped in the package."""
    return None if dataset.builtin else dataset.dir


def _add(dataset: ResolvedDataset, *extra: str) -> str:
    """`oda-sft data add NAME ...`: a catalog dataset or ODA subset is fetched by name; any other needs its SOURCE."""
    return add_command(dataset.name, _dir(dataset), *extra)


def _add_again(dataset: ResolvedDataset) -> str:
    return _add(dataset, "--force")


def data_file(dataset: ResolvedDataset) -> Path:
    """The local file to measure, or a one-line error saying why there is none."""
    if not dataset.registered:
        raise DatasetError(
            f"dataset {dataset.name!r} is not registered in {dataset.info_path}: register it with `{_add(dataset)}`"
        )
    if dataset.file is None:
        raise DatasetError(
            f"dataset {dataset.name!r} has no local file_name in {dataset.info_path} (hub entries are not measured): "
            f"register a local copy with `{_add_again(dataset)}`"
        )
    kind = files.describe(dataset.file)
    if kind == "a directory":
        raise DatasetError(
            f"{dataset.file}, the data of {dataset.name!r}, is a directory (LLaMA-Factory reads every file in it); "
            f"oda-sft measures one file: pass --mode standard or --mode long, or register one file with "
            f"`{_add_again(dataset)}`"
        )
    if kind is not None:
        raise DatasetError(
            f"{dataset.file}, the data file of {dataset.name!r}, is {kind}: restore it, or re-register it"
        )
    return dataset.file


def measure(
    dataset: ResolvedDataset,
    counter: LengthCounter,
    rule: Rule,
    *,
    exact: bool = False,
    shown: int = alpaca.DEFAULT_SHOWN,
    progress: Progress | None = None,
) -> LengthReport:
    path = data_file(dataset)
    return measure_file(
        path,
        counter,
        rule,
        dataset.columns(),
        exact=exact,
        label=f"dataset {dataset.name} ({path})",
        fix=f"fix these records, or re-register the data with `{_add_again(dataset)}`",
        shown=shown,
        progress=progress,
    )


def store(dataset: ResolvedDataset, report: LengthReport) -> None:
    """Keep the analysis in the entry, keyed by tokenizer; every other byte of the file stays."""
    registry = RegistryFile(dataset.dir)
    with registry.locked():
        text, info = registry.load()
        entry = info.get(dataset.name)
        if not isinstance(entry, dict):
            raise DatasetError(f"dataset {dataset.name!r} disappeared from {dataset.info_path} while it was measured")
        meta = dict(entry.get(META_KEY) or {})
        # An older oda-sft kept a second copy of the decision here; the analyses are the one record now.
        for stale in ("decided_by", "mode", "reason") if "decided_by" in meta else ():
            meta.pop(stale, None)
        analyses = dict(meta.get(ANALYSES_KEY) or {})
        analyses[report.tokenizer] = report.cache_record(utc_now())
        meta[ANALYSES_KEY] = analyses
        registry.write_text(info_file.with_meta(registry.path, text, dataset.name, META_KEY, meta))
