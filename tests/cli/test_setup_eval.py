"""`oda-sft setup-eval`: the OpenCompass environment from any install, with the pins shipped in the package. A full
install takes minutes and the network: --dry-run shows the exact pip commands, and the refusals are one line."""

from __future__ import annotations

import fnmatch
import hashlib
import importlib
import shlex
import subprocess
import sys
import sysconfig
import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement

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
    vpy = str(venv / "bin" / "python")
    assert r.out.splitlines() == [
        shlex.join([python, "-m", "venv", str(venv)]),
        "# no .pth: it installs its own torch",
        shlex.join([vpy, "-m", "pip", "install", "--upgrade", "pip"]),
        shlex.join(
            [vpy, "-m", "pip", "install", "-c", str(setup_eval.FORK_PINS), "-e", str(clone), "vllm", "lmdeploy"]
        ),
    ]


def _fork_pins() -> dict[str, Requirement]:
    lines = [ln.strip() for ln in setup_eval.FORK_PINS.read_text().splitlines()]
    reqs = [Requirement(ln) for ln in lines if ln and not ln.startswith("#")]
    return {r.name: r for r in reqs}


def test_the_fork_pins_ship_in_the_package_and_pin_the_engines() -> None:
    pins = setup_eval.FORK_PINS
    globs = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"][
        "oda_sft.eval.data"
    ]
    assert pins.parent == setup_eval.PINS.parent
    assert any(fnmatch.fnmatch(pins.name, g) for g in globs)
    reqs = _fork_pins()
    # What ODA ran (docs/eval.md, "Installing the fork"): vLLM 0.8.5 with its torch, transformers as vLLM tested.
    exact = {name: str(r.specifier) for name, r in reqs.items() if str(r.specifier).startswith("==")}
    assert exact == {
        "vllm": "==0.8.5",
        "torch": "==2.6.0",
        "torchvision": "==0.21.0",
        "torchaudio": "==2.6.0",
        "transformers": "==4.51.3",
        "lmdeploy": "==0.9.1",
    }
    # Every engine the eval looks for in that environment (opencompass.describe) is pinned.
    assert {"vllm", "lmdeploy", "transformers", "torch"} <= set(exact)
    assert set(setup_eval.FORK_ENGINES) <= set(exact)
    assert "17.0.0" in reqs["pyarrow"].specifier and "18.0.0" not in reqs["pyarrow"].specifier
    # docs/eval.md names the same versions, with their evidence.
    doc = " ".join((REPO / "docs" / "eval.md").read_text().split())
    for shown, name in (
        ("vLLM", "vllm"),
        ("torch", "torch"),
        ("transformers", "transformers"),
        ("LMDeploy", "lmdeploy"),
    ):
        assert f"{shown} {exact[name][2:]}" in doc, name


