"""Every data format LLaMA-Factory documents converts exactly, or is refused record by record with why.

Exactly means: LLaMA-Factory's own converter, run on the original record as its README registers
that format, builds the same prompt, response and system as its Alpaca converter on ours.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from oda_sft.data.formats import alpaca, convert

from conftest import Cli

# How LLaMA-Factory's data/README.md registers each shape (formatting "sharegpt" with tags).
SHAREGPT = {"formatting": "sharegpt", "columns": {"messages": "conversations", "system": "system"}}
OPENAI = {
    "formatting": "sharegpt",
    "columns": {"messages": "messages"},
    "tags": {
        "role_tag": "role",
        "content_tag": "content",
        "user_tag": "user",
        "assistant_tag": "assistant",
        "system_tag": "system",
    },
}

SHAREGPT_RECORDS = [
    {"conversations": [{"from": "human", "value": "hi"}, {"from": "gpt", "value": "hello"}]},
    {
        "conversations": [
            {"from": "system", "value": "Be brief."},
            {"from": "human", "value": "2+2?"},
            {"from": "gpt", "value": "4"},
            {"from": "human", "value": "and 3+3?\n"},
            {"from": "gpt", "value": " 6 "},
        ]
    },
    {"conversations": [{"from": "human", "value": "q"}, {"from": "gpt", "value": "a"}], "system": "column system"},
]
OPENAI_RECORDS = [
    {
        "messages": [
            {"role": "system", "content": "You are terse."},
            {"role": "user", "content": "name a colour"},
            {"role": "assistant", "content": "red"},
        ]
    },
    {
        "messages": [
            {"role": "user", "content": "one"},
            {"role": "assistant", "content": "1"},
            {"role": "user", "content": "two"},
            {"role": "assistant", "content": "2", "name": "bot"},  # a key no trainer reads
        ],
        "id": 7,
    },
]


def _llamafactory(entry: dict[str, Any], record: dict[str, Any]) -> dict[str, Any]:
    from llamafactory.data.converter import get_dataset_converter
    from llamafactory.data.parser import DatasetAttr
    from llamafactory.hparams import DataArguments

    attr = DatasetAttr("file", "fixture")
    attr.join(entry)
    # Loaded through Arrow, every row has every declared column (null where a record lacks it).
    row = {**{column: None for column in entry.get("columns", {}).values()}, **record}
    out = get_dataset_converter(attr.formatting, attr, DataArguments(template="default"))(row)
    # The template treats a null system like an empty one.
    return {"_prompt": out["_prompt"], "_response": out["_response"], "_system": out["_system"] or ""}


def _ours(record: dict[str, Any]) -> dict[str, Any]:
    shape = convert.detect(record)
    converted, problems = convert.convert_record(shape, 0, record)
    assert problems == [] and converted is not None
    full = {k: converted.get(k) for k in alpaca.FIELDS}
    return _llamafactory({"columns": alpaca.Columns.full().entry_columns()}, full)


@pytest.mark.parametrize(
    ("entry", "record"),
    [(SHAREGPT, r) for r in SHAREGPT_RECORDS] + [(OPENAI, r) for r in OPENAI_RECORDS],
    ids=[f"sharegpt{i}" for i in range(len(SHAREGPT_RECORDS))] + [f"openai{i}" for i in range(len(OPENAI_RECORDS))],
)
def test_sharegpt_and_openai_convert_to_what_llamafactory_itself_trains(
    entry: dict[str, Any], record: dict[str, Any]
) -> None:
    assert _ours(record) == _llamafactory(entry, record)


def _v1(role: str, *texts: str, weight: float | None = None) -> dict[str, Any]:
    turn: dict[str, Any] = {"role": role, "content": [{"type": "text", "value": t} for t in texts]}
    if weight is not None:
        turn["loss_weight"] = weight
    return turn


def test_v1_content_parts_convert_with_nothing_dropped() -> None:
    record = {
        "messages": [
            _v1("system", "You are {{name}}.", weight=0.0),
            _v1("user", "hi", weight=0.0),
            _v1("assistant", "Hello! I am {{name}}.", weight=1.0),
            _v1("user", "first part", "second part", weight=0.0),
            _v1("assistant", "ok", weight=1.0),
        ],
        "extra_info": "not trained",
    }
    shape = convert.detect(record)
    out, problems = convert.convert_record(shape, 0, record)
    assert problems == []
    assert out == {
        "instruction": "first part\nsecond part",  # v1 joins text parts with a newline
        "input": "",
        "output": "ok",
        "system": "You are {{name}}.",
        "history": [["hi", "Hello! I am {{name}}."]],
    }


def test_openai_text_parts_join_as_chat_templates_render_them() -> None:
    record = {
        "messages": [
            {"role": "user", "content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]},
            {"role": "assistant", "content": "c"},
        ]
    }
    out, _ = convert.convert_record(convert.detect(record), 0, record)
    assert out == {"instruction": "ab", "input": "", "output": "c"}


def test_a_v1_file_like_llamafactorys_demo_is_added_whole(cli: Cli, data_dir: Path, tmp_path: Path) -> None:
    # The shape of LLaMA-Factory's data/v1_sft_demo.jsonl, which oda-sft used to refuse as "empty".
    rows = [{"messages": [_v1("user", f"question {i}", weight=0.0), _v1("assistant", f"answer {i}", weight=1.0)]}
            for i in range(20)]  # fmt: skip
    rows[3]["messages"].insert(0, _v1("system", "Answer in one word.", weight=0.0))
    src = tmp_path / "v1.jsonl"
    src.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    r = cli("data", "add", "v1", str(src), "--dataset-dir", str(data_dir))
    assert r.code == 0, r.err
    assert r.out.startswith("added v1: 20 records, shape chat (messages)")
    written = json.loads((data_dir / "v1.json").read_text())
    assert written[3] == {
        "instruction": "question 3",
        "input": "",
        "output": "answer 3",
        "system": "Answer in one word.",
    }
    assert json.loads((data_dir / "dataset_info.json").read_text())["v1"]["columns"]["system"] == "system"


REFUSED = [
    (
        {
            "messages": [
                {"role": "user", "content": "q"},
                {"role": "assistant", "content": None, "tool_calls": [{"function": {"name": "f", "arguments": "{}"}}]},
            ]
        },
        "#0 messages[1].tool_calls: a tool call has no Alpaca equivalent",
    ),
    (
        {"conversations": [{"from": "human", "value": "q"}, {"from": "function_call", "value": "{}"}]},
        "#0 conversations[1]: a 'function_call' turn (tool use)",
    ),
    (
        {"conversations": [{"from": "human", "value": "q"}, {"from": "gpt", "value": "a"}], "tools": "[{...}]"},
        "#0 tools: a tool description has no Alpaca equivalent",
    ),
    (
        {
            "messages": [{"role": "user", "content": "<image>what?"}, {"role": "assistant", "content": "a cat"}],
            "images": ["cat.png"],
        },
        "#0 images: images has no Alpaca equivalent",
    ),
    (
        {
            "messages": [
                {"role": "user", "content": "q"},
                {"role": "assistant", "content": "a", "reasoning_content": "because"},
            ]
        },
        "#0 messages[1].reasoning_content: reasoning content has no Alpaca equivalent",
    ),
    (
        {
            "messages": [
                _v1("user", "q", weight=0.0),
                _v1("assistant", "a", weight=0.0),
                _v1("user", "q2", weight=0.0),
                _v1("assistant", "a2", weight=1.0),
            ]
        },
        "#0 messages[1].loss_weight: loss_weight 0.0 on a assistant turn: Alpaca trains every response",
    ),
    (
        {
            "messages": [
                {"role": "user", "content": [{"type": "image_url", "value": "x.png"}]},
                {"role": "assistant", "content": "a"},
            ]
        },
        "#0 messages[0].content[0]: a 'image_url' content part has no Alpaca equivalent",
    ),
    (
        {
            "messages": [
                {"role": "user", "content": [{"type": "text", "text": "a"}, {"type": "text", "value": "b"}]},
                {"role": "assistant", "content": "c"},
            ]
        },
        "#0 messages[0].content: content parts mix 'text' (OpenAI) and 'value' (LLaMA-Factory v1) parts",
    ),
    (
        {"instruction": "q", "output": "a", "chosen": "a", "rejected": "b"},
        "#0 chosen: a preference pair (chosen/rejected) has no Alpaca equivalent",
    ),
]


@pytest.mark.parametrize(
    ("record", "problem"), REFUSED, ids=[p.split(":")[0] + str(i) for i, (_, p) in enumerate(REFUSED)]
)
def test_what_alpaca_cannot_hold_is_refused_per_record_with_the_reason(record: dict[str, Any], problem: str) -> None:
    out, problems = convert.convert_record(convert.detect(record), 0, record)
    assert out is None and str(problems[0]).startswith(problem), problems
