"""Conversion of the shapes public SFT datasets use, and streaming validation of Alpaca JSON."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from oda_sft.data.formats import alpaca, convert
from oda_sft.data.formats.jsonstream import JsonStream, read_span
from oda_sft.errors import DatasetError, UsageError


def run(records: list[Any], mapping: list[str] | None = None) -> tuple[str, list[Any], list[str]]:
    shape = convert.detect(records[0], convert.parse_map(mapping or []))
    out, problems = [], []
    for i, r in enumerate(records):
        rec, probs = convert.convert_record(shape, i, r)
        out.append(rec)
        problems += [str(p) for p in probs]
    return shape.name, out, problems


def test_chat_role_content_with_system_and_history() -> None:
    chat = {
        "messages": [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "hi"},
            {"role": "assistant", "content": "hello"},
            {"role": "user", "content": "2+2?"},
            {"role": "assistant", "content": "4"},
        ]
    }
    shape, out, problems = run([chat])
    assert shape == "chat (messages)" and problems == []
    assert out == [
        {"instruction": "2+2?", "input": "", "output": "4", "system": "Be brief.", "history": [["hi", "hello"]]}
    ]


def test_sharegpt_from_value_and_top_level_system() -> None:
    rec = {"system": "S", "conversations": [{"from": "human", "value": "q"}, {"from": "gpt", "value": "a"}]}
    shape, out, problems = run([rec])
    assert shape == "chat (conversations)"
    assert out == [{"instruction": "q", "input": "", "output": "a", "system": "S"}] and problems == []


def test_arrow_style_turns_with_null_keys_and_text_parts() -> None:
    # Rows from the datasets library carry every key seen in any turn, as null.
    rec = {
        "messages": [
            {"role": "user", "content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}], "from": None},
            {"role": "assistant", "content": "c", "from": None},
        ]
    }
    _, out, problems = run([rec])
    assert out[0]["instruction"] == "ab" and problems == []


@pytest.mark.parametrize(
    ("turns", "expected"),
    [
        ([{"role": "user", "content": "q"}], "#0 messages: the chat ends on a user turn: there is no response"),
        ([], "#0 messages: no user or assistant turns"),
        (
            [{"role": "assistant", "content": "a"}, {"role": "user", "content": "q"}],
            "#0 messages[0]: expected a user turn, got assistant",
        ),
        (
            [{"role": "user", "content": "q"}, {"role": "user", "content": "q2"}],
            "#0 messages[1]: expected a assistant turn, got user",
        ),
        (
            [{"role": "user", "content": "q"}, {"role": "tool", "content": "x"}],
            "#0 messages[1]: a 'tool' turn (tool use): Alpaca has no tool turns",
        ),
        (
            [
                {"role": "user", "content": "q"},
                {"role": "assistant", "content": "a"},
                {"role": "system", "content": "s"},
            ],
            "#0 messages[2]: a system turn after the conversation started",
        ),
        (
            [{"role": "system", "content": "s"}, {"role": "system", "content": "t"}, {"role": "user", "content": "q"}],
            "#0 messages: more than one system prompt",
        ),
        (
            [{"role": "user", "content": 3}, {"role": "assistant", "content": "a"}],
            "#0 messages[0].content: must be text",
        ),
        ([{"role": "user", "content": "q"}, {"role": "assistant", "content": ""}], "#0 output: is empty"),
        (["just text"], "#0 messages[0]: a turn must be an object"),
    ],
)
def test_unconvertible_chats_name_index_field_and_reason(turns: list[Any], expected: str) -> None:
    _, out, problems = run([{"messages": turns}])
    assert out == [None]
    assert problems and problems[0].startswith(expected)


@pytest.mark.parametrize(
    ("record", "shape"),
    [
        ({"problem": "p", "solution": "s"}, "problem/solution"),
        ({"question": "p", "answer": "s"}, "question/answer"),
        ({"prompt": "p", "response": "s"}, "prompt/response"),
        ({"prompt": "p", "completion": "s"}, "prompt/completion"),
    ],
)
def test_pair_shapes(record: dict[str, str], shape: str) -> None:
    name, out, problems = run([record, {**record, "system": "sys"}])
    assert name == shape and problems == []
    assert out == [
        {"instruction": "p", "input": "", "output": "s"},
        {"instruction": "p", "input": "", "output": "s", "system": "sys"},
    ]


def test_conversational_prompt_completion_is_a_chat() -> None:
    rec = {"prompt": [{"role": "user", "content": "q"}], "completion": [{"role": "assistant", "content": "a"}]}
    _, out, _ = run([rec])
    assert out == [{"instruction": "q", "input": "", "output": "a"}]


def test_pair_with_missing_or_non_text_answer() -> None:
    _, out, problems = run([{"question": "q", "answer": "a"}, {"question": "q"}, {"question": "q", "answer": 5}])
    assert out[1:] == [None, None]
    assert problems == ["#1 answer: missing", "#2 answer: must be text, got int"]


def test_explicit_map() -> None:
    recs = [{"q": "x", "ctx": "c", "a": "y", "sys": None}, {"q": "x2", "a": "y2"}]
    name, out, problems = run(recs, ["instruction=q,output=a", "input=ctx,system=sys"])
    assert name.startswith("--map") and problems == []
    assert out == [
        {"instruction": "x", "input": "c", "output": "y"},
        {"instruction": "x2", "input": "", "output": "y2"},
    ]


@pytest.mark.parametrize(
    ("items", "message"),
    [
        (["instruction=q"], "needs at least instruction=COLUMN and output=COLUMN"),
        (["instruction"], "is not FIELD=COLUMN"),
        (["answer=a,instruction=q,output=o"], "'answer' is not an Alpaca field"),
        (["instruction=q,instruction=r,output=o"], "sets instruction twice"),
    ],
)
def test_bad_map(items: list[str], message: str) -> None:
    with pytest.raises(UsageError, match=message):
        convert.parse_map(items)


def test_undetectable_shape_names_the_keys_and_the_fix() -> None:
    with pytest.raises(UsageError, match=r"from its keys \(a, b\): pass --map instruction=COLUMN"):
        convert.detect({"a": 1, "b": 2})


def test_alpaca_passes_through_with_only_its_fields() -> None:
    rec = {"instruction": "i", "input": "", "output": "o", "history": [["a", "b"]], "extra": {"x": 1}, "system": None}
    name, out, problems = run([rec])
    assert name == "alpaca" and problems == []
    assert out == [{"instruction": "i", "input": "", "output": "o", "history": [["a", "b"]]}]


@pytest.mark.parametrize(
    ("record", "problem"),
    [
        ({"output": "o"}, "#0 instruction: missing"),
        ({"instruction": "i"}, "#0 output: missing"),
        ({"instruction": 1, "output": "o"}, "#0 instruction: must be a string, got a number"),
        ({"instruction": "i", "output": ["o"]}, "#0 output: must be a string, got a list"),
        ({"instruction": "i", "output": "o", "input": 5}, "#0 input: must be a string or absent, got a number"),
        ({"instruction": "i", "output": "o", "system": {}}, "#0 system: must be a string or absent, got an object"),
        ({"instruction": "i", "output": "o", "history": "x"}, "#0 history: must be a list of [instruction, response]"),
        (
            {"instruction": "i", "output": "o", "history": [["a"]]},
            "#0 history[0]: must be a pair of 2 strings, got a list of 1",
        ),
        (
            {"instruction": "i", "output": "o", "history": [["a", 2]]},
            "#0 history[0]: must be a pair of 2 strings, got a pair holding a string and a number",
        ),
        ({"instruction": "i", "output": ""}, "#0 output: is empty"),
        ({"instruction": "", "input": "", "output": "o"}, "#0 instruction: is empty and so is input"),
        ([1, 2], "#0: a record must be a JSON object, got a list"),
    ],
)
def test_alpaca_validation_problems(record: Any, problem: str) -> None:
    problems = [str(p) for p in alpaca.check(0, record, alpaca.Columns.full())]
    assert problems and problems[0].startswith(problem)


def test_alpaca_turns_match_llamafactory_converter_rules() -> None:
    cols = alpaca.Columns.full()
    rec = {"instruction": "i", "input": "x", "output": "o", "system": "s", "history": [["a", "b"]]}
    assert alpaca.turns(rec, cols) == ("s", [("a", "b"), ("i\nx", "o")])
    assert alpaca.turns({"instruction": "", "input": "x", "output": "o"}, cols) == ("", [("x", "o")])
    # Without declared columns LLaMA-Factory reads neither system nor history.
    assert alpaca.turns(rec, alpaca.Columns()) == ("", [("i\nx", "o")])


def test_problem_log_keeps_first_n_and_counts_all() -> None:
    log = alpaca.ProblemLog(shown=2)
    for i in range(5):
        log.add([alpaca.Problem(i, "output", "missing")])
    assert log.bad_records == 5
    assert log.summary() == "#0 output: missing; #1 output: missing; and 3 more"
    assert log.reason_counts() == "5 x output: missing"


# --- streaming JSON ------------------------------------------------------------------------------


@pytest.mark.parametrize("chunk", [3, 17, 1 << 20])
def test_stream_array_matches_json_load_and_spans_and_hash(tmp_path: Path, chunk: int) -> None:
    import hashlib

    records = [{"instruction": "é😀数" * i, "output": str(i), "n": 10**i} for i in range(40)]
    path = tmp_path / "d.json"
    path.write_text(json.dumps(records, ensure_ascii=False, indent=1), encoding="utf-8")
    stream = JsonStream(path, chunk=chunk)
    got = list(stream)
    assert [r.value for r in got] == records
    with path.open("rb") as handle:
        assert all(read_span(handle, r.start, r.end) == r.value for r in got)
    assert stream.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    assert stream.size == path.stat().st_size


def test_stream_json_lines_skips_blank_lines(tmp_path: Path) -> None:
    path = tmp_path / "d.jsonl"
    path.write_text('{"a": 1}\n\n{"a": 2}', encoding="utf-8")
    assert [(r.index, r.value) for r in JsonStream(path)] == [(0, {"a": 1}), (1, {"a": 2})]


@pytest.mark.parametrize(
    ("text", "where"),
    [
        ('[{"a": 1},\n {"a": 2,}]', "line 2, column 10: Expecting property name"),
        ('[\n{"a": 1}\n{"a": 2}]', "line 3, column 1: expected ',' or ']'"),
        ('[{"a": 1}', "line 1, column 10: the list is not closed"),
        ('[{"a": 1},]', "line 1, column 11: trailing comma"),
        ('[{"a": 1}] x', "line 1, column 12: extra data"),
        ('[{"a": 1},\n  x', "line 2, column 3: Expecting value"),  # the last read adds nothing: positions hold
        ('{"a": 1}\n{"a": }\n', "line 2, column 7: Expecting value"),
        ("hello", "line 1: expected '[' or '{'"),
    ],
)
def test_malformed_json_reports_line_and_column(tmp_path: Path, text: str, where: str) -> None:
    path = tmp_path / "d.json"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(DatasetError, match=re.escape(f"malformed JSON at {where}")):
        list(JsonStream(path, chunk=4))


def test_invalid_utf8_and_bom_and_empty(tmp_path: Path) -> None:
    path = tmp_path / "d.json"
    path.write_bytes(b'[{"a": "\xff"}]')
    with pytest.raises(DatasetError, match="not valid UTF-8 at byte 8"):
        list(JsonStream(path))
    path.write_bytes(b'[{"a": "\xe6\x95\xff"}]')  # a character cut by a read, then a bad byte
    for chunk in (1, 2, 3, 9, 10, 1 << 20):
        with pytest.raises(DatasetError, match="not valid UTF-8 at byte 8:"):
            list(JsonStream(path, chunk=chunk))
    path.write_bytes(b'\xef\xbb\xbf[{"a": 1}]')
    with pytest.raises(DatasetError, match="byte-order mark"):
        list(JsonStream(path))
    path.write_bytes(b" \n ")
    with pytest.raises(DatasetError, match="is empty"):
        list(JsonStream(path))
