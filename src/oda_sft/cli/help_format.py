"""How oda-sft's help pages are laid out: Click's plain format, wrapped only at spaces.

Click's own wrapper breaks long words and hyphenated names (`--map`'s column list, `seed-` /
`SEED`, `no-` / `resumable`) and cuts a command's summary to one line with "...". Here a word
stays whole (one longer than its column runs past it), a summary is the command's whole first
sentence, wrapped, and a `docs/NAME.md` in a help text names the copy this install ships.
"""

from __future__ import annotations

import re
import textwrap
from collections.abc import Iterable
from typing import Any

import click
from click.formatting import iter_rows, measure_table

from oda_sft.util.paths import doc_ref

_DOC = re.compile(r"(?<![\w/.])docs/([\w-]+\.md)")


def shipped_docs(text: str) -> str:
    """`text` with each docs/NAME.md that this install ships written as the path of that file."""
    return _DOC.sub(lambda m: doc_ref(m.group(1)), text)


def wrap(text: str, width: int, indent: str = "") -> str:
    """Click's wrap_text(preserve_paragraphs=True), breaking lines at spaces only."""
    wrapper = textwrap.TextWrapper(
        max(width, 10),
        initial_indent=indent,
        subsequent_indent=indent,
        replace_whitespace=False,
        break_long_words=False,
        break_on_hyphens=False,
    )
    out = []
    for block in re.split(r"\n\s*\n", text.expandtabs().strip("\n")):
        lines = block.splitlines()
        if lines and lines[0].strip() == "\b":  # Click's marker: keep this paragraph's lines as written
            out.append("\n".join(indent + line for line in lines[1:]))
            continue
        extra = " " * (len(lines[0]) - len(lines[0].lstrip())) if lines else ""
        wrapper.initial_indent = wrapper.subsequent_indent = indent + extra
        out.append(wrapper.fill(" ".join(line.strip() for line in lines)))
    return "\n\n".join(out)


class HelpFormatter(click.HelpFormatter):
    def write_text(self, text: str) -> None:
        self.write(wrap(shipped_docs(text), self.width, " " * self.current_indent))
        self.write("\n")

    def write_dl(self, rows: Iterable[tuple[str, str]], col_max: int = 30, col_spacing: int = 2) -> None:
        rows = list(rows)
        widths = measure_table(rows)
        first_col = min(widths[0], col_max) + col_spacing if widths else col_spacing
        for first, second in iter_rows(rows, 2):
            self.write(f"{'':>{self.current_indent}}{first}")
            if not second:
                self.write("\n")
                continue
            if len(first) <= first_col - col_spacing:
                self.write(" " * (first_col - len(first)))
            else:
                self.write("\n" + " " * (first_col + self.current_indent))
            lines = wrap(shipped_docs(second), self.width - first_col - 2).splitlines() or [""]
            self.write(lines[0] + "\n")
            for line in lines[1:]:
                self.write(f"{'':>{first_col + self.current_indent}}{line}\n" if line else "\n")


class HelpContext(click.Context):
    formatter_class = HelpFormatter


def restore_argument_help(command: click.Command) -> None:
    """Click 8.5's Parameter sets `help` after Typer's TyperArgument has, to None: an argument's own
    help text then never shows. Put it back from the callback's declaration."""
    if command.callback is None:
        return
    from typer.utils import get_params_from_function  # only when a help page is drawn

    declared: dict[str, Any] = {}
    for param in command.params:
        if isinstance(param, click.Argument) and not getattr(param, "help", None):
            declared = declared or get_params_from_function(command.callback)
            meta = declared.get(param.name or "")
            param.help = getattr(meta.default, "help", None) if meta is not None else None


def summaries(commands: Iterable[tuple[str, click.Command]]) -> list[tuple[str, str]]:
    """(name, whole first sentence of its help) for each visible command: never cut with "..."."""
    return [(name, cmd.get_short_help_str(limit=1 << 30)) for name, cmd in commands if not cmd.hidden]
