"""The overlap method: planted copies of benchmark items are found, however re-cased, re-spaced or
wrapped; samples that only share a common phrase are not."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from oda_sft.data.contamination.method import Index, match_batch, normalise, sample_texts
from oda_sft.data.contamination.scan import scan
from oda_sft.data.formats.alpaca import Columns

AIME = (
    "Find the number of ordered pairs $(m,n)$ of positive integers such that $m^2n = 20^{20}$ and the sum "
    "of their digits is even."
)
GSM = "Natalia sold clips to 48 of her friends in April, and then she sold half as many clips in May."
SHORT = "What is 13 + 9?"
BENCH = {"aime": [AIME], "gsm8k": ["Janet has three ducks.", GSM], "arithmetic": [SHORT, "What is 44 - 30?"]}


def _found(*records: dict[str, object]) -> set[tuple[int, str, int]]:
    index = Index.build(BENCH)
    _n, matches = match_batch(index, 0, [sample_texts(r, Columns.full()) for r in records])
    return {(s, index.names[b], i) for s, b, i in matches}


@pytest.mark.parametrize(
    "instruction",
    [
        GSM,  # verbatim
        GSM.upper(),  # re-cased
        GSM.replace(" ", "  \n\t "),  # re-spaced
        f"Answer the following question carefully.\n\nQuestion: {GSM}\nShow your work.",  # wrapped
        GSM.replace("48", "\uff14\uff18"),  # full-width digits: NFKC makes them 48
        GSM.replace(",", " ,").replace(".", " ."),  # punctuation moved
    ],
)
def test_planted_overlap_is_found(instruction: str) -> None:
    assert _found({"instruction": instruction, "output": "72"}) == {(0, "gsm8k", 1)}


def test_overlap_in_input_history_and_system_is_found_but_not_in_the_response() -> None:
    found = _found(
        {"instruction": "Solve:", "input": AIME},
        {"instruction": "hi", "history": [[GSM, "72"]]},
        {"instruction": "x", "output": GSM},  # the response: not scanned (as open-r1 and open-instruct)
        {"system": GSM, "instruction": "x"},
    )
    assert found == {(0, "aime", 0), (1, "gsm8k", 1), (3, "gsm8k", 1)}


def test_near_misses_sharing_a_common_phrase_are_not_found() -> None:
    assert not _found(
        {"instruction": "Find the number of ordered pairs of positive integers whose product is 12."},
        {"instruction": "Natalia sold clips to 48 of her classmates in June."},  # 7 words shared, then not
        {"instruction": "and the sum of their digits is odd, find the number"},
        {"instruction": "What is 13 + 90?"},
        {"instruction": "What is 13 + 9? Then add 4."},  # a short item matches only a whole prompt
    )


def test_a_short_item_matches_an_exact_prompt_after_normalising() -> None:
    found = _found({"instruction": "  what IS 13 + 9 ?"}, {"instruction": "Compute", "input": "What is 44 - 30?"})
    assert found == {(0, "arithmetic", 0), (1, "arithmetic", 1)}


def test_normalise_keeps_operators_and_drops_separators() -> None:
    assert normalise("A+B = (C), d-e!\n").split() == [b"a+b", b"=", b"c", b"d", b"e"]
    assert normalise("Ünïcode \uff21\uff22\uff23").split() == ["ünïcode".encode(), b"abc"]


@pytest.mark.parametrize("layout", ["jsonl", "array", "pretty"])
def test_scan_numbers_samples_in_file_order(tmp_path: Path, layout: str) -> None:
    records = [{"instruction": f"filler question number {i} about nothing at all", "output": "x"} for i in range(3000)]
    for at in (0, 1234, 2999):
        records[at] = {"instruction": f"Please solve: {GSM}", "output": "72"}
    path = tmp_path / "d.json"
    if layout == "jsonl":
        path.write_text("".join(json.dumps(r) + "\n" for r in records))
    elif layout == "array":
        path.write_text("[\n" + ",\n".join(json.dumps(r) for r in records) + "\n]\n")
    else:
        path.write_text(json.dumps(records, indent=2))
    result = scan(path, Columns(), BENCH, workers=1, chunk=4096)
    assert result.count == 3000
    assert not result.parallel
    assert sorted(s for s, _b, _i in result.matches) == [0, 1234, 2999]


def test_words_across_two_items_are_not_an_n_gram_of_either() -> None:
    index = Index.build({"b": ["one two three four five six seven eight", "nine ten eleven twelve thirteen fourteen"]})
    _n, found = match_batch(index, 0, [("five six seven eight nine ten eleven twelve", [])])
    assert found == []
    _n, found = match_batch(index, 0, [("x one two three four five six seven eight y", [])])
    assert found == [(0, 0, 0)]


def test_a_stored_result_holds_for_its_file_and_method_only() -> None:
    from oda_sft.data.contamination.spec import METHOD_VERSION
    from oda_sft.data.contamination.store import describe_counts, overlap_counts

    result = {"sha256": "b" * 64, "items": 3, "samples": [1, 4], "matches": [[1, 0], [4, 2]]}
    meta = {"contamination": {"sha256": "a", "method": METHOD_VERSION, "benchmarks": {"gsm8k": result}}}
    assert overlap_counts(meta, "a") == {"gsm8k": 2}
    assert overlap_counts(meta, "other content") is None
    assert overlap_counts({"contamination": {**meta["contamination"], "method": METHOD_VERSION + 1}}, "a") is None
    assert (describe_counts(None), describe_counts({"gsm8k": 0}), describe_counts({"b": 1, "a": 2})) == (
        "",
        "none",
        "a 2, b 1",
    )
