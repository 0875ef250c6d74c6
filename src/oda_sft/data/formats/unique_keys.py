"""JSON parsing that refuses an object naming a key twice.

json keeps the last of two values for one key without a word (`{"instruction": "A", "instruction": "B"}`
reads as "B"), so one would be lost silently. The check rides on the parser's object hook: one call per
object, measured within noise of plain json (benchmarks/json_stream.py), with no second pass.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from oda_sft.errors import DatasetError


class DuplicateKey(Exception):
    def __init__(self, key: str) -> None:
        super().__init__(key)
        self.key = key

    def error(self, path: Path, index: int, line: int) -> DatasetError:
        return DatasetError(
            f"{path}: record #{index} (from line {line}) names the key {self.key!r} twice: JSON readers keep the "
            "last value without a word, so the other would be lost; remove one of them"
        )


def _unique(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    obj = dict(pairs)
    if len(obj) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise DuplicateKey(key)
            seen.add(key)
    return obj


# One decoder for every record: the hook costs a call per object, not a decoder per record.
DECODER = json.JSONDecoder(object_pairs_hook=_unique)


def loads(data: bytes) -> Any:
    """json.loads(data) (the same encoding detection, surrogatepass), refusing duplicate keys."""
    return DECODER.decode(data.decode(json.detect_encoding(data), "surrogatepass"))
