"""Stream records out of a JSON list or a JSON Lines file, without holding the file in memory.

Each record comes with its byte span, so a later pass can seek straight to it, and the
file's sha256 is computed on the same read. Malformed JSON (a key named twice too: unique_keys.py) is named by line.

Memory and time stay bounded whatever the file holds: one record may be at most
MAX_RECORD_BYTES, a run of whitespace at most MAX_WHITESPACE bytes, and numbers too long for
Python's integer parser or nesting too deep for its JSON parser are one-line errors.
"""

from __future__ import annotations

import codecs
import hashlib
import json
import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from oda_sft.data import files
from oda_sft.data.formats import unique_keys
from oda_sft.errors import DatasetError

CHUNK = 1 << 22  # 4 MiB per read: large enough that json's C scanner dominates
MAX_RECORD_BYTES = 64 << 20  # one record; parsing it takes a few times this in memory
MAX_WHITESPACE = 1 << 20  # no dataset needs a megabyte of blank space in a row
_READ_AHEAD = 1 << 16  # characters left in the buffer below which the next chunk is read before a record
_WS = " \t\n\r"
_NON_WS = re.compile(r"[^ \t\n\r]")
_NON_WS_BYTES = re.compile(rb"[^ \t\n\r]")
_SEPARATOR = re.compile(r"[ \t\n\r]*,[ \t\n\r]*(?=[^ \t\n\r\]])")  # between records, the next one read
# What a lone surrogate needs in JSON text: a \ud800-\udfff escape, or (JSON Lines only: json.loads decodes
# bytes with surrogatepass) a UTF-8-encoded surrogate. Searching for these is 10x cheaper than for the characters.
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")
_SURROGATE_ESCAPE_BYTES = re.compile(rb"\\u[dD][89a-fA-F]")
_SURROGATE_UTF8 = re.compile(rb"\xed[\xa0-\xbf]")
_FIX = "fix the file: it must hold a JSON list of records, or one JSON object per line (JSON Lines)"
READ_FIX = "give a .json or .jsonl file"


@dataclass(frozen=True)
class RawRecord:
    index: int
    value: Any
    start: int  # byte offset of the record's first byte in the file
    end: int  # byte offset just past it
    surrogate_free: bool = False  # its JSON text cannot decode to a lone surrogate (alpaca.check skips that scan)


def read_span(handle: IO[bytes], start: int, end: int) -> Any:
    """One record, read back by the byte span a JsonStream reported."""
    handle.seek(start)
    return json.loads(handle.read(end - start))


def _mib(n: int) -> str:
    return f"{n / (1 << 20):g} MiB"


def _value_problem(exc: Exception) -> tuple[str, str]:
    """(problem, fix) for the errors json raises besides JSONDecodeError."""
    if isinstance(exc, RecursionError):
        return (
            "lists or objects nested too deeply for Python's JSON parser (about a thousand levels)",
            "flatten that record, or drop it",
        )
    text = str(exc)
    if "integer string conversion" in text:
        return (
            "a number with more than 4300 digits, longer than Python's JSON parser reads",
            "write it as a string, or drop it",
        )
    return " ".join(text.split())[:200], _FIX


