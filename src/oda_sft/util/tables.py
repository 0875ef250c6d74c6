"""Plain-text tables for the terminal: aligned columns, no trailing spaces; and cells made safe for what
reads them next. A name comes from a manifest that may have been written elsewhere (a copied run, another
version): a newline in it must not split a row, a spreadsheet must not run it as a formula, and a Markdown
renderer or matplotlib must not read it as markup."""

from __future__ import annotations

import re
from collections.abc import Sequence

# C0 and C1 controls (newline, carriage return, escape...) and the Unicode line and paragraph separators.
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029]")
_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}
# A spreadsheet runs a cell starting with one of these as a formula (OWASP, "CSV Injection").
_FORMULA = ("=", "+", "-", "@", "\t", "\r", "\n", "\uff1d", "\uff0b", "\uff0d", "\uff20")
_MARKDOWN = re.compile(r"([\\`*_{}\[\]<>|~$&])")


def one_line(text: str) -> str:
    """The text on one line: each control character shown as its escape (\\n, \\x1b)."""

    def escape(found: re.Match[str]) -> str:
        c = found.group()
        return _NAMED.get(c) or (f"\\x{ord(c):02x}" if ord(c) < 0x100 else f"\\u{ord(c):04x}")

    return _CONTROL.sub(escape, text)


def csv_text(text: str) -> str:
    """A CSV cell of text (not a number we wrote) a spreadsheet reads as text, never as a formula."""
    return "'" + text if text.startswith(_FORMULA) else text


def markdown_text(text: str) -> str:
    """Text a Markdown renderer shows as written: on one line, its punctuation escaped (no HTML, no table
    cell break, no emphasis or link)."""
    return _MARKDOWN.sub(r"\\\1", one_line(text))


def plot_text(text: str) -> str:
    """A label matplotlib draws as written: on one line, and `$` not opening mathtext (which can fail)."""
    return one_line(text).replace("$", r"\$")


def format_table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    headers = [one_line(h) for h in headers]
    rows = [[one_line(v) for v in row] for row in rows]
    widths = [max([len(h), *(len(row[i]) for row in rows)]) for i, h in enumerate(headers)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)).rstrip()]
    lines += ["  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)).rstrip() for row in rows]
    return "\n".join(lines)
