"""`oda-sft setup-eval`: build the OpenCompass environment `oda-sft eval` runs, from any install (a wheel has no
scripts/): its own venv with the pins shipped in the package (eval/data/opencompass-requirements.txt: OpenCompass
0.5.4 alone pulls NumPy 2, which its pyarrow then refuses), reaching this venv's torch and transformers through a
.pth file as scripts/dev.sh does; or, with --fork CLONE, ODA's fork from a clone at the commit ODA pins, with vLLM
and LMDeploy (eval runs inference on vLLM, the judges on LMDeploy) and the torch and transformers they ran with
(eval/data/opencompass-fork-constraints.txt), in a venv of its own: no .pth, its torch is not the training venv's."""

from __future__ import annotations

import hashlib
import json
import platform
import shlex
import sys
import sysconfig
from pathlib import Path
from typing import Annotated

import typer

from oda_sft.cli.options import optional
from oda_sft.errors import UsageError
from oda_sft.util.console import say

PINS = Path(__file__).resolve().parents[2] / "eval" / "data" / "opencompass-requirements.txt"
NODEPS = PINS.with_name("opencompass-nodeps.txt")  # LMDeploy's client, without its dependencies (see the file)
RECORD = PINS.with_name("fork_record.json")
PTH_NAME = "oda_sft_training_venv.pth"
STAMP = ".oda-sft-setup"  # the sha256 of the pins it was built with (scripts/dev.sh writes the same)
FORK_PINS = PINS.with_name("opencompass-fork-constraints.txt")
# The fork's setup.py extras `vllm` and `lmdeploy` (bare names), which `pip install -e CLONE` leaves out.
FORK_ENGINES = ["vllm", "lmdeploy"]
# ODA's vLLM (--vllm-fork): OpenDataArena/vllm at the commit OpenDataArena-Tool 0475376 pins as its model_eval/vllm
# submodule, vLLM 0.8.5's code plus one patch that changes generation (docs/eval.md, "Installing the fork").
VLLM_FORK_COMMIT = "95343685d442f0ad6af9dbf77b5be471116fb64a"
VLLM_WHEEL_TAG = "cp38-abi3-manylinux1_x86_64"  # PyPI's one CUDA wheel of vLLM 0.8.5
# That vLLM's requirements/build.txt, less torch (pinned, already there); setuptools>=77 reads its PEP 639 license.
VLLM_BUILD = ["setuptools>=77", "setuptools-scm>=8", "cmake>=3.26", "wheel"]


def default_venv() -> Path:
    from oda_sft.util.paths import checkout_root, user_opencompass_venv

    root = checkout_root()
    return root / ".venv-opencompass" if root is not None else user_opencompass_venv()


def _pinned_commit() -> str:
    commit: str = json.loads(RECORD.read_text(encoding="utf-8"))["fork"]["commit"]
    return commit


def _query(argv: list[str]) -> str | None:
    from oda_sft.util import subproc

    done = subproc.capture(argv, timeout_s=30)
    return done.stdout.strip() if done is not None and done.returncode == 0 else None


def plan(venv: Path, python: str, fork: Path | None) -> tuple[list[list[str]], list[list[str]], str | None]:
    """The command that makes the venv, the pip commands, and the .pth line that lends it this venv's
    site-packages (None: another Python version, whose venv installs its own torch)."""
    version = _query([python, "-c", "import sys; print('%d.%d' % sys.version_info[:2])"])
    if version is None:
        raise UsageError(f"--python {python} does not run: name a Python interpreter")
    vpy = str(venv / "bin" / "python")
    make = [[python, "-m", "venv", str(venv)]]
    pip = [[vpy, "-m", "pip", "install", "--upgrade", "pip"]]
    if fork is None:
        pip.append([vpy, "-m", "pip", "install", "-r", str(PINS)])
        pip.append([vpy, "-m", "pip", "install", "--no-deps", "-r", str(NODEPS)])
    else:
        pip.append([vpy, "-m", "pip", "install", "-c", str(FORK_PINS), "-e", str(fork), *FORK_ENGINES])
    # Compiled packages are per Python version: the training venv's torch serves only the same version. The
    # fork's venv has its own pinned torch: the training venv's packages must not be on its path at all.
    same = version == "{}.{}".format(*sys.version_info[:2])
    pth = sysconfig.get_paths()["purelib"] if same and fork is None else None
    return make, pip, pth


def _check_fork(fork: Path) -> None:
    _check_clone("--fork", fork, "OpenDataArena/opencompass", _pinned_commit())


