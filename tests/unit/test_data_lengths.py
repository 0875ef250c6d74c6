"""Token lengths equal LLaMA-Factory's own preprocessing; the decision rule at its boundaries."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from oda_sft.catalog import PRESETS
from oda_sft.data import alpaca
from oda_sft.data.length_rule import Rule
from oda_sft.data.lengths import measure_file
from oda_sft.data.token_counter import LengthCounter
from oda_sft.errors import UsageError

COLS = alpaca.Columns.full()
FIXTURES: list[dict[str, Any]] = [
    {"instruction": "hi", "output": "yo"},
    {"instruction": "héllo wörld 😀🚀 数学问题", "input": "more\ninput", "output": "ans 🙂", "system": "Be nice."},
    {"instruction": "", "input": "only input", "output": "x"},
    {"instruction": "q", "input": "", "output": "a", "system": "", "history": []},
    {"instruction": "q3", "output": "a3", "history": [["q1", "a1 ü"], ["q2 \t tabs", "a2\n\nnewlines"]]},
    {"instruction": "<|end_of_text|> literal special token", "output": "ok <|pad|>"},
    {"instruction": "  leading and trailing spaces  ", "output": "\n"},
    {"instruction": "Ω≈ç√∫˜µ≤≥÷ 𝔘𝔫𝔦𝔠𝔬𝔡𝔢 e\u0301 ﬁ", "output": "👩‍👩‍👧‍👦 " * 20, "system": "Sÿstem ✓"},  # noqa: RUF001
]


@pytest.fixture(scope="module")
def counter() -> LengthCounter:
    return LengthCounter.load(PRESETS["tiny"])


def _llamafactory_lengths(records: list[dict[str, Any]]) -> list[int]:
    """LLaMA-Factory's own path: its alpaca converter, `default` template and supervised processor."""
    from llamafactory.data.converter import AlpacaDatasetConverter
    from llamafactory.data.parser import DatasetAttr
    from llamafactory.data.processor.supervised import SupervisedDatasetProcessor
    from llamafactory.data.template import get_template_and_fix_tokenizer
    from llamafactory.hparams import DataArguments
    from transformers import AutoTokenizer

    from oda_sft import tiny_model as tiny

    tokenizer = AutoTokenizer.from_pretrained(tiny.ensure_model())
    data_args = DataArguments(template="default", cutoff_len=10**9)  # no truncation
    template = get_template_and_fix_tokenizer(tokenizer, data_args)
    processor = SupervisedDatasetProcessor(template=template, tokenizer=tokenizer, processor=None, data_args=data_args)
    attr = DatasetAttr("file", "fixture")
    attr.join({"columns": COLS.entry_columns()})
    converter = AlpacaDatasetConverter(attr, data_args)
    out = []
    for record in records:
        full = {k: record.get(k) for k in alpaca.FIELDS}
        ex = converter(full)
        ids, _ = processor._encode_data_example(ex["_prompt"], ex["_response"], ex["_system"], None, [], [], [])
        out.append(len(ids))
    return out


def test_lengths_equal_llamafactory_preprocessing(counter: LengthCounter) -> None:
    expected = _llamafactory_lengths(FIXTURES)
    assert counter.lengths([alpaca.turns(r, COLS) for r in FIXTURES]) == expected


def test_byte_bound_is_an_upper_bound(counter: LengthCounter) -> None:
    assert counter.byte_level
    exact = counter.lengths([alpaca.turns(r, COLS) for r in FIXTURES])
    for record, n in zip(FIXTURES, exact, strict=True):
        system, pairs = alpaca.turns(record, COLS)
        bound = counter.bound(system, pairs, record.get("instruction", ""), record.get("input", ""))
        assert bound >= n


def _sample_of(counter: LengthCounter, tokens: int) -> dict[str, str]:
    """A record of exactly `tokens` tokens: \\x07 is a byte no tiny merge touches, one token each."""
    base = counter.lengths([alpaca.turns({"instruction": "q", "output": "\x07"}, COLS)])[0] - 1
    record = {"instruction": "q", "output": "\x07" * (tokens - base)}
    assert counter.lengths([alpaca.turns(record, COLS)])[0] == tokens
    return record


def _write(path: Path, records: list[dict[str, Any]]) -> Path:
    path.write_text(json.dumps(records, ensure_ascii=False), encoding="utf-8")
    return path


@pytest.mark.parametrize("exact", [False, True])
def test_exactly_4096_tokens_is_not_over_but_4097_is(tmp_path: Path, counter: LengthCounter, exact: bool) -> None:
    at = _sample_of(counter, 4096)
    assert _llamafactory_lengths([at]) == [4096]
    over = _sample_of(counter, 4097)
    # 1 sample in 1: 4096 fits the standard cutoff, 4097 does not.
    r = measure_file(_write(tmp_path / "a.json", [at]), counter, Rule(), COLS, exact=exact)
    assert (r.over, r.mode) == (0, "standard")
    r = measure_file(_write(tmp_path / "b.json", [over]), counter, Rule(), COLS, exact=exact)
    assert (r.over, r.mode) == (1, "long")


@pytest.mark.parametrize("exact", [False, True])
@pytest.mark.parametrize(("n_long", "mode"), [(1, "standard"), (2, "long")])
def test_one_percent_threshold(tmp_path: Path, counter: LengthCounter, exact: bool, n_long: int, mode: str) -> None:
    # 100 samples: exactly 1% over is not "more than 1%"; 2% is.
    records = [_sample_of(counter, 4097)] * n_long + [{"instruction": "q", "output": "short"}] * (100 - n_long)
    r = measure_file(_write(tmp_path / "d.json", records), counter, Rule(), COLS, exact=exact)
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
    path = _write(tmp_path / "mix.json", records)
    fast = measure_file(path, counter, Rule(), COLS)
    exact = measure_file(path, counter, Rule(), COLS, exact=True)
    assert fast.mode == exact.mode
    assert fast.over <= exact.over <= fast.over_upper
    assert fast.measured <= exact.measured == 400
    assert fast.sha256 == exact.sha256


def test_measure_reports_invalid_and_empty(tmp_path: Path, counter: LengthCounter) -> None:
    from oda_sft.errors import DatasetError

    path = _write(tmp_path / "bad.json", [{"instruction": "q", "output": "a"}, {"instruction": 1}, {"output": "o"}])
    with pytest.raises(DatasetError, match=r"2 of 3 records are not valid Alpaca \(#1 instruction: must be a string"):
        measure_file(path, counter, Rule(), COLS)
    with pytest.raises(DatasetError, match="holds no records"):
        measure_file(_write(tmp_path / "empty.json", []), counter, Rule(), COLS)
