"""Stream records out of a JSON list or a JSON Lines file, without holding the file in memory.

Each record comes with its byte span, so a later pass can seek straight to it, and the
file's sha256 is computed on the same read. Malformed JSON is reported with line and column.
"""

from __future__ import annotations

import codecs
import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from oda_sft.errors import DatasetError

CHUNK = 1 << 22  # 4 MiB per read: large enough that json's C scanner dominates
_WS = " \t\n\r"
_FIX = "fix the file: it must hold a JSON list of records, or one JSON object per line (JSON Lines)"


@dataclass(frozen=True)
class RawRecord:
    index: int
    value: Any
    start: int  # byte offset of the record's first byte in the file
    end: int  # byte offset just past it


def read_span(handle: IO[bytes], start: int, end: int) -> Any:
    """One record, read back by the byte span a JsonStream reported."""
    handle.seek(start)
    return json.loads(handle.read(end - start))


class JsonStream:
    """Iterate once over a file's records; `sha256` and `size` are valid after the iteration ends."""

    def __init__(self, path: Path, chunk: int = CHUNK) -> None:
        self.path = path
        self.chunk = chunk
        self._hash = hashlib.sha256()
        self.size = 0
        self.kind = ""  # "array" or "lines", known once iteration starts
        self.finished = False

    @property
    def sha256(self) -> str:
        if not self.finished:
            raise RuntimeError("sha256 is known only after every record was read")
        return self._hash.hexdigest()

    def _error(self, where: str, problem: str) -> DatasetError:
        return DatasetError(f"{self.path}: malformed JSON at {where}: {problem}: {_FIX}")

    def __iter__(self) -> Iterator[RawRecord]:
        try:
            handle = self.path.open("rb")
        except OSError as exc:
            raise DatasetError(f"cannot read {self.path}: {exc.strerror}: check the path and its permissions") from None
        with handle:
            head = handle.read(self.chunk)
            if head.startswith(codecs.BOM_UTF8):
                raise DatasetError(
                    f"{self.path} starts with a UTF-8 byte-order mark, which the trainer's JSON reader rejects: "
                    "save it as UTF-8 without a BOM"
                )
            stripped = head.lstrip(_WS.encode())
            while not stripped:
                block = handle.read(self.chunk)
                if not block:
                    raise DatasetError(f"{self.path} is empty: an empty dataset cannot be trained on; add records")
                head += block
                stripped = head.lstrip(_WS.encode())
            first = stripped[:1]
            if first == b"[":
                self.kind = "array"
                yield from self._iter_array(handle, head)
            elif first == b"{":
                self.kind = "lines"
                yield from self._iter_lines(handle, head)
            else:
                line = head.split(first, 1)[0].count(b"\n") + 1
                raise self._error(f"line {line}", f"expected '[' or '{{' but found {first.decode(errors='replace')!r}")
        self.finished = True

    def _iter_lines(self, handle: IO[bytes], head: bytes) -> Iterator[RawRecord]:
        offset = 0
        index = 0
        pending = head
        lineno = 0
        while True:
            newline = pending.find(b"\n")
            while newline < 0:
                block = handle.read(self.chunk)
                if not block:
                    break
                pending += block
                newline = pending.find(b"\n", len(pending) - len(block))
            if newline < 0:
                if not pending:
                    break
                line, pending = pending, b""
            else:
                line, pending = pending[: newline + 1], pending[newline + 1 :]
            lineno += 1
            self._hash.update(line)
            self.size += len(line)
            start = offset
            offset += len(line)
            if not line.strip():
                continue
            try:
                value = json.loads(line)
            except json.JSONDecodeError as exc:
                raise self._error(f"line {lineno}, column {exc.colno}", exc.msg.removesuffix(" at")) from None
            except UnicodeDecodeError as exc:
                raise DatasetError(
                    f"{self.path}: line {lineno} is not valid UTF-8 (byte {start + exc.start}): save the file as UTF-8"
                ) from None
            yield RawRecord(index, value, start, offset)
            index += 1

    def _iter_array(self, handle: IO[bytes], head: bytes) -> Iterator[RawRecord]:
        decoder = json.JSONDecoder()
        utf8 = codecs.getincrementaldecoder("utf-8")()
        state = _ArrayState()
        eof = False

        def feed(data: bytes, final: bool) -> None:
            self._hash.update(data)
            self.size += len(data)
            try:
                state.buf += utf8.decode(data, final)
            except UnicodeDecodeError as exc:
                bad = self.size - len(data) + exc.start
                raise DatasetError(f"{self.path}: not valid UTF-8 at byte {bad}: save the file as UTF-8") from None

        def more(at_least: int = 0) -> bool:
            nonlocal eof
            if eof:
                return False
            data = handle.read(max(self.chunk, at_least))
            if not data:
                eof = True
                feed(b"", True)
                return False
            feed(data, False)
            return True

        def skip_ws() -> bool:
            """Move past whitespace; False at the end of the file."""
            while True:
                buf = state.buf
                n = len(buf)
                pos = state.pos
                while pos < n and buf[pos] in _WS:
                    pos += 1
                state.pos = pos
                if pos < n:
                    return True
                state.drop()
                if not more():
                    return False

        def fail(problem: str, pos: int | None = None) -> DatasetError:
            line, col = state.where(state.pos if pos is None else pos)
            return self._error(f"line {line}, column {col}", problem)

        feed(head, False)
        skip_ws()
        state.pos += 1  # the opening '[' (checked by the caller)
        index = 0
        while True:
            if not skip_ws():
                raise fail("the list is not closed: the file ends before its ']'")
            c = state.buf[state.pos]
            if c == "]":
                state.pos += 1
                break
            if index:
                if c != ",":
                    raise fail("expected ',' or ']' after a record")
                state.pos += 1
                if not skip_ws():
                    raise fail("the list is not closed: the file ends before its ']'")
                if state.buf[state.pos] == "]":
                    raise fail("trailing comma before ']'")
            while True:
                try:
                    value, end = decoder.raw_decode(state.buf, state.pos)
                except json.JSONDecodeError as exc:
                    # The record may just be cut by the end of what has been read so far.
                    cut = exc.pos >= len(state.buf) - 32 or exc.msg.startswith("Unterminated string")
                    if cut and more(len(state.buf) - state.pos):
                        continue
                    raise fail(exc.msg.removesuffix(" at"), exc.pos) from None
                if end == len(state.buf) and more():  # a number could continue in the next chunk
                    continue
                break
            start_byte = state.byte_at(state.pos)
            end_byte = state.byte_at(end)
            state.pos = end
            yield RawRecord(index, value, start_byte, end_byte)
            index += 1
            if state.pos > self.chunk:
                state.drop()
        if skip_ws():
            raise fail("extra data after the list's closing ']'")
        while more():  # hash the rest (whitespace only, checked above)
            state.drop()


