"""Token lengths equal LLaMA-Factory's own preprocessing; the decision rule at its boundaries."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from oda_sft.catalog import PRESETS
from oda_sft.data.formats import alpaca
from oda_sft.data.measure.length_rule import Rule
from oda_sft.data.measure.lengths import measure_file
from oda_sft.data.measure.token_counter import LengthCounter


@pytest.fixture(scope="module")
def counter() -> LengthCounter:
    return LengthCounter.load(PRESETS["tiny"])


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


def _sample_of(counter: LengthCounter, tokens: int) -> dict[str, str]:
    """A record of exactly `tokens` tokens: \\x07 is a byte no tiny merge touches, one token each."""
    base = counter.lengths([alpaca.turns({"instruction": "q", "output": "\x07"}, COLS)])[0] - 1
    record = {"instruction": "q", "output": "\x07" * (tokens - base)}
    assert counter.lengths([alpaca.turns(record, COLS)])[0] == tokens
    return record


def _write(path: Path, records: list[dict[str, Any]]) -> Path:
    path.write_text(json.dumps(records, ensure_ascii=False), encoding="utf-8")
    return path


def test_lengths_equal_llamafactory_preprocessing(counter: LengthCounter) -> None:
    expected = _llamafactory_lengths(FIXTURES)
    assert counter.lengths([alpaca.turns(r, COLS) for r in FIXTURES]) == expected


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
