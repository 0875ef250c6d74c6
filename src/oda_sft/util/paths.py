"""Where oda-sft finds its templates and data, and where it keeps what it builds or fetches."""

from __future__ import annotations

import os
import re
import shlex
import sys
from pathlib import Path

_PACKAGE = Path(__file__).resolve().parents[1]  # src/oda_sft


def install_command(distribution: str) -> str:
    """The command that installs `distribution` into this interpreter's environment, pinned as oda-sft's
    own metadata pins it: `.../python -m pip install 'llamafactory[deepspeed]==0.9.4'`. It works from any
    directory, where `pip install -e .` needs a checkout."""
    from importlib import metadata

    try:
        wanted = metadata.requires("oda-sft") or []
    except metadata.PackageNotFoundError:
        wanted = []
    name = re.compile(rf"{re.escape(distribution)}(?![\w.-])", re.IGNORECASE)
    pinned = [r.split(";")[0].strip() for r in wanted if name.match(r)]
    return shlex.join([sys.executable, "-m", "pip", "install", pinned[0] if pinned else distribution])


def checkout_root() -> Path | None:
    """The source checkout this package runs from (an editable install), if any."""
    root = _PACKAGE.parents[1]
    if (root / "pyproject.toml").is_file() and (root / "train_config").is_dir():
        return root
    return None


def _shipped(in_package: str, in_checkout: str, what: str) -> Path:
    # A wheel carries it inside the package; an editable install reads the checkout's.
    shipped = _PACKAGE / in_package
    if shipped.is_dir():
        return shipped
    root = checkout_root()
    if root is None:
        raise RuntimeError(f"oda-sft is installed without {what}; reinstall it")
    return root / in_checkout


def train_config_dir() -> Path:
    return _shipped("train_config", "train_config", "its train_config/ directory")


def demo_dataset_dir() -> Path:
    """The demo dataset (read only): inside a wheel's package, or the checkout's data/ for an editable install."""
    return _shipped("demo", "data", "its demo dataset")


def docs_dir() -> Path | None:
    """The docs (docs/*.md): inside a wheel's package, or the checkout's docs/ for an editable install."""
    shipped = _PACKAGE / "docs"
    if shipped.is_dir():
        return shipped
    root = checkout_root()
    return root / "docs" if root is not None and (root / "docs").is_dir() else None


def doc_ref(name: str) -> str:
    """Where the doc NAME (e.g. "data.md") is, for a message: the installed copy's path."""
    found = docs_dir()
    return str(found / name) if found is not None and (found / name).is_file() else f"docs/{name}"


def user_dataset_dir() -> Path:
    """The per-user dataset dir: $XDG_DATA_HOME/oda-sft/datasets, else ~/.local/share/oda-sft/datasets.

    Created by the first `oda-sft data add`; until then it reads as an empty registry."""
    xdg = os.environ.get("XDG_DATA_HOME", "")
    base = Path(xdg) if xdg and Path(xdg).is_absolute() else Path.home() / ".local" / "share"
    return base / "oda-sft" / "datasets"


def dataset_dir_args(dataset_dir: Path) -> list[str]:
    """`--dataset-dir DIR` for a command oda-sft prints, unless DIR is the default one: the printed
    command then works on the same registry as the one that printed it."""
    if dataset_dir.expanduser().absolute() == default_dataset_dir().expanduser().absolute():
        return []
    return ["--dataset-dir", str(dataset_dir)]


def data_command(verb: str, name: str, dataset_dir: Path | None, *args: str) -> str:
    """`oda-sft data VERB NAME ARGS [--dataset-dir DIR]`, quoted as a user types it. Placeholders the
    user fills in (SOURCE) pass through as they are; dataset_dir None: the default one."""
    where = dataset_dir_args(dataset_dir) if dataset_dir is not None else []
    return shlex.join(["oda-sft", "data", verb, name, *args, *where])


def default_dataset_dir() -> Path:
    """$ODA_SFT_DATASET_DIR, else the per-user dataset dir. Never the package or a checkout's files."""
    env = os.environ.get("ODA_SFT_DATASET_DIR")
    if env:
        return Path(env)
    return user_dataset_dir()


def is_user_dataset_dir(path: Path) -> bool:
    """True for the per-user default, which may not exist yet (a missing one is an empty registry)."""
    return path.expanduser().absolute() == user_dataset_dir().absolute()


def ensure_user_dataset_dir(path: Path) -> None:
    """Create the per-user default dataset dir on first use; any other dir must already exist."""
    if is_user_dataset_dir(path):
        path.expanduser().mkdir(parents=True, exist_ok=True)


def user_opencompass_venv() -> Path:
    """Where `oda-sft setup-eval` builds OpenCompass outside a checkout: next to the user dataset dir."""
    return user_dataset_dir().parent / "opencompass-venv"


def cache_dir() -> Path:
    """$ODA_SFT_HOME, else $XDG_CACHE_HOME/oda-sft, else ~/.cache/oda-sft."""
    env = os.environ.get("ODA_SFT_HOME")
    if env:
        return Path(env)
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg) if xdg else Path.home() / ".cache") / "oda-sft"
