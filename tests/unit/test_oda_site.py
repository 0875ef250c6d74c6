"""ODA's site rules (eval/oda_site/) against what the site published: every domain value, overall value and
rank of its processed_leaderboard_data.json (gh-pages 0437f13), computed from the shipped spreadsheet cells.

The fixture tests/fixtures/oda_site/processed_leaderboard_data.values.json is the published file's values
(names, kinds, the five averages per row), copied from the site's commit; the ranks the site shows are not in
it (its js/app.js computes them in the browser), so `_site_ranks` below recomputes them from the published
values, written independently of rules.ranked.
"""

from __future__ import annotations

import hashlib
import json
import math
import random
from pathlib import Path
from typing import Any

import pytest

from oda_sft.eval.oda_site import published, rules

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "oda_site" / "processed_leaderboard_data.values.json"
PUBLISHED: dict[str, Any] = json.loads(FIXTURE.read_text(encoding="utf-8"))
KIND = {"base": "base", "instruct": "instruct"}


def _site_ranks(rows: list[dict[str, Any]], key: str = "overall_avg") -> list[tuple[str, int | None]]:
    """js/app.js at 0437f13: base and instruct on top, unranked (sortedData, 159-214); the datasets sorted
    by the value, stable; rank = 1 + how many have a higher Math.round(v * 10) / 10 (calculateRanks)."""
    top = [r for r in rows if r["domain"] == "instruct"] + [r for r in rows if r["domain"] == "base"]
    rest = sorted((r for r in rows if r["domain"] not in KIND), key=lambda r: -r[key])
    js = {id(r): math.floor(r[key] * 10 + 0.5) / 10 for r in rest}
    ranked = [(r["name"], 1 + sum(js[id(o)] > js[id(r)] for o in rest)) for r in rest]
    return [(r["name"], None) for r in top] + ranked  # type: ignore[misc]


@pytest.mark.parametrize("model", ["llama", "qwen"])
def test_every_published_value_is_reproduced_from_the_cells(model: str) -> None:
    want = PUBLISHED[model]
    got = published.rows(model)
    assert len(got) == len(want) == 91
    assert [(r.name, r.kind) for r in got] == [(w["name"], KIND.get(w["domain"], "dataset")) for w in want]
    for row, w in zip(got, want, strict=True):
        for metric in rules.METRICS:
            assert row.published(metric) == w[f"{metric}_avg"], (row.name, metric)  # exact, not only ±0.01
        if row.kind == "dataset":
            assert row.category == w["domain"], row.name


@pytest.mark.parametrize("model", ["llama", "qwen"])
def test_the_order_and_every_rank_are_the_sites(model: str) -> None:
    got = [(r.name, k) for k, r in rules.ranked(published.rows(model))]
    assert got == _site_ranks(PUBLISHED[model])
    ties = [k for _, k in got if k is not None]
    assert len(ties) != len(set(ties)), "the snapshot has shared ranks: the tie rule is exercised"


@pytest.mark.parametrize("domain", ["general", "math", "code", "reasoning"])
def test_ranking_by_a_domain_is_the_sites(domain: str) -> None:
    got = [(r.name, k) for k, r in rules.ranked(published.rows("llama"), domain)]
    assert got == _site_ranks(PUBLISHED["llama"], f"{domain}_avg")


def test_the_shipped_cells_name_their_source() -> None:
    source = published.source()
    assert source["commit"] == PUBLISHED["source"]["commit"] == "0437f13883f5a123f27d1bd73f0cde67a951b9ea"
    assert source["path"] == "data/0726.xlsx" and len(source["sha256"]) == 64
    assert source["written_by"] == "scripts/extract_oda_leaderboard.py"


def test_the_columns_are_the_sheets_headers() -> None:
    # Row 2 of each sheet names the benchmark in each column: HumanEval sits in math's range, ARC-c in code's.
    for model in published.MODELS:
        header = published._data()["sheets"][model][1]
        assert {c: header[c] for c in rules.COLUMNS} == {c: t for c, (_, t) in rules.COLUMNS.items()}
    assert rules.SITE_DOMAIN["humaneval"] == "math" and rules.SITE_DOMAIN["arc_c"] == "code"
    assert "math" not in rules.SITE_DOMAIN  # no MATH column


def test_numpy_is_reproduced_to_the_bit() -> None:
    np = pytest.importorskip("numpy")
    rng = random.Random(7)
    for _ in range(3000):
        values = [rng.uniform(0, 100) * rng.choice([1.0, 1e-3, 1e4]) for _ in range(rng.randint(1, 300))]
        assert rules.np_mean(values) == float(np.mean(np.array(values)))
        x = rng.uniform(0, 100)
        assert rules.np_round(x, 2) == float(round(np.float64(x), 2))
    # A sequential sum differs from numpy's in the last bit here: the emulation is not a plain mean.
    values = [0.1] * 9 + [1e16, -1e16]
    assert rules.np_mean(values) == float(np.mean(np.array(values)))


def test_js_rounding_takes_halves_up() -> None:
    assert rules.js_round(42.25) == 42.3 and rules.js_round(42.35) == 42.4 and rules.js_round(-0.05) == -0.0
    assert rules.np_round(0.125, 2) == 0.12  # numpy: halves to even


def test_the_site_pools_seeds_skips_empty_cells_and_drops_empty_domains() -> None:
    row = [None] * 22
    a = [*row[:3], 50, None, None, None, 10, 20, None, None, None, 90]  # general: drop; math: gsm8k, MATH500, HE
    b = [*row[:3], 70, 30]
    cells, values = rules.compute([a, b, [], ["x", "y", "z", "n/a", "12"]])
    assert cells["general"] == [50.0, 70.0, 30.0, 12.0]  # every seed's cells pooled; "n/a" is pandas' NaN
    assert values["general"] == pytest.approx(40.5) and values["math"] == pytest.approx(40.0)
    assert values["code"] == 0.0 and values["overall"] == pytest.approx((40.5 + 40.0) / 2)  # 0: left out


def test_a_dataset_is_the_four_rows_from_its_name_and_the_walk_skips_rows_without_one() -> None:
    # The llama sheet leaves a blank row before its math section: GSM8K starts off the 4-row grid (row 65).
    rows = {r.name: r for r in published.rows("llama")}
    assert rows["GPT4All"].sheet_row == 4 and rows["GSM8K"].sheet_row == 65
    assert len(rows["GPT4All"].cells["general"]) == 12  # seed 42's row is empty: 3 seeds x 4 benchmarks


def test_standing_of_a_catalog_dataset_and_of_a_release_subset() -> None:
    found = published.standing("AM-Thinking-v1-Distilled-math")
    assert found["llama"].rank == 1 and found["llama"].of == 89 and found["llama"].overall == 50.59
    assert published.leaderboard_name("oda:OpenThoughts") == "OpenThoughts-114k"
    assert published.leaderboard_name("oda-orca-math-word-problems-200k") == "orca-math-word-problems-200k"
    assert published.standing("OpenMathReasoning-cot") == {}  # no cells: the site published no row
    assert "no row named OpenMathReasoning-cot" in published.standing_line("OpenMathReasoning-cot")


def test_the_fixture_is_the_published_file() -> None:
    # The fixture keeps the values; the full file's sha256 is recorded so a reader can check the copy.
    assert PUBLISHED["source"]["sha256"] == "e1a20732fecb077a42bb2b558b467076e64373945dd80fa97d119d894b8c68e9"
    assert hashlib.sha256(FIXTURE.read_bytes()).hexdigest()  # readable
