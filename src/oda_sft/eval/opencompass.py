"""The OpenCompass install an eval runs: found, described and checked before anything starts.

OpenCompass lives in its own environment (it pins numpy<2 and pandas, unlike the training venv):
--opencompass PATH (the `opencompass` program or its venv), else $ODA_SFT_OPENCOMPASS, else `opencompass`
on PATH, else the checkout's .venv-opencompass, else the user's (`oda-sft setup-eval` builds either). One short
query of that environment's Python, offline, says its version, where it is and which engines it has; the dataset
configs are then found on disk the way OpenCompass finds them (`--datasets NAME`: NAME.py, once).
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from oda_sft.errors import UsageError
from oda_sft.util import subproc
from oda_sft.util.paths import checkout_root, user_opencompass_venv

ENV_VAR = "ODA_SFT_OPENCOMPASS"
VENV_NAME = ".venv-opencompass"
FORK_REPO = "https://github.com/OpenDataArena/opencompass"
PROBE_TIMEOUT_S = 5.0
INSTALL_HINT = "`oda-sft setup-eval` builds it (OpenCompass 0.5.4 in its own venv, with the pins it needs)"

# Run by that environment's Python: nothing is imported but importlib; prints one JSON line.
_PROBE = """
import importlib.metadata as md, importlib.util as u, json, os, sys
spec = u.find_spec('opencompass')
out = {'path': os.path.dirname(spec.origin) if spec and spec.origin else None}
try:
    out['version'] = md.version('opencompass')
except md.PackageNotFoundError:
    out['version'] = None
for name in ('vllm', 'lmdeploy', 'transformers', 'torch', 'langdetect', 'human_eval', 'evalplus'):
    out[name] = u.find_spec(name) is not None
lmd = u.find_spec('lmdeploy') if out['lmdeploy'] else None
out['lmdeploy_client'] = bool(lmd and lmd.origin and os.path.isfile(
    os.path.join(os.path.dirname(lmd.origin), 'serve', 'openai', 'api_client.py')))
# nltk.data.path as nltk builds it on Linux (nltk/data.py:295-312, nltk 3.10), and whether punkt_tab is in one
dirs = [os.path.expanduser(d) for d in os.environ.get('NLTK_DATA', '').split(os.pathsep) if d]
if 'APPENGINE_RUNTIME' not in os.environ and os.path.expanduser('~/') != '~/':
    dirs.append(os.path.expanduser('~/nltk_data'))
dirs += [os.path.join(sys.prefix, *p) for p in (('nltk_data',), ('share', 'nltk_data'), ('lib', 'nltk_data'))]
dirs += ['/usr/share/nltk_data', '/usr/local/share/nltk_data', '/usr/lib/nltk_data', '/usr/local/lib/nltk_data']
out['nltk_data'] = dirs
out['punkt_tab'] = any(os.path.isdir(os.path.join(d, 'tokenizers', 'punkt_tab', 'english'))
                       or os.path.isfile(os.path.join(d, 'tokenizers', 'punkt_tab.zip')) for d in dirs)
print(json.dumps(out))
"""


@dataclass(frozen=True)
class Install:
    program: Path  # the `opencompass` program
    python: Path  # its environment's Python
    package: Path  # the installed opencompass package
    version: str
    engines: frozenset[str]  # vllm, lmdeploy, transformers, torch and SCORING_MODULES: those importable there
    lmdeploy_client: bool = False  # lmdeploy.serve.openai.api_client, which Omni-MATH's evaluator sends with
    punkt_tab: bool = False  # nltk's punkt_tab English model in one of nltk_data, which IFEval's scoring loads
    nltk_data: tuple[str, ...] = ()  # the folders nltk looks in, in its order

    @property
    def fork(self) -> bool:
        """ODA's fork: it ships the *_xver_gen / *_cver_gen dataset configs."""
        return bool(find_config(self.package, "gsm8k_0shot_xver_gen"))

    def record(self) -> dict[str, object]:
        return {"version": self.version, "path": str(self.package), "fork": self.fork}


