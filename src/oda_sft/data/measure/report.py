"""What a length measurement found: the report `data inspect`, `train --mode auto` and dataset_info.json read."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from oda_sft.data.measure.length_rule import Rule
from oda_sft.presets import Mode


@dataclass(frozen=True)
class Untokenized:
    """A sample above lengths.TOKENIZE_CAP: named by index and size, its length bounded from below."""

    index: int
    text_bytes: int
    at_least: int  # tokens

    def describe(self) -> str:
        return f"#{self.index} ({self.text_bytes / (1 << 20):.1f} MiB of text, at least {self.at_least:,} tokens)"


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
    over_cutoff: int | None  # samples over 32768 tokens (exact mode only; a lower bound with untokenized ones)
    stats: dict[str, float] | None
    mode: Mode
    reason: str
    seconds: float
    stopped_early: bool = False
    notes: list[str] = field(default_factory=list)
    untokenized: list[Untokenized] = field(default_factory=list)

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
            "not_tokenized": [
                {"index": u.index, "text_bytes": u.text_bytes, "tokens_at_least": u.at_least} for u in self.untokenized
            ],
            "mode": self.mode,
            "reason": self.reason,
            "stopped_early": self.stopped_early,
            "seconds": round(self.seconds, 3),
        }

    def cache_record(self, measured_at: str) -> dict[str, Any]:
        """What dataset_info.json keeps for this analysis."""
        record = {k: v for k, v in self.as_json().items() if k not in ("file", "seconds", "not_tokenized")}
        record["measured_at"] = measured_at
        return record


def percent(part: int, whole: int) -> str:
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
