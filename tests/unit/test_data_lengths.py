"""Token lengths equal LLaMA-Factory's own preprocessing; the decision rule at its boundaries."""

from __future__ import annotations

import json
import os
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from oda_sft.data.formats import alpaca
from oda_sft.data.measure import lengths
from oda_sft.data.measure.length_rule import Rule
from oda_sft.data.measure.lengths import measure_file
from oda_sft.data.measure.token_counter import LengthCounter
from oda_sft.errors import UsageError
from oda_sft.presets import PRESETS

from length_fixtures import COLS, FIXTURES, sample_of, write_records


@pytest.fixture(scope="module")
def counter() -> LengthCounter:
    return LengthCounter.load(PRESETS["tiny"])


def test_byte_bound_is_an_upper_bound(counter: LengthCounter) -> None:
    assert counter.byte_level
    exact = counter.lengths([alpaca.turns(r, COLS) for r in FIXTURES])
    for record, n in zip(FIXTURES, exact, strict=True):
        system, pairs = alpaca.turns(record, COLS)
        bound = counter.bound(system, pairs, record.get("instruction", ""), record.get("input", ""))
        assert bound >= n


@pytest.mark.parametrize("exact", [False, True])
@pytest.mark.parametrize(("n_long", "mode"), [(1, "standard"), (2, "long")])
def test_one_percent_threshold(tmp_path: Path, counter: LengthCounter, exact: bool, n_long: int, mode: str) -> None:
    # 100 samples: exactly 1% over is not "more than 1%"; 2% is.
    records = [sample_of(counter, 4097)] * n_long + [{"instruction": "q", "output": "short"}] * (100 - n_long)
    r = measure_file(write_records(tmp_path / "d.json", records), counter, Rule(), COLS, exact=exact)
    assert r.mode == mode
    assert r.count == 100
    if exact:
        assert r.over == n_long and r.stats is not None and r.stats["max"] == 4097


def test_rule_parsing_and_exact_arithmetic(monkeypatch: pytest.MonkeyPatch) -> None:
    assert Rule.parse() == Rule(4096, Decimal(1))
    rule = Rule.parse(8192, "0.29%")
    assert (rule.is_long(29, 10_000), rule.is_long(30, 10_000)) == (False, True)
    assert rule.allowed(10_000) == 29
    monkeypatch.setenv("ODA_SFT_LONG_TOKENS", "2048")
    monkeypatch.setenv("ODA_SFT_LONG_PERCENT", "5")
    assert Rule.parse() == Rule(2048, Decimal(5))
    for bad in ((0, None), (None, "100"), (None, "-1"), (None, "x")):
        with pytest.raises(UsageError):
            Rule.parse(*bad)


@pytest.mark.parametrize("share", [0.0, 0.005, 0.03, 0.5])
def test_fast_decision_agrees_with_exact(tmp_path: Path, counter: LengthCounter, share: float) -> None:
    import random

    rng = random.Random(1)
    records: list[dict[str, Any]] = []
    for _ in range(400):
        if rng.random() < share:
            records.append({"instruction": "think", "output": "step " * rng.randint(1500, 5000)})
        else:
            records.append({"instruction": "q " * rng.randint(1, 200), "output": "word " * rng.randint(1, 1200)})
    path = write_records(tmp_path / "mix.json", records)
    fast = measure_file(path, counter, Rule(), COLS)
    exact = measure_file(path, counter, Rule(), COLS, exact=True)
    assert fast.mode == exact.mode
    assert fast.over <= exact.over <= fast.over_upper
    assert fast.measured <= exact.measured == 400
    assert fast.sha256 == exact.sha256


def test_measure_reports_invalid_and_empty(tmp_path: Path, counter: LengthCounter) -> None:
    from oda_sft.errors import DatasetError

    path = write_records(
        tmp_path / "bad.json", [{"instruction": "q", "output": "a"}, {"instruction": 1}, {"output": "o"}]
    )
    with pytest.raises(DatasetError, match=r"2 of 3 records are not valid Alpaca \(#1 instruction: must be a string"):
        measure_file(path, counter, Rule(), COLS)
    with pytest.raises(DatasetError, match="holds no records"):
        measure_file(write_records(tmp_path / "empty.json", []), counter, Rule(), COLS)


# --- bounded memory: samples too large to tokenize are bounded and named, not tokenized ---------------