class JsonStream:
    """Iterate once over a file's records; `sha256` and `size` are valid after the iteration ends.

    With `handle`, records are read from that open file (from its start) and it is left open, so a
    caller can make a second pass over the very bytes this one hashed.
    """

    def __init__(
        self,
        path: Path,
        chunk: int = CHUNK,
        *,
        handle: IO[bytes] | None = None,
        max_record: int = MAX_RECORD_BYTES,
        max_whitespace: int = MAX_WHITESPACE,
    ) -> None:
        self.path = path
        self.chunk = chunk
        self.handle = handle
        self.max_record = max_record
        self.max_whitespace = max_whitespace
        self._hash = hashlib.sha256()
        self._hashing: threading.Thread | None = None  # sha256 releases the GIL: it runs beside the parsing
        self.size = 0
        self.kind = ""  # "array" or "lines", known once iteration starts
        self.finished = False
        self._source: IO[bytes] | None = None

    @property
    def sha256(self) -> str:
        if not self.finished:
            raise RuntimeError("sha256 is known only after every record was read")
        if self._hashing is not None:
            self._hashing.join()
        return self._hash.hexdigest()

    def _error(self, where: str, problem: str, fix: str = _FIX) -> DatasetError:
        return DatasetError(f"{self.path}: malformed JSON at {where}: {problem}: {fix}")

    def _too_large(self, index: int, line: int) -> DatasetError:
        return DatasetError(
            f"{self.path}: record #{index} (from line {line}) is larger than {_mib(self.max_record)}, the most "
            "oda-sft reads as one record (memory stays bounded): split or drop that record"
        )

    def _too_much_space(self, line: int) -> DatasetError:
        return DatasetError(
            f"{self.path}: more than {_mib(self.max_whitespace)} of whitespace in a row at line {line}: "
            "this is not a dataset file, or it is padded; strip the whitespace"
        )

    def _read(self, size: int) -> bytes:
        assert self._source is not None
        data = self._source.read(size)
        if self._hashing is not None:
            self._hashing.join()  # chunks are hashed in order
            self._hashing = None
        if len(data) < 1 << 20:
            self._hash.update(data)
        else:
            self._hashing = threading.Thread(target=self._hash.update, args=(data,), daemon=True)
            self._hashing.start()
        self.size += len(data)
        return data

    def __iter__(self) -> Iterator[RawRecord]:
        if self.handle is not None:
            self.handle.seek(0)
            self._source = self.handle
            yield from self._records()
        else:
            with files.open_regular(self.path, "data file", READ_FIX) as handle:
                self._source = handle
                yield from self._records()
        self.finished = True

    def _records(self) -> Iterator[RawRecord]:
        head = self._read(self.chunk)
        if head.startswith(codecs.BOM_UTF8):
            raise DatasetError(
                f"{self.path} starts with a UTF-8 byte-order mark, which the trainer's JSON reader rejects: "
                "save it as UTF-8 without a BOM"
            )
        lines_before = 0  # newlines in whitespace-only reads, dropped before `head`
        skipped = 0
        while (found := _NON_WS_BYTES.search(head)) is None:
            lines_before += head.count(b"\n")
            skipped += len(head)
            if skipped > self.max_whitespace:
                raise self._too_much_space(lines_before + 1)
            head = self._read(self.chunk)
            if not head:
                raise DatasetError(f"{self.path} is empty: an empty dataset cannot be trained on; add records")
        line = lines_before + head.count(b"\n", 0, found.start()) + 1
        if skipped + found.start() > self.max_whitespace:
            raise self._too_much_space(line)
        base = self.size - len(head)
        first = head[found.start() : found.start() + 1]
        if first == b"[":
            self.kind = "array"
            yield from self._iter_array(head, base, lines_before)
        elif first == b"{":
            self.kind = "lines"
            yield from self._iter_lines(head, base, lines_before)
        else:
            shown = first.decode(errors="replace")
            raise self._error(f"line {line}", f"expected '[' or '{{' but found {shown!r}")

    def _iter_lines(self, buf: bytes, offset: int, lineno: int) -> Iterator[RawRecord]:
        """offset: the file offset of buf[0]; lineno: lines before it."""
        pos = 0
        index = 0
        run = 0  # whitespace in a row, across reads
        indent = 0  # characters between the last newline and pos, for column numbers
        while True:
            found = _NON_WS_BYTES.search(buf, pos)
            space = buf[pos : found.start() if found else len(buf)]
            newline = space.rfind(b"\n")
            indent = len(space) - newline - 1 if newline >= 0 else indent + len(space)
            lineno += space.count(b"\n")
            run += len(space)
            if run > self.max_whitespace:
                raise self._too_much_space(lineno + 1)
            if found is None:
                more = self._read(self.chunk)
                if not more:
                    return
                offset += len(buf)
                buf, pos = more, 0
                continue
            run = 0
            pos = found.start()
            end = buf.find(b"\n", pos)
            while end < 0:
                if len(buf) - pos > self.max_record:
                    raise self._too_large(index, lineno + 1)
                more = self._read(self.chunk)
                if not more:
                    end = len(buf)
                    break
                searched = len(buf) - pos
                offset += pos
                buf, pos = buf[pos:] + more, 0
                end = buf.find(b"\n", searched)
            if end - pos > self.max_record:
                raise self._too_large(index, lineno + 1)
            start = offset + pos
            try:
                value = unique_keys.loads(buf[pos:end])
            except unique_keys.DuplicateKey as exc:
                raise exc.error(self.path, index, lineno + 1) from None
            except json.JSONDecodeError as exc:
                column = exc.colno + indent if exc.lineno == 1 else exc.colno
                raise self._error(f"line {lineno + exc.lineno}, column {column}", exc.msg.removesuffix(" at")) from None
            except UnicodeDecodeError as exc:
                bad = start + exc.start
                raise DatasetError(
                    f"{self.path}: line {lineno + 1} is not valid UTF-8 (byte {bad}): save the file as UTF-8"
                ) from None
            except (ValueError, RecursionError) as exc:
                raise self._error(f"line {lineno + 1}", *_value_problem(exc)) from None
            free = _utf8_object(buf, pos) and not (
                _SURROGATE_ESCAPE_BYTES.search(buf, pos, end) or _SURROGATE_UTF8.search(buf, pos, end)
            )
            pos = min(end + 1, len(buf))
            yield RawRecord(index, value, start, offset + pos, free)
            index += 1
            lineno += 1 if end < len(buf) else 0
            indent = 0

    def _iter_array(self, head: bytes, base: int, lines_before: int) -> Iterator[RawRecord]:
        decoder = unique_keys.DECODER
        utf8 = codecs.getincrementaldecoder("utf-8")()
        state = _ArrayState(base, lines_before)
        eof = False

        def feed(data: bytes, final: bool) -> None:
            held = len(utf8.getstate()[0])  # the start of a character cut by the last read, decoded with data
            try:
                text = utf8.decode(data, final)
            except UnicodeDecodeError as exc:
                bad = self.size - len(data) - held + exc.start
                raise DatasetError(f"{self.path}: not valid UTF-8 at byte {bad}: save the file as UTF-8") from None
            if text:  # positions stay valid when nothing is added (a failed parse still names them)
                state.drop()  # here, not after each record: each character is copied once
                state.buf += text

        def more(at_least: int = 0) -> bool:
            nonlocal eof
            if eof:
                return False
            data = self._read(max(self.chunk, at_least))
            if not data:
                eof = True
                feed(b"", True)
                return False
            feed(data, False)
            return True

        def skip_ws() -> bool:
            """Move past whitespace; False at the end of the file."""
            run = 0
            while True:
                found = _NON_WS.search(state.buf, state.pos)
                end = found.start() if found else len(state.buf)
                run += end - state.pos
                state.pos = end
                if run > self.max_whitespace:
                    raise self._too_much_space(state.where(state.pos)[0])
                if found is not None:
                    return True
                state.drop()
                if not more():
                    return False

        def fail(problem: str, pos: int | None = None, fix: str = _FIX) -> DatasetError:
            line, col = state.where(state.pos if pos is None else pos)
            return self._error(f"line {line}, column {col}", problem, fix)

        feed(head, False)
        skip_ws()
        state.pos += 1  # the opening '[' (checked by the caller)
        index = 0
        while True:
            sep = _SEPARATOR.match(state.buf, state.pos) if index else None
            if sep is not None and sep.end() - state.pos <= self.max_whitespace:
                state.pos = sep.end()  # the common case in one call: ',' and the next record in the buffer
            else:
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
            start_byte = state.byte_at_record(state.pos)
            if len(state.buf) - state.pos < _READ_AHEAD:
                more()  # before the record is cut: a failed parse costs a pass over the whole buffer
            while True:
                try:
                    value, end = decoder.raw_decode(state.buf, state.pos)
                except json.JSONDecodeError as exc:
                    # The record may just be cut by the end of what has been read so far.
                    cut = exc.pos >= len(state.buf) - 32 or exc.msg.startswith("Unterminated string")
                    if cut and self.size - start_byte > self.max_record:
                        raise self._too_large(index, state.where(state.pos)[0]) from None
                    if cut and more(len(state.buf) - state.pos):
                        continue
                    raise fail(exc.msg.removesuffix(" at"), exc.pos) from None
                except unique_keys.DuplicateKey as exc:
                    raise exc.error(self.path, index, state.where(state.pos)[0]) from None
                except (ValueError, RecursionError) as exc:
                    problem, fix = _value_problem(exc)
                    raise fail(problem, fix=fix) from None
                if end == len(state.buf) and more():  # a number could continue in the next chunk
                    continue
                break
            end_byte = state.byte_at(end)
            if end_byte - start_byte > self.max_record:
                raise self._too_large(index, state.where(state.pos)[0])
            free = _SURROGATE_ESCAPE.search(state.buf, state.pos, end) is None  # the text is strict UTF-8
            state.pos = end
            yield RawRecord(index, value, start_byte, end_byte, free)
            index += 1
        if skip_ws():
            raise fail("extra data after the list's closing ']'")


