"""dataset_info.json, the registry: read it safely, edit it in place, write it atomically.

Users keep hand-written entries there (LLaMA-Factory's own format), so oda-sft never
re-serialises the whole file: it splices new text into the old, then writes it atomically.
A registry that is a symbolic link is updated through the link (the file it points to is
replaced, in its own directory); anything but a regular file is refused before it is opened.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from oda_sft.data import files
from oda_sft.errors import DatasetError

INFO_FILE = "dataset_info.json"
TEMP_PREFIX = f".{INFO_FILE}.oda-sft-"  # a registry being written; removed on failure, or on the next start
_WS = " \t\n\r"
_DECODER = json.JSONDecoder()
_FIX = "make it a JSON file (or remove it, and `oda-sft data add` creates one)"


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


class RegistryFile:
    """The dataset_info.json of one dataset dir: where its bytes live, and how they are read and replaced."""

    def __init__(self, directory: Path) -> None:
        self.dir = directory
        self.path = directory / INFO_FILE

    @property
    def target(self) -> Path:
        """The file that holds the registry: the path itself, or the file a symbolic link points to."""
        return Path(os.path.realpath(self.path)) if self.path.is_symlink() else self.path

    def check(self) -> bool:
        """True when the registry exists; False when there is none yet; refuses anything else."""
        kind = files.describe(self.path)
        if kind is None:
            return True
        if kind.startswith("missing"):
            return False
        raise DatasetError(f"the dataset registry {self.path} is {kind}, not a regular file: {_FIX}")

    def load(self) -> tuple[str, dict[str, Any]]:
        """The registry's text and what it holds (an empty one when there is none yet), parsed once."""
        if not self.check():
            return "{}\n", {}
        with files.open_regular(self.path, "the dataset registry", _FIX) as handle:
            data = handle.read()
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise DatasetError(f"{self.path} is not valid UTF-8 (byte {exc.start}): save it as UTF-8") from None
        return text, parse_info(self.path, text)  # refuse to splice into a file that is not a registry

    def read_text(self) -> str:
        return self.load()[0]

    def read(self) -> dict[str, Any]:
        return self.load()[1]

    @contextmanager
    def locked(self) -> Iterator[None]:
        """The dataset dir's lock, and the linked registry's directory's too when it lives elsewhere."""
        with locked(self.dir):
            other = self.target.parent
            if other.resolve() == self.dir.resolve():
                yield
            else:
                with locked(other):
                    yield

    def temp_file(self) -> tuple[int, Path]:
        """A new hidden file next to the registry's real file, for an atomic replace."""
        target = self.target
        fd, name = tempfile.mkstemp(prefix=TEMP_PREFIX, suffix=".tmp", dir=target.parent)
        return fd, Path(name)

    def replace_with(self, temp: Path) -> None:
        """Move a fully written temp file over the registry (through a link), keeping its permissions."""
        target = self.target
        mode = target.stat().st_mode & 0o777 if target.exists() else 0o644
        os.chmod(temp, mode)
        os.replace(temp, target)
        fsync_dir(target.parent)

    def write_text(self, text: str) -> None:
        """Replace the registry atomically. Call under `locked`."""
        json.loads(text)  # a splice that broke the file is a bug; never write it
        fd, temp = self.temp_file()
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(text.encode("utf-8"))
                handle.flush()
                os.fsync(handle.fileno())
            self.replace_with(temp)
        except OSError as exc:
            raise OSError(exc.errno, exc.strerror, str(self.target)) from None
        finally:
            temp.unlink(missing_ok=True)


def fsync_dir(directory: Path) -> None:
    """Make a rename in `directory` durable (best effort: some filesystems refuse)."""
    with contextlib.suppress(OSError):
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


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


def parse_info(info_path: Path, text: str) -> dict[str, Any]:
    """dataset_info.json's name -> entry object, or a one-line error that says where it is broken."""
    try:
        parsed = json.loads(text)
    except json.JSONDecodeError as exc:
        raise DatasetError(
            f"{info_path} is not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg}): fix the file"
        ) from None
    except (ValueError, RecursionError):  # a 5000-digit number, or nesting a thousand levels deep
        raise DatasetError(
            f"{info_path} holds a number too long or values nested too deeply for a JSON parser: fix the file"
        ) from None
    if not isinstance(parsed, dict):
        raise DatasetError(f"{info_path} must hold a JSON object of name -> entry: fix the file")
    return parsed


def with_entry(text: str, name: str, entry: dict[str, Any]) -> str:
    """The registry text with entry `name` added or replaced; every other byte is kept."""
    updated = set_member(text, top_level_start(text), name, entry)
    json.loads(updated)  # a splice that broke the file is a bug; never write it
    return updated


def with_meta(info_path: Path, text: str, name: str, meta_key: str, meta: dict[str, Any]) -> str:
    """The registry text with entry[meta_key] = meta inside an existing entry, touching nothing else."""
    entry_start = member_start(text, top_level_start(text), name)
    if entry_start is None or text[entry_start] != "{":
        raise DatasetError(f"dataset {name} is not registered in {info_path}: register it with `oda-sft data add`")
    return set_member(text, entry_start, meta_key, meta)
