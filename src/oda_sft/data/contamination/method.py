"""The overlap test: normalised word 8-grams, and normalised exact match for items too short for one.

Normalisation (docs/data.md says why): Unicode NFKC, lowercase, then the separators of open-instruct's
decontamination analyzer (space , . ? ! : ; ( ) " - newline and backslash) become spaces and runs of
whitespace collapse; math operators such as + = * / ^ stay part of the words. Text is handled as UTF-8
bytes so that ASCII text (most of any dataset) needs only one byte-table translation.

A training sample overlaps a benchmark item when its prompt side (system, history queries, instruction,
input: what open-r1 and open-instruct scan) holds one of the item's word 8-grams (open-r1's
scripts/decontaminate.py: n=8, any shared n-gram), or, for an item of fewer than 8 words, when one of
its prompts (instruction, input, both, or a history query) is the item exactly.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from oda_sft.data.formats.alpaca import Columns

N = 8
METHOD = f"word {N}-grams after NFKC, lowercase and open-instruct's separators; exact match below {N} words"
METHOD_VERSION = 1  # bump when the method changes: stored results of another version are recomputed
SEPARATORS = b' ,.?!:;()"-\\'
_BOUNDARY = b"\x00"  # joins samples in a batch: NUL is a separator, so no text token equals it
_BITS = 24  # a 16 MiB bitmap of n-gram hashes screens every position before the exact check
_MIX = np.int64(0x1E3779B97F4A7C15)


def _table() -> bytes:
    table = bytearray(range(256))
    for upper in range(ord("A"), ord("Z") + 1):
        table[upper] = upper + 32
    for byte in SEPARATORS + b"\t\n\r\x0b\x0c\x1c\x1d\x1e\x1f\x00":
        table[byte] = 32
    return bytes(table)


_TABLE = _table()


def normalise(text: str) -> bytes:
    """The text as normalised UTF-8: split() on it gives the words the method compares."""
    if not text.isascii():  # O(1) in CPython: most samples skip the Unicode work
        text = unicodedata.normalize("NFKC", text).lower()
        text = " ".join(text.split())  # Unicode whitespace, which the byte table does not see
    return text.encode("utf-8", "surrogatepass").translate(_TABLE)


def words(text: str) -> list[bytes]:
    return normalise(text).split()


def _text(value: Any) -> str:
    return value if isinstance(value, str) else ""


def sample_texts(record: Any, columns: Columns) -> tuple[str, list[str]]:
    """(the prompt side of a sample as one text, its prompts one by one): system, history queries,
    instruction and input. Responses are not scanned, as neither source does (docs/data.md)."""
    if not isinstance(record, dict):
        return "", []
    prompts: list[str] = []
    history = record.get(columns.history) if columns.history else None
    if isinstance(history, list):
        prompts += [_text(t[0]) for t in history if isinstance(t, list | tuple) and len(t) == 2]
    instruction = _text(record.get(columns.instruction)) if columns.instruction else ""
    given = _text(record.get(columns.input)) if columns.input else ""
    system = _text(record.get(columns.system)) if columns.system else ""
    text = "\n".join([system, *prompts, instruction, given])
    prompts += [p for p in (instruction, given, f"{instruction}\n{given}" if instruction and given else "") if p]
    return text, prompts


def _gram_hashes(token_hashes: npt.NDArray[np.int64]) -> npt.NDArray[np.int64]:
    """One 64-bit hash per window of N consecutive tokens (wrapping arithmetic)."""
    count = len(token_hashes) - N + 1
    if count <= 0:
        return np.empty(0, dtype=np.int64)
    grams = token_hashes[:count].copy()
    with np.errstate(over="ignore"):
        for k in range(1, N):
            grams *= _MIX
            grams += token_hashes[k : k + count]
    return grams


def _token_hashes(tokens: Sequence[bytes]) -> npt.NDArray[np.int64]:
    return np.fromiter(map(hash, tokens), dtype=np.int64, count=len(tokens))


@dataclass
class Index:
    """Every benchmark's n-grams and short items, built in the process that uses it (hash() of bytes is
    salted per process)."""

    names: list[str]
    grams: dict[tuple[bytes, ...], list[tuple[int, int]]] = field(default_factory=dict)  # -> (benchmark, item)
    short: dict[bytes, list[tuple[int, int]]] = field(default_factory=dict)
    bitmap: npt.NDArray[np.bool_] = field(default_factory=lambda: np.zeros(1 << _BITS, dtype=np.bool_))

    @classmethod
    def build(cls, benchmarks: Mapping[str, Sequence[str]]) -> Index:
        index = cls(list(benchmarks))
        for b, items in enumerate(benchmarks.values()):
            for i, item in enumerate(items):
                tokens = words(item)
                if not tokens:
                    continue
                if len(tokens) < N:
                    index.short.setdefault(b" ".join(tokens), []).append((b, i))
                    continue
                for at in range(len(tokens) - N + 1):
                    owners = index.grams.setdefault(tuple(tokens[at : at + N]), [])
                    if not owners or owners[-1] != (b, i):
                        owners.append((b, i))
        if index.grams:
            hashes = _gram_hashes_of(list(index.grams))
            index.bitmap[_buckets(hashes)] = True
        return index


def _gram_hashes_of(grams: list[tuple[bytes, ...]]) -> npt.NDArray[np.int64]:
    flat = _token_hashes([t for g in grams for t in g]).reshape(len(grams), N)
    out = flat[:, 0].copy()
    with np.errstate(over="ignore"):
        for k in range(1, N):
            out *= _MIX
            out += flat[:, k]
    return out


def _buckets(hashes: npt.NDArray[np.int64]) -> npt.NDArray[np.intp]:
    return (hashes.view(np.uint64) >> np.uint64(64 - _BITS)).astype(np.intp)


Match = tuple[int, int, int]  # (sample, benchmark, item)


def match_batch(index: Index, first: int, samples: Iterable[tuple[str, list[str]]]) -> tuple[int, list[Match]]:
    """Scan samples numbered from `first`; (how many, [(sample, benchmark, item) for each overlap])."""
    found: set[Match] = set()
    texts: list[bytes] = []
    for n, (text, prompts) in enumerate(samples):
        texts.append(normalise(text))
        if index.short:
            for prompt in prompts:
                for b, i in index.short.get(b" ".join(words(prompt)), ()):
                    found.add((first + n, b, i))
    if index.grams and texts:
        tokens = (b" " + _BOUNDARY + b" ").join(texts).split()
        hashes = _token_hashes(tokens)
        grams = _gram_hashes(hashes)
        candidates = np.flatnonzero(index.bitmap[_buckets(grams)])
        if len(candidates):
            bounds = np.flatnonzero(hashes == hash(_BOUNDARY))
            owner = np.searchsorted(bounds, candidates)
            for at, sample in zip(candidates.tolist(), owner.tolist(), strict=True):
                for b, i in index.grams.get(tuple(tokens[at : at + N]), ()):
                    found.add((first + sample, b, i))
    return len(texts), sorted(found)