def _check_clone(flag: str, clone: Path, repo: str, want: str) -> None:
    head = _query(["git", "-C", str(clone), "rev-parse", "HEAD"])
    quoted = shlex.quote(str(clone))  # the advice is pasted into a shell: a path may hold a space
    if head is None or not (clone / "setup.py").is_file():
        command = f"git clone https://github.com/{repo} {quoted} && git -C {quoted} checkout {want}"
        raise UsageError(f"{flag} {clone} is not a clone of {repo}: `{command}`")
    if head != want:
        raise UsageError(f"{flag} {clone} is at {head[:12]}, not at {want[:12]}, the commit ODA pins: "
                         f"`git -C {quoted} checkout {want}`")  # fmt: skip


def fork_pin(name: str) -> str:
    """The version FORK_PINS pins NAME to (`NAME==VERSION`)."""
    for line in FORK_PINS.read_text(encoding="utf-8").splitlines():
        if line.startswith(f"{name}=="):
            return line.split("==", 1)[1].strip()
    raise LookupError(f"{FORK_PINS} pins no {name}")


def vllm_fork_steps(venv: Path, clone: Path) -> list[list[str]]:
    """ODA's vLLM from a clone, over the compiled kernels of the release it is based on (nothing is compiled):
    vLLM's setup.py copies them from the wheel VLLM_PRECOMPILED_WHEEL_LOCATION names, built from the same commit
    (docs/eval.md). Its build runs in the venv, whose torch is the pinned one."""
    vpy = str(venv / "bin" / "python")
    version = fork_pin("vllm")
    wheels = venv / "oda-sft-wheels"
    wheel = wheels / f"vllm-{version}-{VLLM_WHEEL_TAG}.whl"  # the name pip download gives PyPI's file
    env = ["env", "VLLM_USE_PRECOMPILED=1", f"VLLM_PRECOMPILED_WHEEL_LOCATION={wheel}",
           f"SETUPTOOLS_SCM_PRETEND_VERSION={version}+oda.{VLLM_FORK_COMMIT[:7]}"]  # fmt: skip
    return [
        [vpy, "-m", "pip", "download", "--no-deps", f"vllm=={version}", "-d", str(wheels)],
        [vpy, "-m", "pip", "install", "-c", str(FORK_PINS), *VLLM_BUILD],
        [*env, vpy, "-m", "pip", "install", "-c", str(FORK_PINS), "--no-build-isolation", "-e", str(clone)],
    ]


def setup_eval(
    venv: Annotated[
        Path | None,
        optional(
            help="Where to build it [default: the checkout's .venv-opencompass, else "
            "$XDG_DATA_HOME/oda-sft/opencompass-venv, where `oda-sft eval` looks]."
        ),
    ] = None,
    python: Annotated[
        str | None, optional(help="The Python to build it with [default: this one; the fork needs 3.10].")
    ] = None,
    fork: Annotated[
        Path | None,
        optional(
            help="A clone of OpenDataArena/opencompass at the commit ODA pins: install it instead of PyPI's, with "
            "vLLM and LMDeploy (pinned with the torch and transformers ODA ran)."
        ),
    ] = None,
    vllm_fork: Annotated[
        Path | None,
        optional(
            help="With --fork: a clone of OpenDataArena/vllm at the commit ODA pins, installed instead of PyPI's vLLM "
            "0.8.5 (the same code but for ODA's repetition cut-off), over 0.8.5's compiled kernels (x86_64)."
        ),
    ] = None,
    dry_run: Annotated[bool, typer.Option(help="Print the commands; run nothing.")] = False,
) -> None:
    """Build the OpenCompass environment `oda-sft eval` runs, with the pins it needs (docs/eval.md)."""
    target = (venv or default_venv()).absolute()
    interpreter = python or sys.executable
    if fork is not None:
        fork = fork.absolute()
        _check_fork(fork)
    if vllm_fork is not None:
        if fork is None:
            raise UsageError("--vllm-fork goes with --fork (ODA's vLLM serves ODA's OpenCompass): add --fork CLONE")
        if platform.machine() != "x86_64":
            raise UsageError(f"--vllm-fork needs x86_64 (vLLM {fork_pin('vllm')}'s CUDA kernels), not "
                             f"{platform.machine()}: leave it out to install PyPI's vLLM")  # fmt: skip
        vllm_fork = vllm_fork.absolute()
        _check_clone("--vllm-fork", vllm_fork, "OpenDataArena/vllm", VLLM_FORK_COMMIT)
    make, pip, pth = plan(target, interpreter, fork)
    if vllm_fork is not None:
        pip += vllm_fork_steps(target, vllm_fork)
    pinned = hashlib.sha256(PINS.read_bytes() + NODEPS.read_bytes()).hexdigest()  # what scripts/dev.sh stamps
    want = (pinned if fork is None
            else f"fork {_pinned_commit()} {hashlib.sha256(FORK_PINS.read_bytes()).hexdigest()}")  # fmt: skip
    want += f" vllm {VLLM_FORK_COMMIT}" if vllm_fork is not None else ""
    stamp = target / STAMP
    if stamp.is_file() and stamp.read_text(encoding="utf-8").strip() == want and (target / "bin/opencompass").exists():
        say(f"{target} is built with these pins already: `oda-sft eval --opencompass {target}` runs it")
        return
    if target.exists() and not (target / "pyvenv.cfg").is_file():
        raise UsageError(f"{target} exists and is not a venv: name another --venv (nothing was changed)")
    if target.exists():
        _check_kind(target, fork, vllm_fork, python)
        make = []  # a venv already: pip brings it to the pins
    if dry_run:
        for argv in make:
            typer.echo(shlex.join(argv))
        typer.echo(f"# {PTH_NAME} in its site-packages: {pth}" if pth else "# no .pth: it installs its own torch")
        for argv in pip:
            typer.echo(shlex.join(argv))
        return
    stamp.unlink(missing_ok=True)  # a build that stops half-way is not taken for the one stamped before
    again = _again(venv, python, fork, vllm_fork)
    for argv in make:
        _run(argv, target, again)
    if pth:
        _write_pth(target, pth, again)
    for argv in pip:
        _run(argv, target, again)
    stamp.write_text(want + "\n", encoding="utf-8")
    say(f"built {target}: `oda-sft eval --opencompass {target}` runs it" + ("" if venv else " (and finds it alone)"))
    if fork is not None:  # from GitHub, which pip's pins cannot reach: eval names each when a benchmark needs it
        say(
            "not installed (their sources are on GitHub): human_eval for HumanEval, evalplus for HumanEval+ and "
            "nltk's punkt_tab for IFEval; eval checks each before it starts and names the command that adds it"
        )


