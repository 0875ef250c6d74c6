"""Validation of names that end up in paths, YAML and command lines."""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable

from oda_sft.errors import UsageError

# Letters, digits and . _ - only: safe as a path component, a YAML scalar and a shell word.
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,199}")


def check_name(kind: str, value: str) -> str:
    if not _NAME.fullmatch(value) or ".." in value:
        raise UsageError(
            f"invalid {kind} name {value!r}: use only letters, digits, '.', '_' and '-' "
            "(no path separators, spaces or shell/YAML characters), starting with a letter or digit"
        )
    return value


def suggest(value: str, candidates: Iterable[str]) -> str:
    """' (did you mean X, Y?)' for close names, matched case-insensitively, else ''."""
    pool = {c.lower(): c for c in candidates}
    close = difflib.get_close_matches(value.lower(), list(pool), n=3, cutoff=0.6)
    close += [k for k in pool if value.lower() in k and k not in close][: 3 - len(close)]
    if not close:
        return ""
    return " (did you mean " + ", ".join(pool[c] for c in close) + "?)"
