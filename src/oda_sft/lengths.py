"""Token lengths under the `default` template, the standard/long decision rule, and the fast path.

A sample's length is what LLaMA-Factory 0.9.4's supervised preprocessing produces before
truncation: each template slot is encoded on its own (`Template._convert_elements_to_ids`),
so the length is a sum over pieces. For the `default` template a sample is

    [System: {system}] <eos> \\n            (first turn only, when there is a system prompt)
    Human: {query} <eos> \\nAssistant:      (every turn)
    {response} <eos> \\n                    (every turn; an empty response encodes to nothing)

Byte-level BPE never makes more tokens than the UTF-8 bytes of (normalised) text, so a sample
whose rendered byte length is at most the threshold is short without tokenizing it. Only the
rest are tokenized, largest first, in batches (the tokenizers library spreads a batch over all
cores), and the work stops once the decision cannot change.

tokenizers and huggingface_hub are imported inside the functions that need them: `train
--dry-run` and `--help` must stay light.
"""

from __future__ import annotations

import array
import json
import math
import os
import random
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import TYPE_CHECKING, Any

from oda_sft import alpaca, tiny
from oda_sft.alpaca import Columns, ProblemLog
from oda_sft.catalog import Mode, ModelPreset
from oda_sft.errors import DatasetError, UsageError
from oda_sft.jsonstream import JsonStream, read_span

if TYPE_CHECKING:
    from tokenizers import Tokenizer

DEFAULT_THRESHOLD = 4096
DEFAULT_PERCENT = "1"
LONG_CUTOFF = 32768  # the long config's cutoff_len: longer samples are truncated even there
BATCH_BYTES = 4 << 20
BATCH_MAX = 2048
MIN_BATCH = 32  # below this a batch no longer keeps every core busy
PROBE = 16  # candidates tokenized first, at random, to estimate tokens per byte
MARGIN = 1.25  # predicted length over threshold * MARGIN counts as likely long
_SAMPLE_HEAD = "Human: "
_SYSTEM_HEAD = "System: "
_UNICODE_FORMS = frozenset({"NFC", "NFD", "NFKC", "NFKD", "Lowercase"})

Progress = Callable[[str, int, int], None]  # (phase, done, total) for a progress bar
Turns = tuple[str, list[tuple[str, str]]]


@dataclass(frozen=True)
class Rule:
    """long if more than `percent`% of samples exceed `threshold` tokens."""

    threshold: int = DEFAULT_THRESHOLD
    percent: Decimal = Decimal(DEFAULT_PERCENT)

    @classmethod
    def parse(cls, threshold: int | None = None, percent: str | None = None) -> Rule:
        """From flags, else $ODA_SFT_LONG_TOKENS / $ODA_SFT_LONG_PERCENT, else 4096 tokens and 1%."""
        raw_t = threshold if threshold is not None else os.environ.get("ODA_SFT_LONG_TOKENS", DEFAULT_THRESHOLD)
        raw_p = percent if percent is not None else os.environ.get("ODA_SFT_LONG_PERCENT", DEFAULT_PERCENT)
        try:
            t = int(raw_t)
        except ValueError:
            raise UsageError(f"long-CoT threshold {raw_t!r} is not a whole number of tokens: e.g. 4096") from None
        try:
            p = Decimal(str(raw_p).strip().removesuffix("%"))
        except InvalidOperation:
            raise UsageError(f"long-CoT percent {raw_p!r} is not a number: e.g. 1 or 0.5") from None
        if t < 1:
            raise UsageError(f"long-CoT threshold {t} must be at least 1 token")
        if not p.is_finite() or not 0 <= p < 100:
            raise UsageError(f"long-CoT percent {raw_p} must be at least 0 and below 100")
        return cls(t, p)

    def is_long(self, over: int, count: int) -> bool:
        # Exact decimal arithmetic: 1% of 100 samples is exactly 1, and 1 is not "more than 1%".
        return Decimal(over) * 100 > self.percent * count

    def allowed(self, count: int) -> int:
        """The most samples over the threshold that still mean standard."""
        return math.floor(self.percent * count / 100)

    def describe(self) -> str:
        return f"long if more than {self.percent}% of samples exceed {self.threshold:,} tokens"

    def as_json(self) -> dict[str, Any]:
        return {"threshold_tokens": self.threshold, "max_percent_over": str(self.percent)}


