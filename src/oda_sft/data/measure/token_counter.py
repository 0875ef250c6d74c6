"""Which tokenizer measures a dataset, and the counter that gives exact `default`-template lengths.

A sample's length is what LLaMA-Factory 0.9.4's supervised preprocessing produces before
truncation: each template slot is encoded on its own (`Template._convert_elements_to_ids`),
so the length is a sum over pieces. For the `default` template a sample is

    [System: {system}] <eos> \\n            (first turn only, when there is a system prompt)
    Human: {query} <eos> \\nAssistant:      (every turn)
    {response} <eos> \\n                    (every turn; an empty response encodes to nothing)

The 2025 recipe era trains with 0.9.2's `default` (template.py:809-813 at v0.9.2; train/patches/template_2025.py),
which has no <eos> after the user and system turns: `Human: {query}\\nAssistant:` and `System: {system}\\n` are
each one slot, encoded whole. Its lengths are recorded under a key of their own (tokenizer_ident).

Byte-level BPE never makes more tokens than the UTF-8 bytes of (normalised) text, so
`LengthCounter.bound` gives an upper bound without tokenizing.

tokenizers (and, through data/sources/hub.py, huggingface_hub) are imported inside the functions that need them.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from oda_sft import tiny_model
from oda_sft.eras import CURRENT, RecipeEra
from oda_sft.errors import DatasetError, UsageError
from oda_sft.presets import ModelPreset

if TYPE_CHECKING:
    from tokenizers import Tokenizer

_SAMPLE_HEAD = "Human: "
_SYSTEM_HEAD = "System: "
_USER_TAIL = "\nAssistant:"
# The key a 2025-era measurement is stored under, after the tokenizer's (a 2026 one keeps the bare key).
_ERA_KEY = {"2025": " (recipe 2025)"}
_UNICODE_FORMS = frozenset({"NFC", "NFD", "NFKC", "NFKD", "Lowercase"})

Turns = tuple[str, list[tuple[str, str]]]


@dataclass(frozen=True)
class TokenizerRef:
    ident: str  # recorded with a cached analysis: an HF id, "tiny:<dir>", or a local directory
    label: str  # for messages


def tokenizer_ident(preset: ModelPreset, model_path: Path | None = None, era: RecipeEra = CURRENT) -> str:
    """What a measurement for this preset (and recipe era: the template differs) is recorded under; cheap."""
    if model_path is not None:
        ident = str(model_path.expanduser().resolve())
    elif preset.embedded:
        ident = f"tiny:{tiny_model.model_dir().name}"
    else:
        ident = preset.base_model
    return ident + _ERA_KEY.get(era, "")


def tokenizer_file(
    preset: ModelPreset, model_path: Path | None = None, era: RecipeEra = CURRENT
) -> tuple[TokenizerRef, Path]:
    """The tokenizer.json to measure with: --model-path, the embedded tiny model, or the HF cache."""
    ref, path = _tokenizer_file(preset, model_path)
    return TokenizerRef(tokenizer_ident(preset, model_path, era), ref.label + _ERA_KEY.get(era, "")), path


def _tokenizer_file(preset: ModelPreset, model_path: Path | None) -> tuple[TokenizerRef, Path]:
    ident = tokenizer_ident(preset, model_path)
    if model_path is not None:
        path = model_path.expanduser() / "tokenizer.json"
        if not path.is_file():
            raise UsageError(
                f"{model_path} has no tokenizer.json: oda-sft measures with the fast tokenizer; save one there "
                "with AutoTokenizer.from_pretrained(...).save_pretrained(DIR)"
            )
        return TokenizerRef(ident, f"{preset.name} ({model_path})"), path
    if preset.embedded:
        return TokenizerRef(ident, "tiny"), tiny_model.ensure_model() / "tokenizer.json"
    repo = preset.base_model
    label = f"{preset.name} ({repo})"
    # Through data/sources/hub.py, like a dataset fetch: one connection attempt, not huggingface_hub's retries.
    from oda_sft.data.sources import hub

    cached = hub.cached_file(repo, "tokenizer.json")
    if cached is not None:
        return TokenizerRef(ident, label), cached
    fix = (
        f"download it where there is internet (`hf download {repo} tokenizer.json tokenizer_config.json`) "
        "or pass --model-path with a local model directory"
    )
    if hub.offline():
        raise DatasetError(f"the {label} tokenizer is not in the Hugging Face cache and HF_HUB_OFFLINE is set: {fix}")
    snapshot = hub.resolve(repo, None, preset.name, repo_type="model", way_out=fix)
    if "tokenizer.json" not in snapshot.files:
        raise DatasetError(
            f"{repo} at {snapshot.sha[:12]} has no tokenizer.json, and oda-sft measures with the fast tokenizer: "
            "pass --model-path with a local model directory that has one"
        )
    return TokenizerRef(ident, label), hub.download(snapshot, "tokenizer.json")


def _is_byte_level(spec: dict[str, Any]) -> bool:
    def has_byte_level(node: Any) -> bool:
        if not isinstance(node, dict):
            return False
        if node.get("type") == "ByteLevel":
            return True
        return any(has_byte_level(n) for n in node.get("pretokenizers", []) or [])

    model = spec.get("model") or {}
    return model.get("type") == "BPE" and not model.get("byte_fallback") and has_byte_level(spec.get("pre_tokenizer"))


def _ascii_unchanged(normalizer: dict[str, Any] | None) -> bool:
    """True when the normaliser cannot change the byte length of ASCII text."""
    if normalizer is None:
        return True
    if normalizer.get("type") == "Sequence":
        return all(_ascii_unchanged(n) for n in normalizer.get("normalizers", []))
    return normalizer.get("type") in _UNICODE_FORMS


class LengthCounter:
    """Exact `default`-template lengths, and an upper bound that needs no tokenizing."""

    def __init__(self, tokenizer: Tokenizer, ref: TokenizerRef, era: RecipeEra = CURRENT) -> None:
        self.ref = ref
        self.tokenizer = tokenizer
        spec = json.loads(tokenizer.to_str())
        self.byte_level = _is_byte_level(spec)
        self._normalizer = tokenizer.normalizer if spec.get("normalizer") else None
        self._ascii_safe = _ascii_unchanged(spec.get("normalizer"))
        self._encode_batch = getattr(tokenizer, "encode_batch_fast", tokenizer.encode_batch)
        # The constant slots of the template, each encoded on its own as LLaMA-Factory does.
        user_tail = self._count(_USER_TAIL)
        newline = self._count("\n")
        if era == "2025":  # 0.9.2's: the tails are inside the user's and the system's one slot (pieces)
            self.per_turn = 1 + newline  # ... <eos> \n
            self.per_system = 0
            self._user_end, self._system_end = _USER_TAIL, "\n"
        else:
            self.per_turn = 1 + user_tail + 1 + newline  # <eos> \nAssistant: ... <eos> \n
            self.per_system = 1 + newline  # <eos> \n
            self._user_end = self._system_end = ""

    @classmethod
    def load(cls, preset: ModelPreset, model_path: Path | None = None, era: RecipeEra = CURRENT) -> LengthCounter:
        ref, path = tokenizer_file(preset, model_path, era)
        from tokenizers import Tokenizer

        try:
            return cls(Tokenizer.from_file(str(path)), ref, era)
        except Exception as exc:  # a corrupt or unsupported tokenizer.json
            raise DatasetError(f"cannot load the tokenizer {path}: {exc}: re-download or re-save it") from None

    def _count(self, text: str) -> int:
        return len(self.tokenizer.encode(text, add_special_tokens=False).ids)

    def _nbytes(self, text: str) -> int:
        if text.isascii() and self._ascii_safe:  # isascii() is O(1) on CPython's str
            return len(text)
        if self._normalizer is not None:
            text = self._normalizer.normalize_str(text)
        return len(text.encode("utf-8"))

    @functools.cached_property
    def longest_token(self) -> int:
        """The most bytes one token stands for: every sample of n text bytes has at least n / this tokens.

        Byte-level BPE spells each byte as one character, so a token's length in characters is what
        it covers; any other vocabulary is counted in UTF-8 bytes, which can only overstate it."""
        vocab = self.tokenizer.get_vocab(with_added_tokens=False)
        if self.byte_level:
            longest = max((len(t) for t in vocab), default=1)
        else:
            longest = max((len(t.encode("utf-8")) for t in vocab), default=1)
        added = self.tokenizer.get_added_tokens_decoder().values()
        return max(4, longest, *(len(str(t.content).encode("utf-8")) for t in added))

    def at_least(self, bound: int, turns: int, system: bool) -> int:
        """A lower bound on a sample's length, from `bound` (its template bytes plus fixed tokens)."""
        fixed = self.fixed(turns, system)
        return fixed + -(-(bound - fixed) // self.longest_token)

    def fixed(self, turns: int, system: bool) -> int:
        return turns * self.per_turn + (self.per_system if system else 0)

    def bound(self, system: str, pairs: list[tuple[str, str]], instruction: str, input_: str) -> int:
        """At least the exact length; byte-level BPE only. instruction/input make the last query."""
        total = self.fixed(len(pairs), bool(system)) + len(pairs) * len(self._user_end)
        if system:
            total += len(_SYSTEM_HEAD) + self._nbytes(system) + len(self._system_end)
        for q, a in pairs[:-1]:
            total += len(_SAMPLE_HEAD) + self._nbytes(q) + self._nbytes(a)
        last_a = pairs[-1][1]
        query = self._nbytes(instruction) + self._nbytes(input_) + (1 if instruction and input_ else 0)
        return total + len(_SAMPLE_HEAD) + query + self._nbytes(last_a)

    def size_bound(self, json_bytes: int, turns: int) -> int | None:
        """At least `bound`, from the record's JSON size alone (no JSON string holds more UTF-8 bytes than
        its literal); None when a normaliser may lengthen text. Valid only when no two fields share a key."""
        if self._normalizer is not None:
            return None
        heads = len(_SYSTEM_HEAD) + len(self._system_end) + turns * (len(_SAMPLE_HEAD) + len(self._user_end) + 1)
        return self.fixed(turns, True) + heads + json_bytes

    def pieces(self, system: str, pairs: list[tuple[str, str]]) -> list[str]:
        out = [_SYSTEM_HEAD + system + self._system_end] if system else []
        for q, a in pairs:
            out.append(_SAMPLE_HEAD + q + self._user_end)
            if a:
                out.append(a)
        return out

    def lengths(self, samples: Sequence[Turns]) -> list[int]:
        """Exact lengths of a batch, with one encode_batch call over every piece."""
        texts: list[str] = []
        ends: list[int] = []
        for system, pairs in samples:
            texts.extend(self.pieces(system, pairs))
            ends.append(len(texts))
        encoded = self._encode_batch(texts, add_special_tokens=False) if texts else []
        sizes = [len(e) for e in encoded]
        out: list[int] = []
        start = 0
        for (system, pairs), end in zip(samples, ends, strict=True):
            out.append(sum(sizes[start:end]) + self.fixed(len(pairs), bool(system)))
            start = end
        return out
