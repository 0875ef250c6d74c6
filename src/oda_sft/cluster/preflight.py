"""Checks each node runs before torchrun starts, so a bad node fails in seconds with its name,
instead of leaving every other node waiting for the NCCL timeout.

Every check that touches the network or storage runs under a deadline: a dead NFS mount or a
stuck resolver must fail the check, not hang the node.
"""

from __future__ import annotations

import functools
import os
import socket
import tempfile
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

from oda_sft.errors import OdaSftError

T = TypeVar("T")

DEADLINE_S = 20.0
# Environment that decides how the ranks talk to each other; printed on every node so that a
# mismatch between nodes is visible in the logs before it becomes a timeout.
_COMM_PREFIXES = ("NCCL_", "TORCH_NCCL_", "TORCH_DISTRIBUTED_", "GLOO_", "UCX_", "FI_")
_COMM_NAMES = ("CUDA_VISIBLE_DEVICES", "MASTER_ADDR", "MASTER_PORT", "HF_DATASETS_CACHE", "HF_HOME")


class PreflightError(OdaSftError, exit_code=5):
    """A node that must not join the run."""


@dataclass(frozen=True)
class PreflightSpec:
    expected_gpus: int
    node: str  # how messages name this node, e.g. "node 1 (gpu017)"
    master_addr: str | None = None
    readable: tuple[Path, ...] = ()  # must exist and be readable (shared storage)
    writable: tuple[Path, ...] = ()  # created when missing, and must accept a file
    problems: tuple[str, ...] = ()  # found earlier, e.g. while planning the run on this node
    notes: tuple[str, ...] = ()


@dataclass
class PreflightReport:
    node: str
    lines: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def error(self) -> PreflightError:
        return PreflightError(f"preflight failed on {self.node}: {'; '.join(self.problems)}")


def node_label(node_rank: int | None, hostname: str) -> str:
    return f"node {node_rank} ({hostname})" if node_rank is not None else f"node {hostname}"


def check_gpus(expected: int, visible: int) -> str | None:
    if visible == expected:
        return None
    return (
        f"{visible} GPU(s) visible, expected {expected} (--gpus-per-node); check the allocation "
        "(--gpus-per-node in sbatch) and CUDA_VISIBLE_DEVICES"
    )


def communication_settings(env: Mapping[str, str]) -> list[str]:
    names = sorted(k for k in env if k.startswith(_COMM_PREFIXES) or k in _COMM_NAMES)
    if not any(n.startswith("NCCL_") for n in names):
        return [*(f"{n}={env[n]}" for n in names), "no NCCL_* variables set: NCCL picks its defaults"]
    return [f"{n}={env[n]}" for n in names]


def with_deadline(what: str, func: Callable[[], T], seconds: float = DEADLINE_S) -> T:
    """func() in a daemon thread; an OSError-like failure if it does not finish in time.

    A daemon thread, because a stat() on a dead NFS server cannot be interrupted: the process
    must be able to exit and report while that thread is still stuck.
    """
    result: list[T] = []
    error: list[BaseException] = []

    def target() -> None:
        try:
            result.append(func())
        except BaseException as exc:
            error.append(exc)

    thread = threading.Thread(target=target, name=f"preflight: {what}", daemon=True)
    thread.start()
    thread.join(seconds)
    if thread.is_alive():
        raise TimeoutError(f"{what} did not answer within {seconds:g} s")
    if error:
        raise error[0]
    return result[0]


def check_master(addr: str, deadline: float = DEADLINE_S) -> tuple[str | None, str | None]:
    """(resolved address, problem)."""
    try:
        infos = with_deadline(f"resolving {addr}", lambda: socket.getaddrinfo(addr, None), deadline)
    except (OSError, TimeoutError) as exc:
        return None, f"MASTER_ADDR {addr} does not resolve on this node ({exc})"
    return str(infos[0][4][0]), None


def _probe_readable(path: Path) -> None:
    if not path.exists():
        raise FileNotFoundError(f"{path} does not exist")
    if not os.access(path, os.R_OK):
        raise PermissionError(f"{path} is not readable")
    if path.is_dir():
        next(iter(os.scandir(path)), None)  # listing proves the mount answers, not just the cache
    else:
        with path.open("rb") as handle:
            handle.read(1)


def _probe_writable(path: Path) -> None:
    path.mkdir(parents=True, exist_ok=True)
    # A real file, because os.access() trusts mode bits that root-squashed NFS does not honour.
    fd, name = tempfile.mkstemp(prefix=".oda-sft-preflight-", dir=path)
    os.close(fd)
    os.unlink(name)


def check_paths(
    readable: tuple[Path, ...], writable: tuple[Path, ...], deadline: float = DEADLINE_S
) -> tuple[list[str], list[str]]:
    """(lines for the paths that passed, problems)."""
    passed: list[str] = []
    problems: list[str] = []
    checks = [("read", p, _probe_readable) for p in readable] + [("write in", p, _probe_writable) for p in writable]
    for verb, path, probe in checks:
        try:
            with_deadline(f"{verb} {path}", functools.partial(probe, path), deadline)
        except (OSError, TimeoutError) as exc:
            problems.append(f"cannot {verb} {path} ({_reason(exc)}): it must be on storage every node mounts")
        else:
            passed.append(f"can {verb} {path}")
    return passed, problems


def _reason(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return str(exc)


def run_preflight(
    spec: PreflightSpec, visible_gpus: int, env: Mapping[str, str], deadline: float = DEADLINE_S
) -> PreflightReport:
    """Run every check (no early exit: one failed run should report everything wrong with the node)."""
    report = PreflightReport(spec.node)
    problem = check_gpus(spec.expected_gpus, visible_gpus)
    if problem:
        report.problems.append(problem)
    report.problems.extend(spec.problems)
    report.lines.append(f"GPUs visible: {visible_gpus} (expected {spec.expected_gpus})")
    if spec.master_addr:
        resolved, problem = check_master(spec.master_addr, deadline)
        if problem:
            report.problems.append(problem)
        else:
            report.lines.append(f"MASTER_ADDR {spec.master_addr} resolves to {resolved}")
    passed, problems = check_paths(spec.readable, spec.writable, deadline)
    report.lines.extend(passed)
    report.problems.extend(problems)
    report.lines.extend(spec.notes)
    report.lines.extend(f"env: {line}" for line in communication_settings(env))
    return report