def locate(given: Path | None) -> Path:
    """The `opencompass` program to run, or a one-line UsageError naming where it was looked for."""
    if given is not None:
        where = f"--opencompass {given}"
        candidate: Path | None = given / "bin" / "opencompass" if given.is_dir() else given
    elif os.environ.get(ENV_VAR):
        where = f"{ENV_VAR}={os.environ[ENV_VAR]}"
        path = Path(os.environ[ENV_VAR])
        candidate = path / "bin" / "opencompass" if path.is_dir() else path
    else:
        found = shutil.which("opencompass")
        root = checkout_root()
        local = (root / VENV_NAME if root is not None else user_opencompass_venv()) / "bin" / "opencompass"
        candidate = Path(found) if found else local
        where = f"opencompass on PATH or {local}"
    if candidate is None or not (candidate.is_file() and os.access(candidate, os.X_OK)):
        raise UsageError(f"OpenCompass not found ({where}): {INSTALL_HINT}, or pass --opencompass PATH")
    return candidate.absolute()


def _python_of(program: Path) -> Path:
    sibling = program.parent / "python"
    if sibling.exists():
        return sibling
    try:
        first = program.read_bytes()[:256].split(b"\n", 1)[0].decode("utf-8", "replace")
    except OSError:
        first = ""
    if first.startswith("#!") and len(first.split()) == 1:
        return Path(first[2:].strip())
    raise UsageError(f"cannot tell which Python runs {program}: pass --opencompass as the venv that holds it")


