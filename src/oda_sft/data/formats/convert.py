"""Shapes public SFT datasets come in, detected from a record, and their conversion to Alpaca.

Every shape LLaMA-Factory documents converts exactly (the same prompt, response and system its
own converters would build) or is refused, record by record, with the reason: Alpaca; ShareGPT
(`conversations`, from/value, roles human/gpt/system); the OpenAI messages shape (role/content,
roles user/assistant/system, a leading system message); and v1's content parts
(`{"type": "text", "value": ...}`, with `loss_weight`). Nothing a trainer would read is dropped:
tool turns and tool calls, tool descriptions, media, reasoning fields, non-text parts and turns
whose loss weight Alpaca cannot express are refused. Keys no trainer reads (`id`, `name`, v1's
`extra_info`, ...) are left behind.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from oda_sft.data.formats import alpaca
from oda_sft.data.formats.alpaca import LONE_SURROGATE, SURROGATE_PROBLEM, Columns, Problem
from oda_sft.errors import UsageError

Record = dict[str, Any]

USER_ROLES = frozenset({"user", "human"})
ASSISTANT_ROLES = frozenset({"assistant", "gpt", "model", "chatgpt", "bot"})
SYSTEM_ROLES = frozenset({"system"})
# Turns LLaMA-Factory trains only as tool use (its sharegpt/openai formats with a tools column).
TOOL_ROLES = frozenset({"observation", "function_call", "function", "tool", "ipython"})
CHAT_KEYS = ("messages", "conversations")
PAIR_SHAPES = (("problem", "solution"), ("question", "answer"), ("prompt", "response"), ("prompt", "completion"))
MAP_TARGETS = alpaca.FIELDS
# Record keys a trainer reads that Alpaca has no place for: present and non-empty means refused.
UNCONVERTIBLE_KEYS = {
    "tools": "a tool description",
    "images": "images",
    "videos": "videos",
    "audios": "audio",
    "chosen": "a preference pair (chosen/rejected)",
    "rejected": "a preference pair (chosen/rejected)",
    "kto_tag": "a KTO label",
}
# Turn keys a trainer reads besides role and content.
TURN_KEYS = {
    "tool_calls": "a tool call",
    "function_call": "a function call",
    "reasoning_content": "reasoning content",
    "reasoning": "reasoning content",
}
# The loss weight each role trains with in Alpaca (responses, history included; never prompts).
DEFAULT_WEIGHT = {"user": 0.0, "system": 0.0, "assistant": 1.0}
TOOL_FIX = "Alpaca has no tool turns; the recipe trains Alpaca, so tool-use records are left out (--skip-invalid)"


class Unconvertible(Exception):
    """One record that cannot become Alpaca; carries the field and the reason."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(reason)
        self.field = field
        self.reason = reason


@dataclass(frozen=True)
class Shape:
    name: str  # e.g. "chat (messages)"
    convert: Callable[[Any], Record]
    alpaca: bool = False  # already Alpaca: records are checked, not rewritten


def _text(value: Any, field: str) -> str:
    """A turn's text: a string, or content parts that are all text.

    OpenAI parts (`{"type": "text", "text": ...}`) join with nothing between them, as Hugging Face
    chat templates render them; LLaMA-Factory v1 parts (`{"type": "text", "value": ...}`) join with
    a newline, as v1 renders them."""
    if isinstance(value, str):
        text = value
    elif isinstance(value, list):
        pieces: list[str] = []
        keys: set[str] = set()
        for i, part in enumerate(value):
            where = f"{field}[{i}]"
            if not isinstance(part, dict):
                raise Unconvertible(where, f"a content part must be an object, got {type(part).__name__}")
            kind = part.get("type")
            if kind != "text":
                raise Unconvertible(where, f"a {kind!r} content part has no Alpaca equivalent: only text parts convert")
            key = [k for k in ("text", "value") if part.get(k) is not None]
            if len(key) != 1 or not isinstance(part[key[0]], str):
                raise Unconvertible(where, "a text part needs one string, 'text' (OpenAI) or 'value' (v1)")
            keys.add(key[0])
            pieces.append(part[key[0]])
        if len(keys) > 1:
            raise Unconvertible(field, "content parts mix 'text' (OpenAI) and 'value' (LLaMA-Factory v1) parts")
        text = ("\n" if keys == {"value"} else "").join(pieces)
    else:
        got = "null" if value is None else type(value).__name__
        raise Unconvertible(field, f"must be text, got {got}")
    if LONE_SURROGATE.search(text):
        raise Unconvertible(field, SURROGATE_PROBLEM)
    return text


