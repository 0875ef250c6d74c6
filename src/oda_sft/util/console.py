"""Messages to the person at the terminal: one prefix, on stderr, so stdout stays for data (YAML, JSON, tables).

A progress line on a terminal is one line rewritten in place (`progress`); a message said while it is shown
starts on a line of its own, and the progress line is drawn again at the next update.
"""

from __future__ import annotations

import sys

_progress_shown = False
_verbose = False


def say(message: str) -> None:
    global _progress_shown
    if _progress_shown:
        sys.stderr.write("\n")
        _progress_shown = False
    print(f"oda-sft: {message}", file=sys.stderr, flush=True)


def progress(message: str) -> None:
    """Draw `message` over the progress line shown last (a terminal only: \\r and erase-to-end)."""
    global _progress_shown
    sys.stderr.write(f"\roda-sft: {message}\x1b[K")
    sys.stderr.flush()
    _progress_shown = True


def end_progress() -> None:
    """Leave the progress line as it is and go on below it."""
    global _progress_shown
    if _progress_shown:
        sys.stderr.write("\n")
        sys.stderr.flush()
        _progress_shown = False


def set_verbose(on: bool) -> None:
    """--verbose: the trainer's and OpenCompass's own output streams to the terminal, as it is written."""
    global _verbose
    _verbose = on


def verbose() -> bool:
    return _verbose
