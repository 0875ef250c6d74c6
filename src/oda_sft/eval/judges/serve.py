"""OpenCompass with Omni-MATH's judge: at the URL the user named (one run), or served by oda-sft on this node's
GPU once inference is done: OpenCompass infers (`-m infer`), LMDeploy's api_server starts on a free port of
127.0.0.1 under oda-sft's supervisor (util/subproc.py: it dies with oda-sft), is awaited (GET /v1/models), and
OpenCompass scores in the same folder (`-m eval -r STAMP` reuses the predictions); then the server stops.
"""

from __future__ import annotations

import shlex
import socket
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from oda_sft.errors import LaunchError
from oda_sft.eval.judges import omni
from oda_sft.util import subproc
from oda_sft.util.console import say
from oda_sft.util.fs import atomic_write_text

START_TIMEOUT_S = 900.0  # loading an 8B model and building LMDeploy's engine: minutes, not an hour
POLL_S = 1.0


@dataclass(frozen=True)
class Judge:
    """Omni-MATH's judge in one eval: the URLs the user named (none: oda-sft serves it), the dataset config that
    carries them to the evaluator, and what serving needs."""

    urls: tuple[str, ...]
    config: Path
    eval_id: str
    module: str  # the install's Omni-MATH config, which oda-sft's config imports
    model: Path  # Omni-Judge in the Hugging Face cache
    lmdeploy: Path
    log: Path  # the served judge's output

    def write(self, urls: tuple[str, ...]) -> None:
        atomic_write_text(self.config, omni.config_text(self.eval_id, self.module, list(urls)))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_ready(url: str, server: subproc.Background, timeout_s: float, log: Path) -> None:
    """Return once the server lists Omni-Judge; a one-line LaunchError if it exits first or takes too long."""
    deadline = time.monotonic() + timeout_s
    while True:
        why = omni.probe(url, timeout_s=min(omni.PROBE_TIMEOUT_S, max(timeout_s, 0.1)))
        if why is None:
            return
        if not server.running():
            raise LaunchError(f"the Omni-Judge server exited (status {server.stop()}) before it answered: its "
                              f"output is in {log}")  # fmt: skip
        if time.monotonic() >= deadline:
            raise LaunchError(f"the Omni-Judge server at {url} did not answer in {timeout_s:.0f} s ({why}): its "
                              f"output is in {log}")  # fmt: skip
        time.sleep(POLL_S)


@contextmanager
def serving(argv_for: Callable[[int], list[str]], log: Path, timeout_s: float = START_TIMEOUT_S) -> Iterator[str]:
    """A server started by argv_for(port) on a free port of 127.0.0.1, ready: its URL; stopped on leaving,
    however the block ends."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    argv = argv_for(port)
    say(f"serving Omni-Judge at {url} (output in {log}): {shlex.join(argv)}")
    try:
        server = subproc.start_background(argv, {"HF_HUB_OFFLINE": "1"}, log)
    except OSError as exc:
        raise LaunchError(f"cannot start the Omni-Judge server ({argv[0]}: {exc.strerror or exc}): install lmdeploy "
                          "beside OpenCompass, or pass --judge-url") from None  # fmt: skip
    try:
        wait_ready(url, server, timeout_s, log)
        yield url
    finally:
        server.stop()
        say(f"stopped the Omni-Judge server at {url}")


def run_opencompass(
    argv: list[str],
    watch: subproc.Watch,
    judge: Judge | None,
    signalled: list[int],
    timeout_s: float = START_TIMEOUT_S,
) -> int:
    """OpenCompass's exit status: one run, or with oda-sft serving the judge, inference then scoring."""
    if judge is None or judge.urls:
        return subproc.run_streaming(argv, {}, watch)
    say("Omni-MATH's judge is served here once inference is done: OpenCompass runs `-m infer`, then `-m eval`")
    status = subproc.run_streaming([*argv, "-m", "infer"], {}, watch)
    if status != 0 or signalled:
        return status

    def server_argv(port: int) -> list[str]:
        return omni.server_argv(str(judge.lmdeploy), str(judge.model), port, host="127.0.0.1", share=omni.CACHE_SHARE)

    with serving(server_argv, judge.log, timeout_s) as url:
        judge.write((url,))
        return subproc.run_streaming([*argv, "-m", "eval"], {}, watch)
