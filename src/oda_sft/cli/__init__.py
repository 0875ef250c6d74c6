"""The oda-sft command line. `main` is the program's entry point; the app lives in cli/app.py.

Kept light on purpose: the program installs its signal handlers before importing anything heavy,
so a SIGTERM in its first moments stops it cleanly (one line, exit 143) instead of killing it.
"""

from __future__ import annotations


def main(argv: list[str] | None = None) -> int:
    """Run oda-sft. With argv None this is the program itself (sys.argv), and takes over INT/TERM/HUP."""
    from oda_sft.util import signals

    if argv is None:
        signals.install()
    try:
        from oda_sft.cli.app import run

        return run(argv)
    except signals.Interrupted as exc:  # while importing, before any command ran
        return signals.report(exc.signum)
    finally:
        if argv is None:
            signals.ignore()  # the outcome is decided: a signal while exiting must not print a traceback