def _check_kind(target: Path, fork: Path | None, vllm_fork: Path | None, python: str | None) -> None:
    """PyPI's OpenCompass lends the training venv's torch through a .pth; the fork installs its own torch 2.6.0 and
    must not see the training venv: one venv is never turned into the other (a stamp or a .pth says which it is)."""
    stamp = target / STAMP
    built = stamp.read_text(encoding="utf-8").strip() if stamp.is_file() else ""
    if built:
        was_fork = built.startswith("fork ")
    else:  # no stamp: only a .pth tells it (a venv of the user's own is left to pip, as before)
        was_fork = fork is not None and not any(target.glob(f"lib/python*/site-packages/{PTH_NAME}"))
    if was_fork != (fork is not None):
        kind = "ODA's fork" if was_fork else "PyPI's OpenCompass (with a .pth to the training venv)"
        argv = ["oda-sft", "setup-eval", *(["--fork", str(fork)] if fork else []),
                *(["--vllm-fork", str(vllm_fork)] if vllm_fork else []), *(["--python", python] if python else []),
                "--venv", f"{target}-fork" if fork else f"{target}-pypi"]  # fmt: skip
        raise UsageError(f"{target} holds {kind}, and one venv is not turned into the other (nothing was changed): "
                         f"build it in another, `{shlex.join(argv)}`")  # fmt: skip


def _again(venv: Path | None, python: str | None, fork: Path | None, vllm_fork: Path | None) -> str:
    """This very command, for the advice to run it again."""
    flags = [("--venv", venv), ("--python", python), ("--fork", fork), ("--vllm-fork", vllm_fork)]
    return shlex.join(["oda-sft", "setup-eval", *(w for f, v in flags if v is not None for w in (f, str(v)))])


def _run(argv: list[str], target: Path, again: str) -> None:
    from oda_sft.util import subproc

    say(f"running: {shlex.join(argv)}")
    if subproc.run_inherited(argv) != 0:
        raise UsageError(f"`{shlex.join(argv)}` failed (its output is above); {target} is incomplete: run "
                         f"`{again}` again once the cause is fixed")  # fmt: skip


def _write_pth(venv: Path, training_purelib: str, again: str) -> None:
    """Before pip runs, so pip counts the training venv's torch and transformers as installed."""
    purelib = _query([str(venv / "bin" / "python"), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"])
    if purelib is None:
        raise UsageError(f"{venv}/bin/python does not run: remove {venv} and run `{again}` again")
    (Path(purelib) / PTH_NAME).write_text(training_purelib + "\n", encoding="utf-8")