# --- tokenizers -------------------------------------------------------------------------------


@dataclass(frozen=True)
class TokenizerRef:
    ident: str  # recorded with a cached analysis: an HF id, "tiny:<dir>", or a local directory
    label: str  # for messages


def tokenizer_ident(preset: ModelPreset, model_path: Path | None = None) -> str:
    """What a measurement for this preset is recorded under; cheap (no loading)."""
    if model_path is not None:
        return str(model_path.expanduser().resolve())
    if preset.embedded:
        return f"tiny:{tiny.model_dir().name}"
    return preset.base_model


def tokenizer_file(preset: ModelPreset, model_path: Path | None = None) -> tuple[TokenizerRef, Path]:
    """The tokenizer.json to measure with: --model-path, the embedded tiny model, or the HF cache."""
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
        return TokenizerRef(ident, "tiny"), tiny.ensure_model() / "tokenizer.json"
    repo = preset.base_model
    label = f"{preset.name} ({repo})"
    from huggingface_hub import try_to_load_from_cache

    cached = try_to_load_from_cache(repo, "tokenizer.json")
    if isinstance(cached, str):
        return TokenizerRef(ident, label), Path(cached)
    fix = (
        f"download it where there is internet (`hf download {repo} tokenizer.json tokenizer_config.json`) "
        "or pass --model-path with a local model directory"
    )
    if os.environ.get("HF_HUB_OFFLINE", "") not in ("", "0"):
        raise DatasetError(f"the {label} tokenizer is not in the Hugging Face cache and HF_HUB_OFFLINE is set: {fix}")
    from huggingface_hub import hf_hub_download

    try:
        return TokenizerRef(ident, label), Path(hf_hub_download(repo, "tokenizer.json", etag_timeout=10))
    except Exception as exc:  # network, auth (gated repos) and missing-file errors all end the same way
        reason = " ".join(str(exc).split())[:200]
        raise DatasetError(f"cannot get the {label} tokenizer ({type(exc).__name__}: {reason}): {fix}") from None


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

    def __init__(self, tokenizer: Tokenizer, ref: TokenizerRef) -> None:
        self.ref = ref
        self.tokenizer = tokenizer
        spec = json.loads(tokenizer.to_str())
        self.byte_level = _is_byte_level(spec)
        self._normalizer = tokenizer.normalizer if spec.get("normalizer") else None
        self._ascii_safe = _ascii_unchanged(spec.get("normalizer"))
        self._encode_batch = getattr(tokenizer, "encode_batch_fast", tokenizer.encode_batch)
        # The constant slots of the template, each encoded on its own as LLaMA-Factory does.
        user_tail = self._count("\nAssistant:")
        newline = self._count("\n")
        self.per_turn = 1 + user_tail + 1 + newline  # <eos> \nAssistant: ... <eos> \n
        self.per_system = 1 + newline  # <eos> \n

    @classmethod
    def load(cls, preset: ModelPreset, model_path: Path | None = None) -> LengthCounter:
        ref, path = tokenizer_file(preset, model_path)
        from tokenizers import Tokenizer

        try:
            return cls(Tokenizer.from_file(str(path)), ref)
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

    def fixed(self, turns: int, system: bool) -> int:
        return turns * self.per_turn + (self.per_system if system else 0)

    def bound(self, system: str, pairs: list[tuple[str, str]], instruction: str, input_: str) -> int:
        """At least the exact length; byte-level BPE only. instruction/input make the last query."""
        total = self.fixed(len(pairs), bool(system))
        if system:
            total += len(_SYSTEM_HEAD) + self._nbytes(system)
        for q, a in pairs[:-1]:
            total += len(_SAMPLE_HEAD) + self._nbytes(q) + self._nbytes(a)
        last_a = pairs[-1][1]
        query = self._nbytes(instruction) + self._nbytes(input_) + (1 if instruction and input_ else 0)
        return total + len(_SAMPLE_HEAD) + query + self._nbytes(last_a)

    @staticmethod
    def pieces(system: str, pairs: list[tuple[str, str]]) -> list[str]:
        out = [_SYSTEM_HEAD + system] if system else []
        for q, a in pairs:
            out.append(_SAMPLE_HEAD + q)
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