class _ArrayState:
    """The decoded text window, with what is needed to map positions to bytes and lines."""

    def __init__(self) -> None:
        self.buf = ""
        self.pos = 0
        self.cursor_char = 0  # a position in buf whose byte offset is known
        self.cursor_byte = 0
        self.lines_before = 0  # newlines in text already dropped from buf
        self.col_before = 0  # characters after the last dropped newline

    def byte_at(self, pos: int) -> int:
        self.cursor_byte += len(self.buf[self.cursor_char : pos].encode("utf-8"))
        self.cursor_char = pos
        return self.cursor_byte

    def drop(self) -> None:
        """Forget text before pos, keeping byte and line bookkeeping exact."""
        if self.pos == 0:
            return
        self.byte_at(self.pos)
        dropped = self.buf[: self.pos]
        newlines = dropped.count("\n")
        if newlines:
            self.lines_before += newlines
            self.col_before = len(dropped) - dropped.rfind("\n") - 1
        else:
            self.col_before += len(dropped)
        self.buf = self.buf[self.pos :]
        self.pos = 0
        self.cursor_char = 0

    def where(self, pos: int) -> tuple[int, int]:
        newlines = self.buf.count("\n", 0, pos)
        if newlines:
            return self.lines_before + newlines + 1, pos - self.buf.rfind("\n", 0, pos)
        return self.lines_before + 1, self.col_before + pos + 1