def _utf8_object(buf: bytes, pos: int) -> bool:
    """The line at pos is an object json.loads reads as UTF-8 (no BOM; a zero byte 2nd means UTF-16/32)."""
    return buf[pos : pos + 1] == b"{" and buf[pos + 1 : pos + 2] not in (b"\0", b"")


class _ArrayState:
    """The decoded text window, with what is needed to map positions to bytes and lines."""

    def __init__(self, base: int, lines_before: int) -> None:
        self.buf = ""
        self.pos = 0
        self.cursor_char = 0  # a position in buf whose byte offset is known
        self.cursor_byte = base
        self.lines_before = lines_before  # newlines in text already dropped from buf
        self.col_before = 0  # characters after the last dropped newline

    def byte_at(self, pos: int) -> int:
        self.cursor_byte += len(self.buf[self.cursor_char : pos].encode("utf-8", "surrogatepass"))
        self.cursor_char = pos
        return self.cursor_byte

    def byte_at_record(self, pos: int) -> int:
        """byte_at for a record's start: only '[', ',' and JSON whitespace lie since the last record, 1 byte each."""
        self.cursor_byte += pos - self.cursor_char
        self.cursor_char = pos
        return self.cursor_byte

    def drop(self) -> None:
        """Forget text before pos, keeping byte and line bookkeeping exact."""
        if self.pos == 0:
            return
        self.byte_at(self.pos)
        newlines = self.buf.count("\n", 0, self.pos)
        if newlines:
            self.lines_before += newlines
            self.col_before = self.pos - self.buf.rfind("\n", 0, self.pos) - 1
        else:
            self.col_before += self.pos
        self.buf = self.buf[self.pos :]
        self.pos = 0
        self.cursor_char = 0

    def where(self, pos: int) -> tuple[int, int]:
        newlines = self.buf.count("\n", 0, pos)
        if newlines:
            return self.lines_before + newlines + 1, pos - self.buf.rfind("\n", 0, pos)
        return self.lines_before + 1, self.col_before + pos + 1
