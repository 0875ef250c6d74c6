"""Edit dataset_info.json in place: one member is replaced or added, every other byte is kept.

Users keep hand-written entries there (LLaMA-Factory's own format), so oda-sft never
re-serialises the whole file: it splices new text into the old, then writes it atomically.
"""

from __future__ import annotations

import fcntl
import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from oda_sft.errors import DatasetError
from oda_sft.util.fs import atomic_write_text

_WS = " \t\n\r"
_DECODER = json.JSONDecoder()


@contextmanager
def locked(directory: Path) -> Iterator[None]:
    """Serialise read-modify-write of dataset_info.json across processes.

    The lock is on the directory itself, so no lock file is left behind in the dataset dir.
    """
    fd = os.open(directory, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing releases the lock


@dataclass(frozen=True)
class _Member:
    key: str
    key_start: int
    value_start: int
    value_end: int


def _skip(text: str, pos: int) -> int:
    while pos < len(text) and text[pos] in _WS:
        pos += 1
    return pos


def _members(text: str, start: int) -> tuple[list[_Member], int]:
    """The members of the JSON object whose '{' is at start, and the position of its '}'."""
    if text[start] != "{":
        raise ValueError("not an object")
    members: list[_Member] = []
    pos = _skip(text, start + 1)
    if text[pos] == "}":
        return members, pos
    while True:
        key_start = pos
        key, pos = _DECODER.raw_decode(text, pos)
        pos = _skip(text, pos)
        pos = _skip(text, pos + 1)  # the ':'
        _, end = _DECODER.raw_decode(text, pos)
        members.append(_Member(str(key), key_start, pos, end))
        pos = _skip(text, end)
        if text[pos] == "}":
            return members, pos
        pos = _skip(text, pos + 1)  # the ','


def _line_indent(text: str, pos: int) -> str:
    line_start = text.rfind("\n", 0, pos) + 1
    prefix = text[line_start:pos]
    return prefix[: len(prefix) - len(prefix.lstrip(" \t"))]


def _dump(value: Any, indent: str, multiline: bool) -> str:
    if not multiline:
        return json.dumps(value, ensure_ascii=False)
    return json.dumps(value, indent=2, ensure_ascii=False).replace("\n", "\n" + indent)


def set_member(text: str, obj_start: int, key: str, value: Any) -> str:
    """text with obj[key] = value for the object at obj_start; other members are left as they were."""
    members, close = _members(text, obj_start)
    same = [m for m in members if m.key == key]
    if same:
        last = same[-1]  # json.loads keeps the last of duplicate keys, so that is the one that counts
        multiline = "\n" in text[obj_start : last.key_start]
        dumped = _dump(value, _line_indent(text, last.key_start), multiline)
        return text[: last.value_start] + dumped + text[last.value_end :]
    outer = _line_indent(text, obj_start) if "\n" in text[obj_start:close] or not members else ""
    if members:
        first = members[0]
        multiline = "\n" in text[obj_start : first.key_start]
        indent = _line_indent(text, first.key_start) if multiline else ""
        sep = ",\n" + indent if multiline else ", "
        addition = sep + json.dumps(key, ensure_ascii=False) + ": " + _dump(value, indent, multiline)
        end = members[-1].value_end
        return text[:end] + addition + text[end:]
    indent = _line_indent(text, obj_start) + "  "
    body = "\n" + indent + json.dumps(key, ensure_ascii=False) + ": " + _dump(value, indent, True) + "\n" + outer
    return text[: obj_start + 1] + body + text[close:]


def top_level_start(text: str) -> int:
    start = _skip(text, 0)
    if start >= len(text) or text[start] != "{":
        raise ValueError("dataset_info.json does not hold an object")
    return start


def member_start(text: str, obj_start: int, key: str) -> int | None:
    members, _ = _members(text, obj_start)
    same = [m for m in members if m.key == key]
    return same[-1].value_start if same else None


def read_info(info_path: Path) -> str:
    """The file's text, or an empty registry when it does not exist yet."""
    if not info_path.exists():
        return "{}\n"
    text = info_path.read_text(encoding="utf-8")
    parse_info(info_path, text)  # refuse to splice into a file that is not a registry
    return text


def parse_info(info_path: Path, text: str) -> dict[str, Any]:
    """dataset_info.json's name -> entry object, or a one-line error that says where it is broken."""
    try:
        parsed = json.loads(text)
    except json.JSONDecodeError as exc:
        raise DatasetError(
            f"{info_path} is not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg}): fix the file"
        ) from None
    if not isinstance(parsed, dict):
        raise DatasetError(f"{info_path} must hold a JSON object of name -> entry: fix the file")
    return parsed


def put_entry(info_path: Path, name: str, entry: dict[str, Any]) -> None:
    """Add or replace one entry; the rest of the file keeps its bytes. Call under `locked`."""
    text = read_info(info_path)
    updated = set_member(text, top_level_start(text), name, entry)
    _write(info_path, updated)


def put_meta(info_path: Path, name: str, meta_key: str, meta: dict[str, Any]) -> None:
    """Set entry[meta_key] = meta inside an existing entry, touching nothing else. Call under `locked`."""
    text = read_info(info_path)
    entry_start = member_start(text, top_level_start(text), name)
    if entry_start is None or text[entry_start] != "{":
        raise DatasetError(f"dataset {name} is not registered in {info_path}: register it with `oda-sft data add`")
    _write(info_path, set_member(text, entry_start, meta_key, meta))


def _write(info_path: Path, text: str) -> None:
    json.loads(text)  # a splice that broke the file is a bug; never write it
    atomic_write_text(info_path, text)