# --- analysis ---------------------------------------------------------------------------------


@dataclass
class LengthReport:
    file: Path
    sha256: str
    size: int
    tokenizer: str
    rule: Rule
    count: int
    exact: bool  # every sample tokenized: stats and counts are exact
    measured: int  # samples tokenized
    over: int  # samples known to exceed the threshold
    over_upper: int  # at most this many exceed it (== over when every candidate was measured)
    over_cutoff: int | None  # samples over 32768 tokens (exact mode only)
    stats: dict[str, float] | None
    mode: Mode
    reason: str
    seconds: float
    stopped_early: bool = False
    byte_bound: bool = True
    notes: list[str] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        return {
            "file": str(self.file),
            "sha256": self.sha256,
            "bytes": self.size,
            "tokenizer": self.tokenizer,
            "template": "default",
            "rule": self.rule.as_json(),
            "count": self.count,
            "exact": self.exact,
            "measured": self.measured,
            "over_threshold": self.over if self.over == self.over_upper else None,
            "over_threshold_at_least": self.over,
            "over_threshold_at_most": self.over_upper,
            "over_long_cutoff": self.over_cutoff,
            "stats": self.stats,
            "mode": self.mode,
            "reason": self.reason,
            "stopped_early": self.stopped_early,
            "seconds": round(self.seconds, 3),
        }

    def cache_record(self, measured_at: str) -> dict[str, Any]:
        """What dataset_info.json keeps for this analysis."""
        record = {k: v for k, v in self.as_json().items() if k not in ("file", "seconds")}
        record["measured_at"] = measured_at
        return record


def _percent(part: int, whole: int) -> str:
    value = 100 * part / whole
    return f"{value:.2f}%" if 0 < value < 0.1 else f"{value:.1f}%"


def percentile(sorted_values: Sequence[int], q: float) -> int:
    """Nearest-rank percentile: a length some sample really has."""
    rank = max(1, math.ceil(q / 100 * len(sorted_values)))
    return sorted_values[rank - 1]


def summarize(lengths: Sequence[int]) -> dict[str, float]:
    ordered = sorted(lengths)
    return {
        "mean": round(sum(ordered) / len(ordered), 1),
        "p50": percentile(ordered, 50),
        "p90": percentile(ordered, 90),
        "p99": percentile(ordered, 99),
        "max": ordered[-1],
    }


class _Validator:
    """Collects Alpaca problems while streaming; raises once the stream ends."""

    def __init__(self, label: str, columns: Columns, fix: str, shown: int) -> None:
        self.label, self.columns, self.fix = label, columns, fix
        self.log = ProblemLog(shown=shown)

    def ok(self, index: int, value: Any) -> bool:
        problems = alpaca.check(index, value, self.columns)
        self.log.add(problems)
        return not problems

    def finish(self, count: int) -> None:
        if self.log.bad_records:
            raise alpaca.invalid_error(self.label, self.log, count, self.fix)
        if count == 0:
            raise DatasetError(f"{self.label} holds no records: an empty dataset cannot be trained on; add records")


def _batches(items: Iterator[tuple[int, Turns, int]]) -> Iterator[list[tuple[int, Turns]]]:
    """Group (index, turns, bytes) into batches of about BATCH_BYTES, so memory stays flat."""
    batch: list[tuple[int, Turns]] = []
    size = 0
    for index, turns, nbytes in items:
        batch.append((index, turns))
        size += nbytes
        if size >= BATCH_BYTES or len(batch) >= BATCH_MAX:
            yield batch
            batch, size = [], 0
    if batch:
        yield batch