def describe(program: Path) -> Install:
    """Ask the program's environment what it holds: offline, at most PROBE_TIMEOUT_S."""
    python = _python_of(program)
    # From the interpreter's own folder: `python -c` puts its cwd first on sys.path, and a user's folder named
    # opencompass/ or human_eval/ would count as installed.
    done = subproc.capture([str(python), "-c", _PROBE], timeout_s=PROBE_TIMEOUT_S, cwd=python.parent)
    if done is None or done.returncode != 0:
        why = "did not answer in time" if done is None else (done.stderr.strip().splitlines() or ["failed"])[-1]
        raise UsageError(f"cannot query the OpenCompass environment of {program} ({python}: {why}): {INSTALL_HINT}")
    try:
        facts = json.loads(done.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        raise UsageError(f"{python} gave no answer about OpenCompass: {INSTALL_HINT}") from None
    if not facts.get("path") or not facts.get("version"):
        raise UsageError(f"{python} has no opencompass package: {INSTALL_HINT}")
    engines = frozenset(k for k in ("vllm", "lmdeploy", "transformers", "torch", *SCORING_MODULES) if facts.get(k))
    client, punkt = bool(facts.get("lmdeploy_client")), bool(facts.get("punkt_tab"))
    nltk_data = tuple(str(d) for d in facts.get("nltk_data") or ())
    return Install(program, python, Path(facts["path"]), str(facts["version"]), engines, client, punkt, nltk_data)


# Modules an evaluator imports only when it scores, after inference (ODA's fork at a58c9cb; the same in 0.5.4):
# module -> (the benchmark, what imports it, the command that installs it: OpenDataArena-Tool 0475376's
# model_eval/README.md lines 25-30 for the last two).
SCORING_MODULES = {
    "langdetect": ("ifeval", "IFEval's language instructions (datasets/IFEval/instructions.py:25-28, 165)",
                   "{python} -m pip install langdetect==1.0.9"),
    "human_eval": ("humaneval", "HumanEval's evaluator (datasets/humaneval.py:72-78)",
                   "git clone https://github.com/openai/human-eval && {python} -m pip install -e human-eval"),
    "evalplus": ("humaneval_plus", "HumanEval+'s evaluator (datasets/humaneval.py:120-127)",
                 "git clone --recurse-submodules https://github.com/OpenDataArena/OpenDataArena-Tool && "
                 "{python} -m pip install -e OpenDataArena-Tool/model_eval/evalplus"),
}  # fmt: skip


def scoring_problem(install: Install, names: Iterable[str]) -> str | None:
    """What the chosen benchmarks' scoring would fail on after inference, or None: a module an evaluator imports
    (SCORING_MODULES), and nltk's punkt_tab for IFEval's sentence counts (datasets/IFEval/instructions_util.py:
    131-139 loads punkt's pickle, which nltk 3.9+ serves from punkt_tab)."""
    names = set(names)
    for module, (bench, who, install_it) in SCORING_MODULES.items():
        if bench in names and module not in install.engines:
            command = install_it.format(python=shlex.quote(str(install.python)))  # a path may hold a space
            return f"{who} import {module}, which the OpenCompass environment of {install.program} lacks: `{command}`"
    if "ifeval" in names and not install.punkt_tab:
        target = shlex.quote(install.nltk_data[0]) if install.nltk_data else "~/nltk_data"
        where = ", ".join(install.nltk_data[:3]) + (" ..." if len(install.nltk_data) > 3 else "")
        return (f"IFEval counts sentences with nltk's punkt_tab model, which is in none of the folders nltk looks in "
                f"({where}): fetch it on a machine with network into one it reads (or NLTK_DATA) with "
                f"`{shlex.quote(str(install.python))} -m nltk.downloader -d {target} punkt_tab`")  # fmt: skip
    return None


def find_config(package: Path, name: str, extra: Iterable[Path] = ()) -> list[Path]:
    """Where `opencompass --datasets NAME` would load NAME from (OpenCompass's match_cfg_file: NAME.py,
    case-insensitively, anywhere under configs/datasets and configs/dataset_collections)."""
    wanted = f"{name}.py".lower()
    found = []
    for root in (*extra, package / "configs" / "datasets", package / "configs" / "dataset_collections"):
        for folder, _dirs, files in os.walk(root):
            found += [Path(folder) / f for f in files if f.lower() == wanted]
    return found


def check_configs(install: Install, names: list[str]) -> None:
    """Every named dataset config exists in this OpenCompass, exactly once, or one line saying what to install."""
    missing = [n for n in names if not find_config(install.package, n)]
    if missing:
        only_fork = [n for n in missing if "_xver_" in n or "_cver_" in n]
        if only_fork and len(only_fork) == len(missing):
            raise UsageError(
                f"OpenCompass {install.version} at {install.package} has no {', '.join(missing)}: the xver/cver "
                f"configs exist only in ODA's fork ({FORK_REPO}): `oda-sft setup-eval --fork CLONE --python python3.10 "
                "--venv DIR` installs it from a clone at the commit ODA pins; or choose other --benchmarks"
            )
        raise UsageError(
            f"OpenCompass {install.version} at {install.package} has no dataset config {', '.join(missing)}: "
            f"install ODA's fork ({FORK_REPO}) or an OpenCompass that ships them, or choose other --benchmarks"
        )
    twice = [n for n in names if len(find_config(install.package, n)) > 1]
    if twice:
        raise UsageError(f"OpenCompass at {install.package} holds more than one config named {', '.join(twice)}: "
                         "it would refuse to choose; remove the extra copy")  # fmt: skip


def hf_cache_dir() -> Path:
    if os.environ.get("HF_HUB_CACHE"):
        return Path(os.environ["HF_HUB_CACHE"])
    home = Path(os.environ.get("HF_HOME") or Path.home() / ".cache" / "huggingface")
    return home / "hub"


def cached_snapshot(repo_id: str) -> Path | None:
    """A local copy of an HF model: a directory given as is, else a snapshot in the HF cache with a config."""
    as_path = Path(repo_id)
    if as_path.is_dir() and (as_path / "config.json").is_file():
        return as_path
    snapshots = hf_cache_dir() / f"models--{repo_id.replace('/', '--')}" / "snapshots"
    if not snapshots.is_dir():
        return None
    ref = hf_cache_dir() / f"models--{repo_id.replace('/', '--')}" / "refs" / "main"
    if ref.is_file():
        pinned = snapshots / ref.read_text(encoding="utf-8").strip()
        if (pinned / "config.json").is_file():
            return pinned
    complete = sorted(s for s in snapshots.iterdir() if (s / "config.json").is_file())
    return complete[-1] if complete else None