def _present(value: Any) -> bool:
    return value not in (None, "", [], {})


def _turn(turn: Any, where: str) -> tuple[str, str]:
    if not isinstance(turn, dict):
        raise Unconvertible(where, "a turn must be an object with role/content or from/value")
    # None counts as absent: Arrow-backed datasets give every turn every key seen in any turn.
    if turn.get("role") is not None or turn.get("content") is not None:
        role, content = turn.get("role"), turn.get("content")
        content_key = "content"
    elif turn.get("from") is not None or turn.get("value") is not None:
        role, content = turn.get("from"), turn.get("value")
        content_key = "value"
    else:
        raise Unconvertible(where, "a turn needs role/content or from/value")
    if not isinstance(role, str):
        raise Unconvertible(where, "the turn has no role")
    role = role.lower()
    for key, what in TURN_KEYS.items():
        if _present(turn.get(key)):
            raise Unconvertible(f"{where}.{key}", f"{what} has no Alpaca equivalent: {TOOL_FIX}")
    if role in USER_ROLES:
        kind = "user"
    elif role in ASSISTANT_ROLES:
        kind = "assistant"
    elif role in SYSTEM_ROLES:
        kind = "system"
    elif role in TOOL_ROLES:
        raise Unconvertible(where, f"a {role!r} turn (tool use): {TOOL_FIX}")
    else:
        raise Unconvertible(where, f"role {role!r} has no Alpaca equivalent (only system, user and assistant turns)")
    for key in ("loss_weight", "weight"):  # v1's per-turn weight; ShareGPT tools' 0/1 "weight"
        weight = turn.get(key)
        if weight is not None and weight != DEFAULT_WEIGHT[kind]:
            trained = "trains every response" if kind == "assistant" else "never trains on prompts"
            raise Unconvertible(f"{where}.{key}", f"{key} {weight} on a {kind} turn: Alpaca {trained}")
    return kind, _text(content, f"{where}.{content_key}")


def _record_keys(rec: Record) -> None:
    for key, what in UNCONVERTIBLE_KEYS.items():
        if _present(rec.get(key)):
            raise Unconvertible(key, f"{what} has no Alpaca equivalent")


def convert_chat(turns: Any, key: str, system: Any = None) -> Record:
    if not isinstance(turns, list):
        raise Unconvertible(key, f"must be a list of turns, got {type(turns).__name__}")
    parsed = [_turn(t, f"{key}[{i}]") for i, t in enumerate(turns)]
    systems: list[str] = []
    if system is not None:
        systems.append(_text(system, "system"))
    start = 0
    while start < len(parsed) and parsed[start][0] == "system":
        systems.append(parsed[start][1])
        start += 1
    if len(systems) > 1:
        raise Unconvertible(key, "more than one system prompt; Alpaca has one")
    body = parsed[start:]
    if not body:
        raise Unconvertible(key, "no user or assistant turns")
    for i, (kind, _) in enumerate(body):
        want = "user" if i % 2 == 0 else "assistant"
        if kind != want:
            where = f"{key}[{start + i}]"
            if kind == "system":
                raise Unconvertible(where, "a system turn after the conversation started")
            raise Unconvertible(where, f"expected a {want} turn, got {kind} (turns must alternate user, assistant)")
    if len(body) % 2:
        raise Unconvertible(key, "the chat ends on a user turn: there is no response to train on")
    pairs = [(body[i][1], body[i + 1][1]) for i in range(0, len(body), 2)]
    *history, (instruction, output) = pairs
    record: Record = {"instruction": instruction, "input": "", "output": output}
    if systems and systems[0]:
        record["system"] = systems[0]
    if history:
        record["history"] = [[q, a] for q, a in history]
    return record


def _chat_shape(key: str) -> Shape:
    def convert(rec: Any) -> Record:
        if not isinstance(rec, dict):
            raise Unconvertible("", "a record must be a JSON object")
        # Merged datasets mix the two names; either one is a chat.
        found = next((k for k in (key, *CHAT_KEYS) if rec.get(k) is not None), None)
        if found is None:
            raise Unconvertible(key, "missing")
        _record_keys(rec)
        return convert_chat(rec[found], found, rec.get("system"))

    return Shape(f"chat ({key})", convert)