def _text_bytes(turns: Turns) -> int:
    system, pairs = turns
    return len(system) + sum(len(q) + len(a) for q, a in pairs)


def measure_file(
    path: Path,
    counter: LengthCounter,
    rule: Rule,
    columns: Columns,
    *,
    exact: bool = False,
    label: str = "",
    fix: str = "fix these records",
    shown: int = alpaca.DEFAULT_SHOWN,
    progress: Progress | None = None,
) -> LengthReport:
    """Validate and measure an Alpaca JSON/JSONL file; exact=False stops once the decision is settled."""
    started = time.perf_counter()
    label = label or str(path)
    if exact or not counter.byte_level:
        report = _measure_all(path, counter, rule, columns, label, fix, shown, progress)
        if not counter.byte_level:
            report.byte_bound = False
            report.notes.append(f"{counter.ref.label} is not a byte-level BPE tokenizer: every sample was tokenized")
    else:
        report = _measure_fast(path, counter, rule, columns, label, fix, shown, progress)
    report.seconds = time.perf_counter() - started
    return report


def _measure_all(
    path: Path,
    counter: LengthCounter,
    rule: Rule,
    columns: Columns,
    label: str,
    fix: str,
    shown: int,
    progress: Progress | None,
) -> LengthReport:
    stream = JsonStream(path)
    validator = _Validator(label, columns, fix, shown)
    lengths = array.array("q")
    file_size = path.stat().st_size
    count = 0
    position = 0

    def samples() -> Iterator[tuple[int, Turns, int]]:
        nonlocal count, position
        for rec in stream:
            count += 1
            position = rec.end
            # After the first bad record only validation goes on: the measurement will fail anyway.
            if validator.ok(rec.index, rec.value) and not validator.log.bad_records:
                yield rec.index, alpaca.turns(rec.value, columns), rec.end - rec.start

    for batch in _batches(samples()):
        lengths.extend(counter.lengths([t for _, t in batch]))
        if progress is not None:
            progress("tokenizing", position, file_size)
    validator.finish(count)
    over = sum(1 for n in lengths if n > rule.threshold)
    over_cutoff = sum(1 for n in lengths if n > LONG_CUTOFF)
    stats = summarize(lengths)
    mode: Mode = "long" if rule.is_long(over, len(lengths)) else "standard"
    verdict = "more than" if mode == "long" else "not more than"
    reason = (
        f"{_percent(over, len(lengths))} of {len(lengths):,} samples exceed {rule.threshold:,} tokens "
        f"(p99 {int(stats['p99']):,}), {verdict} {rule.percent}%"
    )
    return LengthReport(
        path, stream.sha256, stream.size, counter.ref.ident, rule, len(lengths), True, len(lengths),
        over, over, over_cutoff, stats, mode, reason, 0.0,
    )  # fmt: skip


