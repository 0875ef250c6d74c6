"""Messages to the person at the terminal: one prefix, on stderr, so stdout stays for data (YAML, JSON, tables)."""

from __future__ import annotations

import sys


def say(message: str) -> None:
    print(f"oda-sft: {message}", file=sys.stderr, flush=True)
