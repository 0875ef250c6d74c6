"""Error types, and the one place where they become messages and exit codes."""

from __future__ import annotations

import os
import signal
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from oda_sft.util import signals


class OdaSftError(Exception):
    """A problem the user can fix. The message names the problem and the fix.

    A subclass declares its exit code in its header: `class UsageError(OdaSftError, exit_code=2)`.
    """

    exit_code = 1

    def __init_subclass__(cls, exit_code: int | None = None, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if exit_code is not None:
            cls.exit_code = exit_code


class UsageError(OdaSftError, exit_code=2):
    """Bad command-line input."""


class ConfigError(OdaSftError, exit_code=2):
    """A preset, mode, override or template that cannot be rendered."""


class DatasetError(OdaSftError, exit_code=2):
    """A dataset that is unknown, unregistered or malformed."""


class RunStateError(OdaSftError, exit_code=3):
    """The output directory holds something oda-sft will not touch without --force."""


class LaunchError(OdaSftError, exit_code=4):
    """The launcher could not be started."""


OS_ERROR_EXIT = 6


class StorageError(OdaSftError, exit_code=OS_ERROR_EXIT):
    """The filesystem cannot hold or take what a run writes."""


def debug_enabled() -> bool:
    return os.environ.get("ODA_SFT_DEBUG", "") not in ("", "0")


def one_line(message: str) -> str:
    return " ".join(str(message).split())


@contextmanager
def handle_errors() -> Iterator[None]:
    """Turn known errors into one line on stderr and an exit code (SystemExit).

    Every command runs inside this, so no command prints its own errors.
    ODA_SFT_DEBUG=1 lets the traceback through instead.
    """
    try:
        yield
    except OdaSftError as exc:
        if debug_enabled():
            raise
        print(f"error: {one_line(str(exc))}", file=sys.stderr, flush=True)
        raise SystemExit(exc.exit_code) from None
    except KeyboardInterrupt as exc:
        if debug_enabled():
            raise
        # signals.Interrupted carries its signal; a bare KeyboardInterrupt (a library re-raised it): the one received
        signum = getattr(exc, "signum", None) or signals.received() or signal.SIGINT
        raise SystemExit(signals.report(signum)) from None
    except Exception as exc:
        if debug_enabled():
            raise
        asked = signals.received()
        if asked is not None:  # a library turned our Interrupted into its own error: we were asked to stop
            raise SystemExit(signals.report(asked)) from None
        if not isinstance(exc, OSError):
            raise
        _os_error(exc)


def _os_error(exc: OSError) -> None:
    """A full disk, a read-only mount, a permission: the user's to fix, not a bug."""
    where = f" ({exc.filename})" if exc.filename else ""
    print(
        f"error: {exc.strerror or exc}{where}: check that the path exists, is writable and has space; "
        "ODA_SFT_DEBUG=1 shows where it happened",
        file=sys.stderr,
        flush=True,
    )
    raise SystemExit(OS_ERROR_EXIT) from None