def test_a_fork_venv_built_with_other_pins_is_rebuilt(
    cli: Cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    clone = _clone_at_pinned_commit(tmp_path, monkeypatch)
    venv = tmp_path / "fork-venv"
    (venv / "bin").mkdir(parents=True)
    (venv / "pyvenv.cfg").write_text("home = /usr/bin\n")
    (venv / "bin" / "opencompass").write_text("#!/bin/sh\n")
    commit = setup_eval._pinned_commit()
    (venv / setup_eval.STAMP).write_text(f"fork {commit}\n")  # built before the pins (or with others)
    r = cli("setup-eval", "--fork", str(clone), "--venv", str(venv), "--dry-run")
    assert r.code == 0 and "-c " + str(setup_eval.FORK_PINS) in r.out, (r.out, r.err)
    digest = hashlib.sha256(setup_eval.FORK_PINS.read_bytes()).hexdigest()
    (venv / setup_eval.STAMP).write_text(f"fork {commit} {digest}\n")
    r = cli("setup-eval", "--fork", str(clone), "--venv", str(venv), "--dry-run")
    assert r.code == 0 and "built with these pins already" in r.err and "pip" not in r.out, (r.out, r.err)


def test_a_clone_at_another_commit_is_refused_before_anything_is_made(cli: Cli, tmp_path: Path) -> None:
    clone = tmp_path / "opencompass"
    clone.mkdir()
    (clone / "setup.py").write_text("")
    _git("init", "-q", cwd=clone)
    _git("add", "setup.py", cwd=clone)
    _git("commit", "-q", "-m", "x", cwd=clone)
    before = snapshot(tmp_path)
    r = cli("setup-eval", "--fork", str(clone), "--venv", str(tmp_path / "venv"))  # a real run, not a dry one
    assert r.code == 2 and len(r.err.strip().splitlines()) == 1 and "the commit ODA pins" in r.err, r.err
    assert snapshot(tmp_path) == before and not (tmp_path / "venv").exists()
    checkout = r.err.split("`")[1]  # the advice, as printed: it names the pinned commit
    assert shlex.split(checkout)[:4] == ["git", "-C", str(clone), "checkout"]
    assert shlex.split(checkout)[4] == setup_eval._pinned_commit()


def _clone_at_pinned_commit(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    clone = tmp_path / "opencompass"
    clone.mkdir()
    (clone / "setup.py").write_text("")
    _git("init", "-q", cwd=clone)
    _git("add", "setup.py", cwd=clone)
    _git("commit", "-q", "-m", "x", cwd=clone)
    monkeypatch.setattr(setup_eval, "_pinned_commit", lambda: _git("rev-parse", "HEAD", cwd=clone))
    return clone


def test_odas_vllm_is_installed_from_its_clone_over_the_pinned_releases_kernels(
    cli: Cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    clone = _clone_at_pinned_commit(tmp_path, monkeypatch)
    vllm = tmp_path / "vllm"
    vllm.mkdir()
    (vllm / "setup.py").write_text("")
    _git("init", "-q", cwd=vllm)
    _git("add", "setup.py", cwd=vllm)
    _git("commit", "-q", "-m", "x", cwd=vllm)
    venv = tmp_path / "fork-venv"
    r = cli("setup-eval", "--vllm-fork", str(vllm), "--venv", str(venv), "--dry-run")
    assert r.code == 2 and "--vllm-fork goes with --fork" in r.err, r.err
    r = cli("setup-eval", "--fork", str(clone), "--vllm-fork", str(tmp_path / "none"), "--venv", str(venv), "--dry-run")
    assert r.code == 2 and "is not a clone of OpenDataArena/vllm" in r.err, r.err
    before = snapshot(tmp_path)
    r = cli("setup-eval", "--fork", str(clone), "--vllm-fork", str(vllm), "--venv", str(venv))  # a real run
    want = setup_eval.VLLM_FORK_COMMIT
    assert r.code == 2 and f"`git -C {vllm} checkout {want}`" in r.err and snapshot(tmp_path) == before, r.err
    monkeypatch.setattr(setup_eval, "VLLM_FORK_COMMIT", _git("rev-parse", "HEAD", cwd=vllm))
    r = cli("setup-eval", "--fork", str(clone), "--vllm-fork", str(vllm), "--venv", str(venv), "--dry-run")
    assert r.code == 0, r.err
    vpy, pins = str(venv / "bin" / "python"), str(setup_eval.FORK_PINS)
    wheel = venv / "oda-sft-wheels" / "vllm-0.8.5-cp38-abi3-manylinux1_x86_64.whl"
    assert r.out.splitlines()[-3:] == [
        shlex.join([vpy, "-m", "pip", "download", "--no-deps", "vllm==0.8.5", "-d", str(wheel.parent)]),
        shlex.join([vpy, "-m", "pip", "install", "-c", pins, "setuptools>=77", "setuptools-scm>=8", "cmake>=3.26",
                    "wheel"]),
        shlex.join(
            ["env", "VLLM_USE_PRECOMPILED=1", f"VLLM_PRECOMPILED_WHEEL_LOCATION={wheel}",
             f"SETUPTOOLS_SCM_PRETEND_VERSION=0.8.5+oda.{setup_eval.VLLM_FORK_COMMIT[:7]}",
             vpy, "-m", "pip", "install", "-c", pins, "--no-build-isolation", "-e", str(vllm)]
        ),
    ]  # fmt: skip
    # A venv built without ODA's vLLM is not taken for one built with it.
    (venv / "bin").mkdir(parents=True)
    (venv / "pyvenv.cfg").write_text("home = /usr/bin\n")
    (venv / "bin" / "opencompass").write_text("#!/bin/sh\n")
    digest = hashlib.sha256(setup_eval.FORK_PINS.read_bytes()).hexdigest()
    (venv / setup_eval.STAMP).write_text(f"fork {setup_eval._pinned_commit()} {digest}\n")
    r = cli("setup-eval", "--fork", str(clone), "--vllm-fork", str(vllm), "--venv", str(venv), "--dry-run")
    assert r.code == 0 and "--no-build-isolation" in r.out, (r.out, r.err)


def test_the_vllm_wheel_named_is_the_pinned_release() -> None:
    assert setup_eval.fork_pin("vllm") == "0.8.5" and setup_eval.fork_pin("lmdeploy") == "0.9.1"
    with pytest.raises(LookupError):
        setup_eval.fork_pin("opencompass")


def test_the_clone_advice_quotes_a_path_with_a_space(cli: Cli, tmp_path: Path) -> None:
    clone = tmp_path / "my clones" / "opencompass"
    r = cli("setup-eval", "--fork", str(clone), "--dry-run")
    assert r.code == 2 and len(r.err.strip().splitlines()) == 1, r.err
    argv = shlex.split(r.err.split("`")[1])
    assert argv[:4] == ["git", "clone", "https://github.com/OpenDataArena/opencompass", str(clone)], argv
    assert argv[5:8] == ["git", "-C", str(clone)], argv


def _fake_venv(venv: Path, stamp: str | None, pth: bool = False) -> None:
    (venv / "bin").mkdir(parents=True)
    (venv / "pyvenv.cfg").write_text("home = /usr/bin\n")
    (venv / "bin" / "opencompass").write_text("#!/bin/sh\n")
    if stamp is not None:
        (venv / setup_eval.STAMP).write_text(stamp + "\n")
    if pth:
        site = venv / "lib" / "python3.11" / "site-packages"
        site.mkdir(parents=True)
        (site / setup_eval.PTH_NAME).write_text("/training/site-packages\n")


def test_a_pypi_venv_is_not_turned_into_the_forks_nor_the_other_way(
    cli: Cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The fork's venv installs torch 2.6.0 and must not see the training venv through the PyPI venv's .pth; PyPI's
    pins over the fork's would mix both. Refused, in a dry run too, with the command for a venv of its own."""
    clone = _clone_at_pinned_commit(tmp_path, monkeypatch)
    pypi, fork = tmp_path / "oc", tmp_path / "fork-venv"
    _fake_venv(pypi, hashlib.sha256(setup_eval.PINS.read_bytes() + setup_eval.NODEPS.read_bytes()).hexdigest(), True)
    _fake_venv(fork, f"fork {setup_eval._pinned_commit()} old-pins")
    before = snapshot(tmp_path)
    for args, kind in ((["--fork", str(clone), "--venv", str(pypi)], "PyPI's"), (["--venv", str(fork)], "ODA's fork")):
        for dry in ([], ["--dry-run"]):
            r = cli("setup-eval", *args, *dry)
            assert r.code == 2 and len(r.err.strip().splitlines()) == 1 and f"holds {kind}" in r.err, r.err
            assert snapshot(tmp_path) == before
            advice = shlex.split(r.err.split("`")[-2])
            assert advice[:2] == ["oda-sft", "setup-eval"] and advice[-2] == "--venv" and advice[-1] != args[-1]
            r = cli(*advice[1:], "--dry-run")  # the advice, as printed: a fresh venv of its own
            assert r.code == 0 and shlex.join([setup_eval.sys.executable, "-m", "venv", advice[-1]]) in r.out, r.err
    # without a stamp, a .pth says it is PyPI's
    (pypi / setup_eval.STAMP).unlink()
    r = cli("setup-eval", "--fork", str(clone), "--venv", str(pypi), "--dry-run")
    assert r.code == 2 and "holds PyPI's" in r.err, r.err


def test_a_rebuild_that_fails_leaves_no_stamp_of_the_build_before(cli: Cli, tmp_path: Path) -> None:
    venv = tmp_path / "oc"
    _fake_venv(venv, "sha256 of other pins")
    (venv / "bin" / "python").write_text("#!/bin/sh\nexit 3\n")  # pip fails
    (venv / "bin" / "python").chmod(0o755)
    r = cli("setup-eval", "--venv", str(venv))
    assert r.code == 2 and len(r.err.strip().splitlines()) == 1, r.err
    assert not (venv / setup_eval.STAMP).exists()
    # the advice runs this very command again, into the same venv
    assert shlex.split(r.err.split("`")[-2]) == ["oda-sft", "setup-eval", "--venv", str(venv)], r.err
