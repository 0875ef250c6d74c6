"""Files that are not data, and JSON built to hang or blow up a reader: refused at once, in one line."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from oda_sft.data import files
from oda_sft.data.formats import alpaca, convert
from oda_sft.data.formats.arrow_schema import SchemaCheck
from oda_sft.data.formats.jsonstream import JsonStream
from oda_sft.errors import DatasetError


@pytest.fixture
def fifo(tmp_path: Path) -> Iterator[Path]:
    path = tmp_path / "pipe.json"
    os.mkfifo(path)
    yield path


def _special_paths(tmp_path: Path, fifo: Path) -> dict[str, tuple[Path, str]]:
    (tmp_path / "adir.json").mkdir()
    (tmp_path / "dangling.json").symlink_to(tmp_path / "gone.json")
    return {
        "fifo": (fifo, "is a FIFO (named pipe)"),
        "device": (Path("/dev/zero"), "is a character device"),
        "dangling": (tmp_path / "dangling.json", "is a dangling symbolic link (to "),
        "directory": (tmp_path / "adir.json", "is a directory"),
    }


@pytest.mark.parametrize("kind", ["fifo", "device", "dangling", "directory"])
def test_special_files_are_refused_before_anything_opens_them(tmp_path: Path, fifo: Path, kind: str) -> None:
    path, said = _special_paths(tmp_path, fifo)[kind]
    started = time.monotonic()
    with pytest.raises(DatasetError) as info:
        list(JsonStream(path))  # a FIFO opened for reading would block here forever
    message = str(info.value)
    assert str(path) in message and said in message and "does not exist" not in message.split(said)[0]
    assert time.monotonic() - started < 5


def test_a_path_swapped_for_a_fifo_after_the_check_still_cannot_block(
    fifo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The stat check passed (as if the path were swapped for a FIFO just after it): the open must not block.
    monkeypatch.setattr(files, "describe", lambda _path: None)
    result: list[str] = []

    def read() -> None:
        try:
            files.open_regular(fifo, "data file", "fix it").close()
            result.append("opened")
        except DatasetError as exc:
            result.append(str(exc))

    thread = threading.Thread(target=read, daemon=True)
    thread.start()
    thread.join(5)
    assert result and "is a FIFO (named pipe), not a regular file: fix it" in result[0]


def test_lexical_inside_check() -> None:
    base = Path("/data")
    assert files.is_inside(base, "x.json") and files.is_inside(base, "sub/../x.json")
    for outside in ("../x.json", "/etc/passwd", "../../etc/passwd", "a/../../x", ".", ""):
        assert not files.is_inside(base, outside), outside


def _stream(path: Path, data: bytes, **kw: int) -> list[object]:
    path.write_bytes(data)
    return [r.value for r in JsonStream(path, **kw)]


@pytest.mark.parametrize(
    ("name", "data", "message"),
    [
        ("space.json", b" " * (8 << 20) + b"[]", "more than 1 MiB of whitespace in a row at line 1"),
        ("newlines.jsonl", b"\n" * (8 << 20) + b"{}", "more than 1 MiB of whitespace in a row"),
        ("between.jsonl", b'{"a": 1}\n' + b"\r\n" * (2 << 20) + b'{"a": 2}\n', "whitespace in a row at line"),
        ("trailing.json", b'[{"a": 1}]' + b" " * (2 << 20), "more than 1 MiB of whitespace"),
        ("bigint.json", b'[{"a": ' + b"7" * 100_000 + b"}]", "a number with more than 4300 digits"),
        ("bigint.jsonl", b'{"a": ' + b"7" * 100_000 + b"}\n", "a number with more than 4300 digits"),
        ("deep.json", b"[" + b"[" * 100_000 + b"]" * 100_000 + b"]", "nested too deeply"),
        ("deep.jsonl", b'{"a": ' + b"[" * 50_000, "nested too deeply"),
    ],
)
def test_blow_ups_are_fast_one_line_errors(tmp_path: Path, name: str, data: bytes, message: str) -> None:
    started = time.monotonic()
    with pytest.raises(DatasetError) as info:
        _stream(tmp_path / name, data)
    assert message in str(info.value) and str(tmp_path / name) in str(info.value)
    assert "\n" not in str(info.value)
    assert time.monotonic() - started < 10  # the whole 8 MiB is not even read: the run stops past 1 MiB


def test_a_megabyte_of_blank_lines_or_indentation_below_the_limit_is_fine(tmp_path: Path) -> None:
    data = b'{"a": 1}\n' + b"\n" * 1000 + b'    {"a": 2}\n'
    assert _stream(tmp_path / "ok.jsonl", data) == [{"a": 1}, {"a": 2}]
    pretty = b"[\n" + b" " * 5000 + b'{"a":\n  1}\n]\n'
    assert _stream(tmp_path / "ok.json", pretty) == [{"a": 1}]


@pytest.mark.parametrize("suffix", ["json", "jsonl"])
def test_a_record_over_the_size_limit_is_named_by_index_not_read_whole(tmp_path: Path, suffix: str) -> None:
    small = b'{"instruction": "q", "output": "a"}'
    big = b'{"instruction": "q", "output": "' + b"x" * (3 << 20) + b'"}'
    data = b"[" + small + b"," + big + b"]" if suffix == "json" else small + b"\n" + big + b"\n"
    line = 1 if suffix == "json" else 2
    with pytest.raises(DatasetError, match=rf"record #1 \(from line {line}\) is larger than 1 MiB") as info:
        _stream(tmp_path / f"d.{suffix}", data, max_record=1 << 20, chunk=1 << 16)
    assert "split or drop that record" in str(info.value)


def test_jsonl_columns_count_the_indentation(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="line 2, column 9: Expecting ':' delimiter"):
        _stream(tmp_path / "d.jsonl", b'{"a": 1}\n   {"a" 2}\n')


def test_a_lone_surrogate_is_a_record_problem_not_a_traceback() -> None:
    record = {"instruction": "q\ud800", "output": "a"}
    assert [str(p) for p in alpaca.check(3, record, alpaca.Columns.full())] == [
        "#3 instruction: holds a lone surrogate (a \\ud800-\\udfff escape without its pair), which is not valid Unicode"
    ]
    shape = convert.detect({"messages": []})
    _, problems = convert.convert_record(
        shape, 0, {"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "\udfff"}]}
    )
    assert problems and "lone surrogate" in str(problems[0])
    # A pair is one character and fine: only a surrogate without its partner is refused.
    assert alpaca.check(0, {"instruction": "\U0001f600", "output": "a"}, alpaca.Columns.full()) == []


def test_stray_keys_must_keep_one_type_for_the_trainers_loader() -> None:
    check = SchemaCheck(ignore=frozenset(alpaca.FIELDS))
    ok = [{"id": 1, "meta": {"k": 1}}, {"id": 2.5, "meta": {"j": "s"}}, {"id": None, "tags": []}, {"tags": ["a"]}]
    assert [check.add(i, r) for i, r in enumerate(ok)] == [[], [], [], []]
    assert [str(p) for p in check.add(4, {"id": "x"})] == ["#4 id: is a string here but a number in an earlier record"]
    assert [str(p) for p in check.add(5, {"meta": {"k": "s"}})] == [
        "#5 meta.k: is a string here but a number in an earlier record"
    ]
    assert [str(p) for p in check.add(6, {"tags": {"a": 1}})] == [
        "#6 tags: is an object here but a list in an earlier record"
    ]
    assert [str(p) for p in check.add(7, {"flag": True})] == []
    assert [str(p) for p in check.add(8, {"flag": 1})] == [
        "#8 flag: is a number here but a boolean in an earlier record"
    ]


@pytest.mark.parametrize("suffix", ["json", "jsonl"])
@pytest.mark.parametrize(
    ("record", "key"),
    [
        (b'{"instruction": "A", "instruction": "B", "output": "o"}', "instruction"),
        (b'{"instruction" : "A", "output": "o", "instruction":"B"}', "instruction"),  # spaced, apart
        (b'{"messages": [{"role": "user", "role": "assistant", "content": "x"}]}', "role"),  # nested
        (b'{"a": {"\\u0062": 1, "b": 2}}', "b"),  # the same key spelt two ways
    ],
)
def test_a_key_named_twice_in_a_record_is_refused_with_its_number(
    tmp_path: Path, suffix: str, record: bytes, key: str
) -> None:
    # json keeps the last value of a duplicate key without a word: the first would be lost silently.
    good = b'{"instruction": "q", "output": "a"}'
    data = b"[\n" + good + b",\n" + record + b"\n]\n" if suffix == "json" else good + b"\n" + record + b"\n"
    with pytest.raises(DatasetError) as info:
        _stream(tmp_path / f"d.{suffix}", data)
    message = str(info.value)
    line = 3 if suffix == "json" else 2
    assert f"record #1 (from line {line}) names the key {key!r} twice" in message and "remove one of them" in message
    assert str(tmp_path / f"d.{suffix}") in message and "\n" not in message


def test_the_same_key_in_two_records_or_two_objects_is_fine(tmp_path: Path) -> None:
    data = b'{"a": {"k": 1}, "b": {"k": 2}, "k": 3}\n{"a": 1}\n'
    assert _stream(tmp_path / "ok.jsonl", data) == [{"a": {"k": 1}, "b": {"k": 2}, "k": 3}, {"a": 1}]
