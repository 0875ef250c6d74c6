"""Would LLaMA-Factory's loader read every record of a file with one schema?

LLaMA-Factory loads JSON through `datasets`, which builds one Arrow column per key. A key whose
values change type between records (a number in one, a string in another) makes that loader fail
seconds into training (`ArrowInvalid: ... changed from number to string`). The rules, checked
against `datasets.load_dataset("json")`: null fits anything; integers and floats share a column;
lists merge their elements; objects merge key by key; any other mix (bool and number, string and
number, list and object) fails. Only keys the conversion would keep matter: a file oda-sft rewrites
keeps the Alpaca fields alone, so this is checked for files registered in place.
"""

from __future__ import annotations

from typing import Any

from oda_sft.data.formats.alpaca import LONE_SURROGATE, SURROGATE_PROBLEM, Problem

MAX_DEPTH = 64

# A column's type: "bool", "number", "string", ("list", element or None), ("object", {key: type}).
Type = Any


def _name(t: Type) -> str:
    if isinstance(t, tuple):
        return "a list" if t[0] == "list" else "an object"
    return {"bool": "a boolean", "number": "a number", "string": "a string"}[t]


class _Conflict(Exception):
    def __init__(self, where: str, problem: str) -> None:
        super().__init__(problem)
        self.where = where
        self.problem = problem


def _merge(old: Type | None, value: Any, where: str, depth: int) -> Type | None:
    if value is None:
        return old
    if depth > MAX_DEPTH:
        raise _Conflict(where, f"nested more than {MAX_DEPTH} levels deep")
    if isinstance(value, bool):
        new: Type = "bool"
    elif isinstance(value, int | float):
        new = "number"
    elif isinstance(value, str):
        if LONE_SURROGATE.search(value):
            raise _Conflict(where, SURROGATE_PROBLEM)
        new = "string"
    elif isinstance(value, list):
        element = old[1] if isinstance(old, tuple) and old[0] == "list" else None
        for item in value:
            element = _merge(element, item, f"{where}[]", depth + 1)
        new = ("list", element)
    elif isinstance(value, dict):
        fields = dict(old[1]) if isinstance(old, tuple) and old[0] == "object" else {}
        for key, item in value.items():
            fields[key] = _merge(fields.get(key), item, f"{where}.{key}", depth + 1)
        new = ("object", fields)
    else:
        raise _Conflict(where, f"holds {type(value).__name__}")
    if old is not None and _kind(old) != _kind(new):
        raise _Conflict(where, f"is {_name(new)} here but {_name(old)} in an earlier record")
    return new


def _kind(t: Type) -> str:
    return str(t[0]) if isinstance(t, tuple) else str(t)


class SchemaCheck:
    """Feed records in order; each returns the problems that would break the loader's one schema."""

    def __init__(self, ignore: frozenset[str] = frozenset()) -> None:
        self.ignore = ignore  # keys checked elsewhere (the Alpaca fields)
        self.columns: dict[str, Type] = {}

    def add(self, index: int, record: Any) -> list[Problem]:
        if not isinstance(record, dict):
            return []
        for key, value in record.items():
            if key in self.ignore:
                continue
            try:
                self.columns[key] = _merge(self.columns.get(key), value, key, 0)
            except _Conflict as exc:
                return [Problem(index, exc.where, exc.problem)]
            except RecursionError:
                return [Problem(index, key, "nested too deeply")]
        return []
