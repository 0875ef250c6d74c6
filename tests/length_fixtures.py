"""Records and helpers the length tests share: tests/unit/test_data_lengths.py and
tests/integration/test_lengths_parity.py."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from oda_sft.data.formats import alpaca
from oda_sft.data.measure.token_counter import LengthCounter

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


def sample_of(counter: LengthCounter, tokens: int) -> dict[str, str]:
    """A record of exactly `tokens` tokens: \\x07 is a byte no tiny merge touches, one token each."""
    base = counter.lengths([alpaca.turns({"instruction": "q", "output": "\x07"}, COLS)])[0] - 1
    record = {"instruction": "q", "output": "\x07" * (tokens - base)}
    assert counter.lengths([alpaca.turns(record, COLS)])[0] == tokens
    return record


def write_records(path: Path, records: list[dict[str, Any]]) -> Path:
    path.write_text(json.dumps(records, ensure_ascii=False), encoding="utf-8")
    return path
