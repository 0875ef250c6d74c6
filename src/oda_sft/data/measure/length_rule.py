"""The standard/long-CoT decision rule: long if more than P% of samples exceed T tokens."""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from oda_sft.errors import UsageError

DEFAULT_THRESHOLD = 4096
DEFAULT_PERCENT = "1"


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