@pytest.mark.parametrize("exact", [False, True])
def test_a_sample_above_the_tokenize_cap_is_named_and_bounded_not_tokenized(
    tmp_path: Path, counter: LengthCounter, monkeypatch: pytest.MonkeyPatch, exact: bool
) -> None:
    monkeypatch.setattr(lengths, "TOKENIZE_CAP", 64 << 10)  # as 1 MiB is, at a size a unit test can afford
    tokenized: list[int] = []
    real = counter.lengths
    monkeypatch.setattr(
        counter, "lengths", lambda samples: tokenized.extend(len(s[1]) for s in samples) or real(samples)
    )
    big = {"instruction": "q", "output": "word " * 40_000}  # 200 KB of text: far above 4,096 tokens
    records = [{"instruction": "q", "output": "a"}] * 98 + [big, big]
    r = measure_file(write_records(tmp_path / "big.json", records), counter, Rule(), COLS, exact=exact)
    assert r.mode == "long" and r.over == 2 and [u.index for u in r.untokenized] == [98, 99]
    assert r.untokenized[0].text_bytes > 200_000 and r.untokenized[0].at_least > 4096
    assert len(tokenized) == (98 if exact else 0)  # the big ones never reach the tokenizer
    assert "2 sample(s) with more than 0 MiB of text were not tokenized" in r.notes[0]
    assert "#98 (0.2 MiB of text, at least" in r.notes[0]
    assert r.as_json()["not_tokenized"][0]["index"] == 98
    assert r.exact is False


def test_a_decision_that_hangs_on_untokenizable_samples_is_a_clear_error(
    tmp_path: Path, counter: LengthCounter, monkeypatch: pytest.MonkeyPatch
) -> None:
    from oda_sft.errors import DatasetError

    monkeypatch.setattr(lengths, "TOKENIZE_CAP", 64 << 10)
    monkeypatch.setattr(counter, "longest_token", 10**6)  # a bound too weak to tell
    records = [{"instruction": "q", "output": "a"}] * 99 + [{"instruction": "q", "output": "word " * 40_000}] * 2
    with pytest.raises(
        DatasetError, match=r"the decision depends on 2 sample\(s\) too large to tokenize .*\(#99 \(0.2 MiB of text"
    ):
        measure_file(write_records(tmp_path / "big.json", records), counter, Rule(), COLS)


def _between_passes(monkeypatch: pytest.MonkeyPatch, action: Any) -> None:
    """Run `action` right after pass 1 (validation) ends, before pass 2 reads spans back."""
    finish = lengths._Validator.finish

    def finish_then_act(self: Any, count: int) -> None:
        finish(self, count)
        action()

    monkeypatch.setattr(lengths._Validator, "finish", finish_then_act)


def test_a_file_replaced_between_the_passes_is_measured_as_hashed(
    tmp_path: Path, counter: LengthCounter, monkeypatch: pytest.MonkeyPatch
) -> None:
    import hashlib

    records = [sample_of(counter, 4097)] * 3 + [{"instruction": "q", "output": "a"}] * 50
    path = write_records(tmp_path / "d.json", records)
    original = hashlib.sha256(path.read_bytes()).hexdigest()
    other = write_records(tmp_path / "other.json", [{"instruction": "x", "output": "y"}])
    _between_passes(monkeypatch, lambda: os.replace(other, path))
    r = measure_file(path, counter, Rule(), COLS, exact=True)
    assert (r.sha256, r.over, r.mode) == (original, 3, "long")  # the bytes it hashed, from the open file
    write_records(tmp_path / "other.json", [{"instruction": "x", "output": "y"}])
    path = write_records(tmp_path / "d.json", records)
    r = measure_file(path, counter, Rule(), COLS)  # the fast path reads spans back in pass 2
    assert (r.sha256, r.mode) == (original, "long") and r.measured > 0


def test_a_file_written_in_place_between_the_passes_is_one_line_error(
    tmp_path: Path, counter: LengthCounter, monkeypatch: pytest.MonkeyPatch
) -> None:
    from oda_sft.errors import DatasetError

    records = [sample_of(counter, 4097)] * 3 + [{"instruction": "q", "output": "a"}] * 50
    path = write_records(tmp_path / "d.json", records)

    def scribble() -> None:
        with path.open("r+b") as f:
            f.write(b"{" * 4000)

    _between_passes(monkeypatch, scribble)
    with pytest.raises(DatasetError, match="was written to while it was being measured: run the command again"):
        measure_file(path, counter, Rule(), COLS)


