"""Where oda-sft finds its templates and data, and where it caches what it builds."""

from __future__ import annotations

import os
from pathlib import Path

_PACKAGE = Path(__file__).resolve().parents[1]  # src/oda_sft


def checkout_root() -> Path | None:
    """The source checkout this package runs from (an editable install), if any."""
    root = _PACKAGE.parents[1]
    if (root / "pyproject.toml").is_file() and (root / "train_config").is_dir():
        return root
    return None


def train_config_dir() -> Path:
    # A wheel carries train_config/ inside the package; an editable install reads the checkout's.
    shipped = _PACKAGE / "train_config"
    if shipped.is_dir():
        return shipped
    root = checkout_root()
    if root is None:
        raise RuntimeError("oda-sft is installed without its train_config/ directory; reinstall it")
    return root / "train_config"


def default_dataset_dir() -> Path:
    """$ODA_SFT_DATASET_DIR, else the checkout's data/, else ./data."""
    env = os.environ.get("ODA_SFT_DATASET_DIR")
    if env:
        return Path(env)
    root = checkout_root()
    if root is not None and (root / "data").is_dir():
        return root / "data"
    return Path("data")


def cache_dir() -> Path:
    """$ODA_SFT_HOME, else $XDG_CACHE_HOME/oda-sft, else ~/.cache/oda-sft."""
    env = os.environ.get("ODA_SFT_HOME")
    if env:
        return Path(env)
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg) if xdg else Path.home() / ".cache") / "oda-sft"
