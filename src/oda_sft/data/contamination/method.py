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

from oda_sft.data.contamination.spec import N
from oda_sft.data.formats.alpaca import Columns

SEPARATORS = b' ,.?!:;()"-\\'
_BOUNDARY = b"\x00"  # joins samples in a batch: NUL is a separator, so no text token equals it
_BITS = 27  # a 16 MiB bitmap of n-gram hashes screens every position before the sorted search
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
    """Every benchmark's n-grams as sorted 64-bit hashes with their (benchmark, item), and its short items.
    Built in the process that uses it: hash() of bytes is salted per process. A hash hit is confirmed
    against the item's own words, so a collision never counts; memory is 16 bytes per n-gram plus a
    16 MiB bitmap that screens every position before the sorted search."""

    names: list[str]
    items: list[Sequence[str]]
    hashes: npt.NDArray[np.int64]  # sorted
    owners: npt.NDArray[np.int64]  # benchmark << 32 | item, beside each hash
    bitmap: npt.NDArray[np.uint8]  # 1 << _BITS bits: set where some n-gram hashes
    short: dict[bytes, list[tuple[int, int]]] = field(default_factory=dict)
    _grams: dict[tuple[int, int], set[tuple[bytes, ...]]] = field(default_factory=dict)

    @classmethod
    def build(cls, benchmarks: Mapping[str, Sequence[str]]) -> Index:
        short: dict[bytes, list[tuple[int, int]]] = {}
        texts: list[bytes] = []
        owners: list[int] = []
        for b, items in enumerate(benchmarks.values()):
            for i, item in enumerate(items):
                text = normalise(item)
                count = len(text.split())
                if count >= N:
                    texts.append(text)
                    owners.append(b << 32 | i)
                elif count:
                    short.setdefault(b" ".join(text.split()), []).append((b, i))
        # One pass over every item at once, as over a batch of samples: numpy calls per item would dominate.
        tokens = (b" " + _BOUNDARY + b" ").join(texts).split()
        token_hashes = _token_hashes(tokens)
        grams = _gram_hashes(token_hashes)
        bounds = np.flatnonzero(token_hashes == hash(_BOUNDARY))
        whose = np.asarray(owners, dtype=np.int64)[np.searchsorted(bounds, np.arange(len(grams)))]
        crossing = np.zeros(len(grams), dtype=np.bool_)  # windows that hold a boundary span two items
        for k in range(N):
            starts = bounds - k
            crossing[starts[(starts >= 0) & (starts < len(grams))]] = True
        grams, whose = grams[~crossing], whose[~crossing]
        order = np.argsort(grams, kind="stable")
        bitmap = np.zeros(1 << (_BITS - 3), dtype=np.uint8)
        buckets = _buckets(grams)
        np.bitwise_or.at(bitmap, buckets >> 3, (1 << (buckets & 7)).astype(np.uint8))
        return cls(list(benchmarks), [list(v) for v in benchmarks.values()], grams[order], whose[order], bitmap, short)

    def screen(self, grams: npt.NDArray[np.int64]) -> npt.NDArray[np.intp]:
        """Positions whose hash is some benchmark n-gram's."""
        if not len(self.hashes) or not len(grams):
            return np.empty(0, dtype=np.intp)
        buckets = _buckets(grams)
        maybe = np.flatnonzero((self.bitmap[buckets >> 3] >> (buckets & 7).astype(np.uint8)) & 1)
        at = np.searchsorted(self.hashes, grams[maybe])
        hit = self.hashes[np.minimum(at, len(self.hashes) - 1)] == grams[maybe]
        found: npt.NDArray[np.intp] = maybe[hit]
        return found

    def owners_of(self, gram_hash: int, gram: tuple[bytes, ...]) -> list[tuple[int, int]]:
        """The (benchmark, item) pairs that really hold this n-gram."""
        left = int(np.searchsorted(self.hashes, gram_hash, side="left"))
        right = int(np.searchsorted(self.hashes, gram_hash, side="right"))
        found = []
        for packed in self.owners[left:right].tolist():
            key = (packed >> 32, packed & 0xFFFFFFFF)
            if key not in self._grams:
                tokens = words(self.items[key[0]][key[1]])
                self._grams[key] = {tuple(tokens[k : k + N]) for k in range(len(tokens) - N + 1)}
            if gram in self._grams[key]:
                found.append(key)
        return found


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
    if len(index.hashes) and texts:
        tokens = (b" " + _BOUNDARY + b" ").join(texts).split()
        hashes = _token_hashes(tokens)
        grams = _gram_hashes(hashes)
        candidates = index.screen(grams)
        if len(candidates):
            bounds = np.flatnonzero(hashes == hash(_BOUNDARY))
            owner = np.searchsorted(bounds, candidates)
            for at, sample in zip(candidates.tolist(), owner.tolist(), strict=True):
                for b, i in index.owners_of(int(grams[at]), tuple(tokens[at : at + N])):
                    found.add((first + sample, b, i))
    return len(texts), sorted(found)
