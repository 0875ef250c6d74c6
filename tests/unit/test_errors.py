"""The exit code of each error type (declared in the class header, errors.py) and handle_errors' use of it."""

from __future__ import annotations

import pytest

from oda_sft.cluster.preflight import PreflightError
from oda_sft.errors import (
    ConfigError,
    DatasetError,
    LaunchError,
    OdaSftError,
    RunStateError,
    StorageError,
    UsageError,
    handle_errors,
)
from oda_sft.throughput.spec import BenchError


@pytest.mark.parametrize(
    ("error", "code"),
    [
        (OdaSftError, 1),
        (BenchError, 1),
        (UsageError, 2),
        (ConfigError, 2),
        (DatasetError, 2),
        (RunStateError, 3),
        (LaunchError, 4),
        (PreflightError, 5),
        (StorageError, 6),
    ],
)
def test_each_error_exits_with_its_code(
    error: type[OdaSftError], code: int, capsys: pytest.CaptureFixture[str]
) -> None:
    assert error.exit_code == code
    with pytest.raises(SystemExit) as exited, handle_errors():
        raise error("the problem:\n  the fix")
    assert exited.value.code == code
    assert capsys.readouterr().err == "error: the problem: the fix\n"


def test_a_bare_keyboard_interrupt_reports_the_signal_oda_sft_received(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A library that catches oda-sft's Interrupted(SIGTERM) and raises a plain KeyboardInterrupt must not turn a
    SIGTERM into 'interrupted by SIGINT', exit 130."""
    import signal

    from oda_sft.util import signals

    monkeypatch.setattr(signals, "_received", [signal.SIGTERM])
    with pytest.raises(SystemExit) as exited, handle_errors():
        raise KeyboardInterrupt
    assert exited.value.code == 143
    assert capsys.readouterr().err == "error: interrupted by SIGTERM\n"
    monkeypatch.setattr(signals, "_received", [])
    with pytest.raises(SystemExit) as exited, handle_errors():
        raise KeyboardInterrupt  # Ctrl-C outside oda-sft's own handler
    assert exited.value.code == 130
