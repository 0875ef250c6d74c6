"""One clock format for everything oda-sft records."""

from __future__ import annotations

from datetime import UTC, datetime


def utc_now() -> str:
    """The time in UTC to the second, as ISO 8601 with a Z: 2026-11-28T06:36:44Z."""
    return datetime.now(UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")
