"""Alpaca records: validation, and the turns LLaMA-Factory builds from them.

`turns` mirrors LLaMA-Factory 0.9.4's AlpacaDatasetConverter, so lengths measured here are
the lengths its preprocessing sees.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from oda_sft.errors import DatasetError

FIELDS = ("instruction", "input", "output", "system", "history")
DEFAULT_SHOWN = 10
# A JSON "\ud800" escape with no partner decodes to a lone surrogate: no UTF-8 writer or tokenizer takes it.
LONE_SURROGATE = re.compile("[\ud800-\udfff]")
SURROGATE_PROBLEM = "holds a lone surrogate (a \\ud800-\\udfff escape without its pair), which is not valid Unicode"


@dataclass(frozen=True)
class Columns:
    """Which record keys LLaMA-Factory reads for one dataset_info.json entry."""

    instruction: str | None = "instruction"
    input: str | None = "input"
    output: str | None = "output"
    system: str | None = None
    history: str | None = None

    @classmethod
    def full(cls) -> Columns:
        return cls(system="system", history="history")

    @classmethod
    def from_entry(cls, name: str, entry: Mapping[str, Any]) -> Columns:
        formatting = entry.get("formatting", "alpaca")
        if formatting != "alpaca":
            raise DatasetError(
                f"dataset {name} is registered with formatting {formatting!r}; oda-sft measures alpaca entries: "
                f"convert it with `oda-sft data add {name} SOURCE --force`"
            )
        columns = entry.get("columns")
        if columns is None:
            return cls()  # LLaMA-Factory's defaults: no system, no history
        if not isinstance(columns, dict):
            raise DatasetError(f"dataset {name}: 'columns' must be an object in dataset_info.json: fix the entry")

        def col(key: str) -> str | None:
            value = columns.get(key)
            return value if isinstance(value, str) and value else None

        return cls(col("prompt"), col("query"), col("response"), col("system"), col("history"))

    def entry_columns(self) -> dict[str, str]:
        """The "columns" object for dataset_info.json."""
        pairs = {
            "prompt": self.instruction,
            "query": self.input,
            "response": self.output,
            "system": self.system,
            "history": self.history,
        }
        return {k: v for k, v in pairs.items() if v is not None}


@dataclass(frozen=True)
class Problem:
    index: int
    field: str
    problem: str

    def __str__(self) -> str:
        return f"#{self.index} {self.field}: {self.problem}" if self.field else f"#{self.index}: {self.problem}"


@dataclass
class ProblemLog:
    """The first few problems in full, and a count of every bad record."""

    shown: int = DEFAULT_SHOWN
    first: list[Problem] = field(default_factory=list)
    bad_records: int = 0
    reasons: dict[str, int] = field(default_factory=dict)

    def add(self, problems: list[Problem]) -> None:
        if not problems:
            return
        self.bad_records += 1
        for p in problems:
            reason = f"{p.field}: {p.problem}" if p.field else p.problem
            # Counted by kind, so a summary of thousands of skips stays one line.
            kind = reason.split(" (", 1)[0]
            self.reasons[kind] = self.reasons.get(kind, 0) + 1
        room = self.shown - len(self.first)
        if room > 0:
            self.first.extend(problems[:room])

    def summary(self) -> str:
        listed = "; ".join(str(p) for p in self.first)
        more = self.bad_records - len({p.index for p in self.first})
        return listed + (f"; and {more:,} more" if more > 0 else "")

    def reason_counts(self) -> str:
        ordered = sorted(self.reasons.items(), key=lambda kv: (-kv[1], kv[0]))
        return "; ".join(f"{n:,} x {reason}" for reason, n in ordered)


def _type_name(value: Any) -> str:
    if value is None:
        return "null"
    return {
        bool: "a boolean",
        int: "a number",
        float: "a number",
        str: "a string",
        list: "a list",
        dict: "an object",
    }.get(type(value), type(value).__name__)


def check(index: int, record: Any, columns: Columns, *, surrogate_free: bool = False) -> list[Problem]:
    """Every problem of one record; [] when LLaMA-Factory can train on it as intended.

    surrogate_free: the caller knows no text holds a lone surrogate (jsonstream.RawRecord), so the scan
    for them, the costliest part of validating, is skipped."""
    if not isinstance(record, dict):
        return [Problem(index, "", f"a record must be a JSON object, got {_type_name(record)}")]
    problems: list[Problem] = []
    for key in (columns.instruction, columns.output):
        if key is None:
            continue
        if key not in record:
            problems.append(Problem(index, key, "missing"))
        elif not isinstance(record[key], str):
            problems.append(Problem(index, key, f"must be a string, got {_type_name(record[key])}"))
    for key in (columns.input, columns.system):
        if key is not None and record.get(key) is not None and not isinstance(record[key], str):
            problems.append(Problem(index, key, f"must be a string or absent, got {_type_name(record[key])}"))
    if columns.history is not None and record.get(columns.history) is not None:
        history = record[columns.history]
        if not isinstance(history, list):
            problems.append(
                Problem(
                    index,
                    columns.history,
                    f"must be a list of [instruction, response] pairs, got {_type_name(history)}",
                )
            )
        else:
            for i, pair in enumerate(history):
                if not (isinstance(pair, list) and len(pair) == 2 and all(isinstance(x, str) for x in pair)):
                    got = f"a list of {len(pair)}" if isinstance(pair, list) else _type_name(pair)
                    if isinstance(pair, list) and len(pair) == 2:
                        got = "a pair holding " + " and ".join(_type_name(x) for x in pair)
                    problems.append(
                        Problem(index, f"{columns.history}[{i}]", f"must be a pair of 2 strings, got {got}")
                    )
                    break
    if problems:
        return problems
    if not surrogate_free and (problems := _surrogates(index, record, columns)):
        return problems
    output = record.get(columns.output) if columns.output else None
    if output == "":
        problems.append(Problem(index, columns.output or "output", "is empty: there is nothing to train on"))
    prompt = [record.get(k) for k in (columns.instruction, columns.input) if k is not None]
    if not any(prompt):
        problems.append(
            Problem(index, columns.instruction or "instruction", "is empty and so is input: the prompt is empty")
        )
    return problems


def _surrogates(index: int, record: dict[str, Any], columns: Columns) -> list[Problem]:
    problems: list[Problem] = []
    for key in (columns.instruction, columns.input, columns.output, columns.system):
        text = record.get(key) if key is not None else None
        if isinstance(text, str) and LONE_SURROGATE.search(text):
            problems.append(Problem(index, key or "", SURROGATE_PROBLEM))
    history = record.get(columns.history) if columns.history is not None else None
    if isinstance(history, list) and any(LONE_SURROGATE.search(x) for pair in history for x in pair):
        problems.append(Problem(index, columns.history or "history", SURROGATE_PROBLEM))
    return problems


def turns(record: Mapping[str, Any], columns: Columns) -> tuple[str, list[tuple[str, str]]]:
    """(system, [(user, assistant), ...]) exactly as LLaMA-Factory's alpaca converter builds them."""
    pairs: list[tuple[str, str]] = []
    if columns.history is not None and isinstance(record.get(columns.history), list):
        pairs.extend((q, a) for q, a in record[columns.history])
    query = [record[k] for k in (columns.instruction, columns.input) if k is not None and record.get(k)]
    output = record.get(columns.output) if columns.output else None
    pairs.append(("\n".join(query), output if isinstance(output, str) else ""))
    system = record.get(columns.system) if columns.system is not None else None
    return (system if isinstance(system, str) else ""), pairs


def invalid_error(label: str, log: ProblemLog, total: int, fix: str) -> DatasetError:
    return DatasetError(
        f"{label}: {log.bad_records:,} of {total:,} records are not valid Alpaca ({log.summary()}): {fix}"
    )
