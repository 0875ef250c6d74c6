"""Small, opt-in changes inside the trainer process oda-sft launches (never in the default profile).

Each patch is its own module with an `apply()` that does nothing unless its environment variable
is set, and patches lazily: it waits for the module it changes to be imported (`_hook.on_import`),
so a process that never trains pays nothing.

How a patch is enabled in a trainer: `site/` goes first on the trainer's PYTHONPATH, and
ODA_SFT_TRAINER_PATCHES names the patches (comma-separated module names of this package); its
sitecustomize calls their `apply()`. The benchmark launches this way (bench/variants.py);
`oda-sft train` does once the launcher passes a plan's trainer patches (see train/profile.py).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

PATCHES_ENV = "ODA_SFT_TRAINER_PATCHES"
SITE_DIR = Path(__file__).resolve().parent / "site"


def trainer_env(patches: Mapping[str, Mapping[str, str]], pythonpath: str | None) -> dict[str, str]:
    """The environment that enables `patches` (module name -> its environment variables) in a
    trainer whose PYTHONPATH would otherwise be `pythonpath`; {} for no patches."""
    if not patches:
        return {}
    env = {var: value for settings in patches.values() for var, value in settings.items()}
    path = str(SITE_DIR) if not pythonpath else f"{SITE_DIR}{os.pathsep}{pythonpath}"
    return {**env, PATCHES_ENV: ",".join(patches), "PYTHONPATH": path}
