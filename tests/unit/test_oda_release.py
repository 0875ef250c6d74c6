"""The known subsets of ODA's normalised release (datasets_catalog/oda_release.py): valid names, mappings onto
catalog datasets that exist, and docs/data.md's mapping table in step with the code."""

from __future__ import annotations

from oda_sft.datasets_catalog import DATASETS
from oda_sft.datasets_catalog.oda_release import BY_CATALOG, SUBSETS
from oda_sft.names import check_name

from conftest import REPO


def test_every_subset_registers_under_a_valid_name_and_maps_onto_a_catalog_dataset() -> None:
    assert len(SUBSETS) == 55, "the 56 site keys less missing_data"
    for subset in SUBSETS.values():
        check_name("dataset", subset.registered_as)
        assert subset.evidence, f"{subset.name}: no evidence"
    assert set(BY_CATALOG) <= set(DATASETS)
    assert {n for n, d in DATASETS.items() if d.oda_subset} == set(BY_CATALOG)


def test_docs_map_every_catalog_dataset_as_the_code_does() -> None:
    text = (REPO / "docs" / "data.md").read_text(encoding="utf-8")
    table = text.split("### ODA's own rows", 1)[1].split("\n## ", 1)[0]
    for name, d in DATASETS.items():
        row = next((line for line in table.splitlines() if line.startswith(f"| {name} |")), "")
        if d.oda_subset:
            assert row.startswith(f"| {name} | {d.oda_subset} |"), f"{name}: docs/data.md maps it otherwise"
        else:
            assert not row and name in table.split("Not mapped:", 1)[1], f"{name}: not listed as unmapped"