def _pair_shape(prompt_key: str, answer_key: str) -> Shape:
    def convert(rec: Any) -> Record:
        if not isinstance(rec, dict):
            raise Unconvertible("", "a record must be a JSON object")
        for k in (prompt_key, answer_key):
            if k not in rec:
                raise Unconvertible(k, "missing")
        _record_keys(rec)
        prompt, answer = rec[prompt_key], rec[answer_key]
        if isinstance(prompt, list) and isinstance(answer, list):
            # TRL's conversational prompt/completion: two halves of one chat.
            return convert_chat(prompt + answer, f"{prompt_key}+{answer_key}", rec.get("system"))
        record: Record = {
            "instruction": _text(prompt, prompt_key),
            "input": "",
            "output": _text(answer, answer_key),
        }
        if rec.get("system"):
            record["system"] = _text(rec["system"], "system")
        return record

    return Shape(f"{prompt_key}/{answer_key}", convert)


def _alpaca_shape() -> Shape:
    def convert(rec: Any) -> Record:
        _record_keys(rec)
        # Only the fields LLaMA-Factory reads: stray keys of mixed types break its Arrow loader.
        return {k: rec[k] for k in alpaca.FIELDS if k in rec and rec[k] is not None}

    return Shape("alpaca", convert, alpaca=True)


def parse_map(items: list[str]) -> dict[str, str]:
    """`--map instruction=col,output=col` (repeatable) -> {alpaca field: source column}."""
    mapping: dict[str, str] = {}
    for item in items:
        for part in item.split(","):
            part = part.strip()
            if not part:
                continue
            target, sep, column = part.partition("=")
            target, column = target.strip(), column.strip()
            if not sep or not column:
                raise UsageError(
                    f"--map {part!r} is not FIELD=COLUMN: write e.g. --map instruction=query,output=answer"
                )
            if target not in MAP_TARGETS:
                raise UsageError(f"--map field {target!r} is not an Alpaca field: use {', '.join(MAP_TARGETS)}")
            if target in mapping:
                raise UsageError(f"--map sets {target} twice: give each field once")
            mapping[target] = column
    if mapping and not {"instruction", "output"} <= set(mapping):
        raise UsageError("--map needs at least instruction=COLUMN and output=COLUMN")
    return mapping


def _mapped_shape(mapping: Mapping[str, str]) -> Shape:
    def convert(rec: Any) -> Record:
        if not isinstance(rec, dict):
            raise Unconvertible("", "a record must be a JSON object")
        record: Record = {}
        for target, column in mapping.items():
            if column not in rec:
                if target in ("instruction", "output"):
                    raise Unconvertible(column, "missing")
                continue
            value = rec[column]
            if value is None:
                continue
            if target == "history":
                record["history"] = value  # checked with the Alpaca rules below
            else:
                record[target] = _text(value, column)
        record.setdefault("input", "")
        return record

    described = ",".join(f"{t}={c}" for t, c in mapping.items())
    return Shape(f"--map {described}", convert)


def detect(record: Any, mapping: Mapping[str, str] | None = None) -> Shape:
    """The shape of a dataset, from its first record (or --map)."""
    if mapping:
        return _mapped_shape(mapping)
    if not isinstance(record, dict):
        raise UsageError(
            f"cannot detect the dataset's shape: the first record is {type(record).__name__}, not an object: "
            "records must be JSON objects"
        )
    if "instruction" in record and "output" in record:
        return _alpaca_shape()
    for key in CHAT_KEYS:
        if isinstance(record.get(key), list):
            return _chat_shape(key)
    for prompt_key, answer_key in PAIR_SHAPES:
        if prompt_key in record and answer_key in record:
            return _pair_shape(prompt_key, answer_key)
    keys = ", ".join(sorted(record)[:12]) or "none"
    raise UsageError(
        f"cannot detect the dataset's shape from its keys ({keys}): pass --map instruction=COLUMN,output=COLUMN "
        "(and optionally input=, system=, history=)"
    )


def convert_record(shape: Shape, index: int, record: Any) -> tuple[Record | None, list[Problem]]:
    """(Alpaca record, []) or (None, problems)."""
    if shape.alpaca:
        problems = alpaca.check(index, record, Columns.full())
        if problems:
            return None, problems
        try:
            return shape.convert(record), []
        except Unconvertible as exc:
            return None, [Problem(index, exc.field, exc.reason)]
    try:
        converted = shape.convert(record)
    except Unconvertible as exc:
        return None, [Problem(index, exc.field, exc.reason)]
    problems = alpaca.check(index, converted, Columns.full())
    return (None, problems) if problems else (converted, [])
