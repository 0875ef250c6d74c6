"""Shared fixtures: an isolated oda-sft home and per-user data dir, a copy of the demo dataset dir, a CLI runner."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import NoReturn

import pytest
from typer.testing import CliRunner

from oda_sft.cli import main

REPO = Path(__file__).resolve().parents[1]
DEMO = REPO / "data"  # the demo dataset dir, shipped inside the package as oda_sft/demo
_INTEGRATION = Path(__file__).resolve().parent / "integration"
_UNIT = Path(__file__).resolve().parent / "unit"


# The real-process modules that take longest (seconds of one worker in a clean-clone CI run, 2026-12-07), run
# first: with `--dist loadfile --no-loadscope-reorder` (pyproject) each worker draws whole modules in this order,
# so the 640 s one does not start last while the other worker idles. Longest first, the rest as collected.
_SLOW_FIRST = (
    "test_rank_separation_real.py",  # 641
    "test_eval_real.py",  # 357
    "test_resume_epochs.py",  # 224
    "test_run_lifecycle.py",  # 165
    "test_trackers_real.py",  # 113
    "test_profile_math.py",  # 107
    "test_advice_real.py",  # 102
    "test_runs_real.py",  # 91
    "test_eval_omni_real.py",  # 90
    "test_recipe_eras.py",  # 85
    "test_bench_tiny.py",  # 70
    "test_tokenized_cache_real.py",  # 58
    "test_resume_data_identity.py",  # 53
    "test_eval_ifeval_real.py",  # 50
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Everything under tests/integration runs the real trainer or real processes: mark it; slowest first."""
    for item in items:
        if _INTEGRATION in Path(str(item.fspath)).resolve().parents:
            item.add_marker(pytest.mark.integration)
    rank = {name: i for i, name in enumerate(_SLOW_FIRST)}
    items.sort(key=lambda item: rank.get(Path(str(item.fspath)).name, len(rank)))  # stable: the rest as collected


def _no_processes(*_args: object, **_kwargs: object) -> NoReturn:
    raise AssertionError("a unit test started a process: move it to tests/integration (the real-process tier)")


@pytest.fixture(autouse=True)
def _unit_tests_start_no_process(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    """The unit tier is pure logic: a test there that starts a process fails."""
    if _UNIT not in Path(str(request.node.fspath)).resolve().parents:
        return
    monkeypatch.setattr(subprocess.Popen, "__init__", _no_processes)
    for name in ("fork", "forkpty", "posix_spawn", "posix_spawnp", "system", "execv", "execve"):
        monkeypatch.setattr(os, name, _no_processes)


@pytest.fixture(scope="session")
def oda_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One cache (tiny model, tokenized data) for the whole session, never the user's own.
    ODA_SFT_TEST_HOME shares one across the sessions of a test run (parallel workers, both tiers), so the
    tiny model is built once per run; its build and every cache in it are safe when processes race."""
    shared = os.environ.get("ODA_SFT_TEST_HOME")
    if shared:
        Path(shared).mkdir(parents=True, exist_ok=True)
        return Path(shared)
    return tmp_path_factory.mktemp("oda-home")


@pytest.fixture(autouse=True)
def _isolated_env(monkeypatch: pytest.MonkeyPatch, oda_home: Path, tmp_path_factory: pytest.TempPathFactory) -> None:
    monkeypatch.setenv("ODA_SFT_HOME", str(oda_home))
    # The default dataset dir is $XDG_DATA_HOME/oda-sft/datasets: never the real user's.
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path_factory.mktemp("xdg-data")))
    monkeypatch.delenv("ODA_SFT_DATASET_DIR", raising=False)
    monkeypatch.delenv("ODA_SFT_DEBUG", raising=False)
    # One OpenMP thread per torch process: the tiers run on both cores, and two tiny trainings at once with
    # torch's default threads (one per core each) spin against each other: 131 s here, against 20 s with one
    # thread each (one alone: 17 s and 15 s). A value the caller set is kept.
    if "OMP_NUM_THREADS" not in os.environ:
        monkeypatch.setenv("OMP_NUM_THREADS", "1")


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    """A private copy of the shipped demo dataset dir (dataset_info.json with oda_demo, oda_demo.json)."""
    target = tmp_path / "data"
    shutil.copytree(DEMO, target, ignore=shutil.ignore_patterns("__init__.py", "__pycache__"))
    return target


class Cli:
    def __init__(self) -> None:
        self.runner = CliRunner()

    def __call__(self, *args: str) -> Result:
        """Run the real entry point, main(argv), with captured stdout and stderr."""
        exception: BaseException | None = None
        with self.runner.isolation() as (out, err, _):
            try:
                code = main(list(args))
            except Exception as exc:  # only with ODA_SFT_DEBUG=1
                code, exception = 1, exc
            stdout, stderr = out.getvalue().decode(), err.getvalue().decode()
        return Result(code, stdout, stderr, exception)


class Result:
    def __init__(self, code: int, out: str, err: str, exception: BaseException | None) -> None:
        self.code, self.out, self.err, self.exception = code, out, err, exception


@pytest.fixture
def cli() -> Iterator[Cli]:
    yield Cli()


def snapshot(root: Path) -> dict[str, bytes]:
    """Every file under root with its bytes: compare before and after to prove nothing changed."""
    if not root.exists():
        return {}
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def write_torch_file(path: Path) -> None:
    """A stand-in for a file torch.save wrote to the end: a zip archive, as torch >= 1.6 writes them (a resume
    checks that its end-of-archive record is there)."""
    import zipfile

    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("archive/data.pkl", b"stand-in")
