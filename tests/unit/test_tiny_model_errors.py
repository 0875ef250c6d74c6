"""Libraries that wrap a failed write in their own error still give oda-sft's OS-error exit (6)."""

from __future__ import annotations

import errno
import os

from oda_sft import tiny_model


def test_library_write_errors_are_read_as_os_errors() -> None:
    assert tiny_model.os_error_code(RuntimeError("Error while serializing: I/O error: (os error 28)")) == 28
    assert tiny_model.os_error_code(Exception(f"write failed: {os.strerror(errno.ENOSPC)}")) == errno.ENOSPC
    assert tiny_model.os_error_code(ValueError("bad vocab")) is None
