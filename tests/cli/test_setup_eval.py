"""`oda-sft setup-eval`: the OpenCompass environment from any install, with the pins shipped in the package. A full
install takes minutes and the network: --dry-run shows the exact pip commands, and the refusals are one line."""

from __future__ import annotations

import fnmatch
import importlib
import shlex
import subprocess
import sys
import sysconfig
import tomllib
from pathlib import Path

import pytest

from conftest import REPO, Cli, snapshot

setup_eval = importlib.import_module("oda_sft.cli.results.setup_eval")


def test_the_pins_ship_in_the_package() -> None:
    pins = setup_eval.PINS
    assert pins.is_relative_to(REPO / "src" / "oda_sft")
    globs = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"][
        "oda_sft.eval.data"
    ]
    for shipped in (pins, setup_eval.NODEPS):
        assert any(fnmatch.fnmatch(shipped.relative_to(REPO / "src/oda_sft/eval/data").as_posix(), g) for g in globs)
    wanted = [ln.strip() for ln in pins.read_text().splitlines() if ln.strip() and not ln.startswith("#")]
    assert wanted == ["opencompass==0.5.4", "numpy<2", "pyarrow<18", "langdetect==1.0.9"]
    nodeps = [ln.strip() for ln in setup_eval.NODEPS.read_text().splitlines() if ln.strip() and not ln.startswith("#")]
    assert nodeps == ["lmdeploy==0.17.0", "pybase64==1.5.1"]  # the last LMDeploy with the client Omni-MATH uses
    # scripts/dev.sh builds .venv-opencompass from the same two files, the second without dependencies
    dev = (REPO / "scripts" / "dev.sh").read_text()
    assert "pip install --quiet --no-deps -r src/oda_sft/eval/data/opencompass-nodeps.txt" in dev


def test_missing_opencompass_names_the_command_and_it_works_as_printed(cli: Cli, tmp_path: Path) -> None:
    r = cli("eval", "-m", "tiny", "--base", "--opencompass", str(tmp_path / "nowhere"))
    assert r.code == 2 and "`oda-sft setup-eval` builds it" in r.err, r.err
    venv = tmp_path / "oc"
    before = snapshot(tmp_path)
    r = cli("setup-eval", "--venv", str(venv), "--dry-run")
    assert r.code == 0, r.err
    assert snapshot(tmp_path) == before
    vpy = str(venv / "bin" / "python")
    assert r.out.splitlines() == [
        shlex.join([sys.executable, "-m", "venv", str(venv)]),
        f"# oda_sft_training_venv.pth in its site-packages: {sysconfig.get_paths()['purelib']}",
        shlex.join([vpy, "-m", "pip", "install", "--upgrade", "pip"]),
        shlex.join([vpy, "-m", "pip", "install", "-r", str(setup_eval.PINS)]),
        shlex.join([vpy, "-m", "pip", "install", "--no-deps", "-r", str(setup_eval.NODEPS)]),
    ]


def test_a_directory_that_is_not_a_venv_is_refused(cli: Cli, tmp_path: Path) -> None:
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("keep")
    before = snapshot(tmp_path)
    r = cli("setup-eval", "--venv", str(tmp_path / "mine"))
    assert r.code == 2 and "exists and is not a venv" in r.err and snapshot(tmp_path) == before


def _git(*args: str, cwd: Path) -> str:
    env = {"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@t"}
    done = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, check=True, env=env)
    return done.stdout.strip()


def test_the_fork_is_installed_from_a_clone_at_the_pinned_commit(
    cli: Cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    clone = tmp_path / "opencompass"
    clone.mkdir()
    r = cli("setup-eval", "--fork", str(clone), "--dry-run")
    assert r.code == 2 and "is not a clone of OpenDataArena/opencompass" in r.err and "git clone" in r.err
    (clone / "setup.py").write_text("")
    _git("init", "-q", cwd=clone)
    _git("add", "setup.py", cwd=clone)
    _git("commit", "-q", "-m", "x", cwd=clone)
    r = cli("setup-eval", "--fork", str(clone), "--dry-run")
    assert r.code == 2 and f"`git -C {clone} checkout a58c9cb56bdf776c6d3b1a445e39c9127cd0e831`" in r.err
    monkeypatch.setattr(setup_eval, "_pinned_commit", lambda: _git("rev-parse", "HEAD", cwd=clone))
    py310 = Path.home() / ".pyenv" / "versions" / "3.10.13" / "bin" / "python3.10"
    python = str(py310) if py310.exists() else sys.executable
    venv = tmp_path / "fork-venv"
    r = cli("setup-eval", "--fork", str(clone), "--python", python, "--venv", str(venv), "--dry-run")
    assert r.code == 0, r.err
    lines = r.out.splitlines()
    assert lines[-1] == shlex.join(
        [str(venv / "bin" / "python"), "-m", "pip", "install", "-e", str(clone), "pyarrow<18"]
    )
    if python != sys.executable:  # another Python: the training venv's torch cannot serve it
        assert "# no .pth: it installs its own torch" in lines