def _measure_fast(
    path: Path,
    counter: LengthCounter,
    rule: Rule,
    columns: Columns,
    label: str,
    fix: str,
    shown: int,
    progress: Progress | None,
) -> LengthReport:
    # Pass 1: validate every record and bound its length from bytes; keep only numbers.
    stream = JsonStream(path)
    validator = _Validator(label, columns, fix, shown)
    bounds = array.array("q")
    starts = array.array("q")
    ends = array.array("q")
    count = 0
    file_size = path.stat().st_size
    for rec in stream:
        count += 1
        if progress is not None and count % 4096 == 0:
            progress("reading", rec.end, file_size)
        if not validator.ok(rec.index, rec.value) or validator.log.bad_records:
            continue
        system, pairs = alpaca.turns(rec.value, columns)
        value = rec.value
        instruction = value.get(columns.instruction) if columns.instruction else None
        input_ = value.get(columns.input) if columns.input else None
        bound = counter.bound(
            system,
            pairs,
            instruction if isinstance(instruction, str) else "",
            input_ if isinstance(input_, str) else "",
        )
        if bound > rule.threshold:
            bounds.append(bound)
            starts.append(rec.start)
            ends.append(rec.end)
    validator.finish(count)

    # Pass 2: tokenize candidates until the decision is settled. The count is exact whatever the
    # order; the order only decides how much gets tokenized. A small random probe estimates tokens
    # per byte; then, if the data looks long, the smallest samples predicted to exceed go first
    # (cheapest proof of "long"), else everything smallest first (the largest, costliest ones are
    # those the rule allows to stay unmeasured).
    allowed = rule.allowed(count)
    over = 0
    measured = 0
    remaining = len(bounds)
    rng = random.Random(0)
    # The probe comes from the smaller half: tokens per byte hardly depends on size, cost does.
    by_size = sorted(range(len(bounds)), key=bounds.__getitem__)
    smaller = by_size[: max(1, len(by_size) // 2)]
    probe = sorted(rng.sample(smaller, min(PROBE, len(smaller)))) if smaller else []
    with path.open("rb") as handle:

        def measure(ids: list[int]) -> tuple[int, int]:
            nonlocal over, measured, remaining
            turns = [alpaca.turns(read_span(handle, starts[i], ends[i]), columns) for i in sorted(ids)]
            found = counter.lengths(turns)
            over += sum(1 for n in found if n > rule.threshold)
            measured += len(ids)
            remaining -= len(ids)
            if progress is not None:
                progress("tokenizing", measured, len(bounds))
            return sum(found), sum(bounds[i] for i in ids)

        def settled() -> bool:
            return remaining == 0 or over > allowed or over + remaining <= allowed

        order: list[int] = []
        if probe and not settled():
            tokens, nbytes = measure(probe)
            ratio = tokens / max(nbytes, 1)
            probed = set(probe)
            rest = [i for i in by_size if i not in probed]
            likely = [i for i in rest if bounds[i] * ratio > rule.threshold * MARGIN]
            if over + len(likely) > allowed:
                chosen = set(likely)
                order = likely + [i for i in rest if i not in chosen]
            else:
                order = rest
        position = 0
        while not settled():
            # No bigger than what could settle it: more samples over, or fewer left unmeasured.
            need = min(allowed + 1 - over, remaining - (allowed - over))
            cap = min(BATCH_MAX, max(MIN_BATCH, need))
            batch_ids: list[int] = []
            size = 0
            while position < len(order) and size < BATCH_BYTES and len(batch_ids) < cap:
                i = order[position]
                batch_ids.append(i)
                size += ends[i] - starts[i]
                position += 1
            measure(batch_ids)
    stopped = remaining > 0
    upper = over + remaining
    long = rule.is_long(over, count)
    mode: Mode = "long" if long else "standard"
    early = " (stopped early: --exact gives full statistics)" if stopped else ""
    if long:
        amount = f"at least {over:,}" if stopped else f"{over:,}"
        reason = (
            f"{amount} of {count:,} samples ({_percent(over, count)}) exceed {rule.threshold:,} tokens, "
            f"more than {rule.percent}%{early}"
        )
    elif not bounds:
        reason = (
            f"0 of {count:,} samples exceed {rule.threshold:,} tokens (each renders to at most "
            f"{rule.threshold:,} bytes, so none needed tokenizing), not more than {rule.percent}%"
        )
    else:
        amount = f"at most {upper:,}" if stopped else f"{over:,}"
        reason = (
            f"{amount} of {count:,} samples ({_percent(upper, count)}) exceed {rule.threshold:,} tokens, "
            f"not more than {rule.percent}%{early}"
        )
    return LengthReport(
        path, stream.sha256, stream.size, counter.ref.ident, rule, count, False, measured,
        over, upper, None, None, mode, reason, 0.0, stopped_early=stopped,
    )  # fmt: skip
