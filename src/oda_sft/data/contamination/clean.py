"""`--write-clean NEW_NAME`: the dataset without its overlapping samples, registered beside it.

The records are streamed into a JSON Lines file next to the registry and registered through the one
add path (`data add`: converted, validated, written atomically), then the entry records where it came
from: the source dataset and its sha256, the method, and the removed sample indexes.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Iterable
from pathlib import Path

from oda_sft.data.contamination.spec import METHOD, METHOD_VERSION
from oda_sft.data.formats.alpaca import Columns
from oda_sft.data.formats.jsonstream import JsonStream
from oda_sft.data.registry import info_file
from oda_sft.data.registry.add import AddRequest, AddResult, add_dataset
from oda_sft.data.registry.dataset_dir import META_KEY, ResolvedDataset
from oda_sft.data.registry.info_file import RegistryFile
from oda_sft.data.sources.local import SourceSpec
from oda_sft.errors import DatasetError
from oda_sft.names import check_name

PROVENANCE_KEY = "decontaminated_from"


def _standard(record: object, columns: Columns) -> object:
    """The record under Alpaca's standard keys, so the copy registers without a column mapping."""
    if not isinstance(record, dict):
        return record
    out = {}
    keys = (("instruction", columns.instruction), ("input", columns.input), ("output", columns.output),
            ("system", columns.system), ("history", columns.history))  # fmt: skip
    for standard, key in keys:
        if key is not None and key in record:
            out[standard] = record[key]
    return out


def write_clean(
    dataset: ResolvedDataset,
    new_name: str,
    removed: Iterable[int],
    benchmarks: dict[str, str],
) -> AddResult:
    """Register `new_name` as `dataset` less the samples `removed`; benchmarks: name -> questions sha256."""
    check_name("dataset", new_name)
    if dataset.file is None:
        raise DatasetError(f"dataset {dataset.name!r} has no local file to copy")
    drop = sorted(set(removed))
    skip = set(drop)
    columns = dataset.columns()
    # Outside the dataset dir, so that `add` copies it in as NEW_NAME.json (inside, it would register it in place).
    with tempfile.TemporaryDirectory(prefix="oda-sft-clean-") as work:
        part = Path(work) / f"{new_name}.jsonl"
        with part.open("w", encoding="utf-8") as out:
            for record in JsonStream(dataset.file):
                if record.index not in skip:
                    out.write(json.dumps(_standard(record.value, columns), ensure_ascii=False) + "\n")
        request = AddRequest(name=new_name, dataset_dir=dataset.dir, source=SourceSpec(str(part)))
        result = add_dataset(request)
    _record_provenance(dataset, new_name, drop, benchmarks)
    return result


def _record_provenance(dataset: ResolvedDataset, new_name: str, drop: list[int], benchmarks: dict[str, str]) -> None:
    registry = RegistryFile(dataset.dir)
    with registry.locked():
        text, info = registry.load()
        entry = info.get(new_name)
        meta = dict(entry.get(META_KEY) or {}) if isinstance(entry, dict) else {}
        meta[PROVENANCE_KEY] = {
            "dataset": dataset.name,
            "sha256": dataset.sha256,
            "method": METHOD,
            "method_version": METHOD_VERSION,
            "benchmarks": benchmarks,
            "removed": drop,
        }
        registry.write_text(info_file.with_meta(registry.path, text, new_name, META_KEY, meta))
