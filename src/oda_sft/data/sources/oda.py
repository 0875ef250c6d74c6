"""Fetching from ODA's normalised release (datasets_catalog/oda_release.py): `oda-sft data add oda:<subset>` and
`oda-sft data add <catalog name> --from oda`.

A subset is fetched like a catalog dataset (registry/fetch.py: the revision resolved to a commit and recorded, files
hashed against the Hub's list), converted instruction -> instruction, output -> output (the release has no
system, input or history), and, with --keep-scores, its Q_scores/QA_scores structs are kept in each record as
metadata columns, which LLaMA-Factory's alpaca converter drops when it loads the file.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

from oda_sft.datasets_catalog import DATASETS, CatalogDataset, Conversion, Evidence
from oda_sft.datasets_catalog.oda_release import COLUMNS, LISTED_FROM, PREFIX, REPO, SUBSETS, OdaSubset
from oda_sft.errors import DatasetError, UsageError
from oda_sft.names import check_name, suggest


def subset_for(name: str, from_oda: bool) -> str:
    """The subset `data add NAME` fetches from ODA's release; "" when NAME is fetched from upstream."""
    if name.startswith(PREFIX):
        subset = name[len(PREFIX) :]
        if not subset:
            raise UsageError(f"give the subset after {PREFIX}: e.g. `oda-sft data add {PREFIX}OpenHermes-shuffle`")
        check_name("ODA subset", subset)
        return subset
    if not from_oda:
        return ""
    dataset = DATASETS.get(name)
    if dataset is None:
        raise UsageError(
            f"--from oda applies to catalog datasets; {name} is not one: fetch any subset of ODA's release with "
            f"`oda-sft data add {PREFIX}SUBSET` (`oda-sft list-datasets --all` lists them)"
        )
    if not dataset.oda_subset:
        mapped = ", ".join(n for n, d in DATASETS.items() if d.oda_subset)
        raise UsageError(
            f"{name} has no known subset in ODA's release ({REPO}), so drop --from oda: its upstream files are "
            f"converted as the catalog declares (docs/data.md); --from oda applies to {mapped}"
        )
    return dataset.oda_subset


def registered_name(name: str) -> str:
    """`oda:X` registers as oda-X (a valid dataset name, never a catalog one); a catalog name stays as it is."""
    return "oda-" + name[len(PREFIX) :] if name.startswith(PREFIX) else name


def dataset(name: str, subset: str) -> CatalogDataset:
    """The fetch's view of a subset: files `<subset>/train-*.parquet` of REPO, converted as the release is."""
    known = SUBSETS.get(subset) or OdaSubset(subset, evidence=f"not in the known list ({LISTED_FROM})")
    catalog = DATASETS.get(known.catalog) if known.catalog else None
    rows, source = known.rows, known.evidence
    if catalog is not None and catalog.evidence is not None:  # what ODA trained, not what the release holds
        rows, source = catalog.evidence.oda_rows, catalog.evidence.oda_source
    why = f"the rows ODA published as {subset}" + (f"; {known.note}" if known.note else "")
    conversion = Conversion(files=(known.files,), prompt=COLUMNS[0], response=COLUMNS[1], why=why)
    evidence = Evidence(
        read_from=(known.evidence,),
        at=LISTED_FROM,
        columns=("instruction", "output", "Q_scores", "QA_scores"),
        files=(known.files,),
        oda_rows=rows,
        oda_source=source or "record count not published",
    )
    mode = catalog.mode if catalog is not None else "standard"
    return CatalogDataset(name, "OpenDataArena", REPO, mode=mode, conversion=conversion, evidence=evidence)


def check_listed(subset: str, files: Iterable[str], where: str) -> None:
    """A subset must have files at the resolved commit; else one line with the close names."""
    folders = {path.split("/", 1)[0] for path in files if "/" in path}
    if subset in folders:
        return
    hint = suggest(subset, folders | set(SUBSETS))
    raise DatasetError(
        f"{REPO} at {where} has no subset {subset!r}{hint}: `oda-sft list-datasets --all` lists the known ones; "
        "pin a revision that has it with --revision"
    )


def plain(value: Any) -> Any:
    """A score as JSON takes it: NaN and infinities (not JSON) become null."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [plain(v) for v in value]
    return value
