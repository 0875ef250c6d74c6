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
