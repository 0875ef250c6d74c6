"""Helpers for tests that run oda-sft as a real process, by absolute path, outside its venv."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
from pathlib import Path

# Not resolved: the venv's python is a symlink into the system interpreter's bin/.
VENV_BIN = Path(os.path.abspath(sys.executable)).parent
ODA_SFT = VENV_BIN / "oda-sft"


def env_without_venv(**extra: str) -> dict[str, str]:
    """os.environ with the venv's bin/ off PATH, as in a Slurm job or a cron job; fails if torchrun stays reachable."""
    env = dict(os.environ)
    venv = VENV_BIN.resolve()
    env["PATH"] = (
        os.pathsep.join(p for p in env.get("PATH", "").split(os.pathsep) if p and Path(p).resolve() != venv)
        or "/usr/bin:/bin"
    )
    env.pop("VIRTUAL_ENV", None)
    env.update(extra)
    if shutil.which("torchrun", path=env["PATH"]) or shutil.which("llamafactory-cli", path=env["PATH"]):
        raise AssertionError(
            f"torchrun or llamafactory-cli is reachable on PATH without the venv ({env['PATH']}): "
            "this test could not tell whether oda-sft finds its own"
        )
    return env


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start(argv: list[str], env: dict[str, str], log: Path, cwd: Path | None = None) -> subprocess.Popen[bytes]:
    """Start in its own session so a failed test can end the whole tree (torchrun, workers)."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("wb") as out:
        return subprocess.Popen(argv, env=env, stdout=out, stderr=subprocess.STDOUT, cwd=cwd, start_new_session=True)


def kill_tree(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(10)


def tail(path: Path, lines: int = 40) -> str:
    if not path.is_file():
        return f"({path} does not exist)"
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
