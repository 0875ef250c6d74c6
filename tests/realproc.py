"""Helpers for tests that run oda-sft as a real process, by absolute path, outside its venv."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any, NoReturn

# Not resolved: the venv's python is a symlink into the system interpreter's bin/.
VENV_BIN = Path(os.path.abspath(sys.executable)).parent
ODA_SFT = VENV_BIN / "oda-sft"


def offline_env(**extra: str) -> dict[str, str]:
    """os.environ for a real oda-sft or trainer process here: the Hub off (nothing in the tests downloads), and
    no tokenizer thread pool forked into every worker; plus `extra`."""
    return {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false", **extra}


def oda_sft(*args: str, cwd: Path, timeout: float = 900, **env: str) -> subprocess.CompletedProcess[str]:
    """`python -m oda_sft ARGS` as a process of its own, offline (plus `env`), its output captured."""
    argv = [sys.executable, "-m", "oda_sft", *args]
    return subprocess.run(argv, cwd=cwd, env=offline_env(**env), capture_output=True, text=True, timeout=timeout)


def manifest(run_dir: Path) -> dict[str, Any]:
    """A run's oda_sft_run.json, as the run wrote it."""
    data: dict[str, Any] = json.loads((run_dir / "oda_sft_run.json").read_text())
    return data


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


def descendants(root: int) -> set[int]:
    """Live descendants of root. Read on purpose another way than util/supervise.py (/proc/PID/status, not
    /proc/PID/stat): the tests that check the supervisor left nothing behind need their own eyes."""
    children: dict[int, set[int]] = {}
    for entry in filter(str.isdigit, os.listdir("/proc")):
        try:
            status = dict(
                line.split(":", 1) for line in Path(f"/proc/{entry}/status").read_text().splitlines() if ":" in line
            )
        except OSError:
            continue
        if not status.get("State", "").strip().startswith("Z"):
            children.setdefault(int(status["PPid"]), set()).add(int(entry))
    found: set[int] = set()
    frontier = {root}
    while frontier:
        frontier = {child for parent in frontier for child in children.get(parent, ())} - found
        found |= frontier
    return found


def marked(marker: str) -> set[int]:
    """Live processes (not zombies) whose environment holds MARK=marker: a test's trainer tree, whichever
    session or parent each process ended up in."""
    found = set()
    needle = f"ODA_SFT_TEST_MARK={marker}".encode()
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        try:
            if Path(f"/proc/{entry}/stat").read_bytes().rsplit(b")", 1)[1].split()[0] == b"Z":
                continue
            if needle in Path(f"/proc/{entry}/environ").read_bytes().split(b"\0"):
                found.add(int(entry))
        except (OSError, IndexError):
            continue
    return found


def signal_all(pids: set[int], sig: int) -> None:
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, sig)


def opencompass_program() -> Path:
    """The OpenCompass the real eval tests run: $ODA_SFT_OPENCOMPASS (the program or its venv), else the
    .venv-opencompass that `scripts/dev.sh setup` builds; skips locally without it, fails in CI."""
    given = os.environ.get("ODA_SFT_OPENCOMPASS")
    program = (
        Path(given) if given else Path(__file__).resolve().parents[1] / ".venv-opencompass" / "bin" / "opencompass"
    )
    if program.is_dir():
        program = program / "bin" / "opencompass"
    if not program.is_file():
        system_missing(f"OpenCompass is not installed at {program}: `bash scripts/dev.sh setup` builds it")
    return program


def system_missing(reason: str) -> NoReturn:
    """A system component a test needs is not there: skip locally, saying why; fail in CI (CI=true),
    where .ci/run has installed it and its absence is a broken setup."""
    import pytest

    if os.environ.get("CI", "").lower() in ("true", "1", "yes"):
        pytest.fail(f"{reason} (CI=true: this must not be missing in CI)")
    pytest.skip(reason)