# --- the fast path reads no more than the decision needs (benchmarks/length_decision.py times it) ------


def test_the_fast_path_reads_text_only_where_the_json_size_cannot_settle_it(
    tmp_path: Path, counter: LengthCounter, monkeypatch: pytest.MonkeyPatch
) -> None:
    tokenized: list[int] = []
    bounded: list[int] = []
    scanned: list[str] = []
    real_lengths, real_bound, real_scan = counter.lengths, counter.bound, alpaca.LONE_SURROGATE
    monkeypatch.setattr(counter, "lengths", lambda s: tokenized.extend(len(x[1]) for x in s) or real_lengths(s))
    monkeypatch.setattr(counter, "bound", lambda *a: bounded.append(1) or real_bound(*a))

    class Counting:
        def search(self, text: str) -> Any:
            scanned.append(text)
            return real_scan.search(text)

    monkeypatch.setattr(alpaca, "LONE_SURROGATE", Counting())
    # Two samples long by their size alone: more bytes than 4,096 of the tiny vocabulary's longest token.
    big = {"instruction": "think", "output": "word " * 15_000}
    assert len(big["output"]) > 4096 * counter.longest_token
    records = [{"instruction": "q", "output": "short 🙂", "history": [["a", "b"]]}] * 98 + [big, big]
    path = write_records(tmp_path / "d.json", records)
    fast = measure_file(path, counter, Rule(), COLS)
    assert (fast.mode, fast.over, fast.measured) == ("long", 2, 0)
    assert tokenized == []  # proven long without tokenizing
    assert len(bounded) == 2  # the 98 small ones were cleared by their JSON size, their text never read
    assert scanned == []  # no \ud800-\udfff escape in the file: no record's text is scanned for lone surrogates
    assert any("2 sample(s) exceed 4,096 tokens by their size alone" in n for n in fast.notes)
    exact = measure_file(path, counter, Rule(), COLS, exact=True)
    assert (exact.mode, exact.over) == ("long", 2)


@pytest.mark.parametrize(
    ("name", "data"),
    [
        ("escape.json", b'[{"instruction": "q", "output": "a"}, {"instruction": "q\\uDBFF", "output": "a"}]'),
        ("escape.jsonl", b'{"instruction": "q", "output": "a"}\n{"instruction": "q", "output": "\\udc00"}\n'),
        ("bytes.jsonl", b'{"instruction": "q", "output": "a"}\n{"instruction": "q", "output": "\xed\xa0\x80"}\n'),
    ],
)
def test_a_lone_surrogate_is_still_found_however_the_file_spells_it(
    tmp_path: Path, counter: LengthCounter, name: str, data: bytes
) -> None:
    from oda_sft.data.formats.jsonstream import JsonStream
    from oda_sft.errors import DatasetError

    path = tmp_path / name
    path.write_bytes(data)
    assert [r.surrogate_free for r in JsonStream(path)] == [True, False]
    for exact in (False, True):
        with pytest.raises(DatasetError, match=r"1 of 2 records are not valid Alpaca \(#1 \w+: holds a lone surrogate"):
            measure_file(path, counter, Rule(), COLS, exact=exact)
    # A pair written as escapes is one character, and fine.
    path.write_bytes(b'[{"instruction": "q\\ud83d\\ude00", "output": "a"}]')
    assert [r.surrogate_free for r in JsonStream(path)] == [False]
    assert measure_file(path, counter, Rule(), COLS).count == 1


def test_the_json_size_bound_holds_and_is_not_used_where_one_string_fills_two_fields(
    tmp_path: Path, counter: LengthCounter
) -> None:
    for record in FIXTURES:
        system, pairs = alpaca.turns(record, COLS)
        bound = counter.bound(system, pairs, record.get("instruction", ""), record.get("input", ""))
        for ascii_only in (True, False):
            size = len(json.dumps(record, ensure_ascii=ascii_only).encode())
            assert (counter.size_bound(size, len(pairs)) or 0) >= bound
    # LLaMA-Factory reads one key as both prompt and response: the text counts twice, the JSON once.
    same = alpaca.Columns(instruction="text", input=None, output="text")
    records = [{"text": "~" * 2100}] * 2 + [{"text": "short"}] * 98  # "~" is one tiny token each
    path = write_records(tmp_path / "same.json", records)
    exact = measure_file(path, counter, Rule(), same, exact=True)
    assert (exact.mode, exact.over) == ("long", 2)
    assert measure_file(path, counter, Rule(), same).mode == "long"
