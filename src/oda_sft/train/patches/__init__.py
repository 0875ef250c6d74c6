"""Small, named corrections applied inside the trainer process that oda-sft launches.

Each patch is one module here with:
  WRITTEN_FOR  the exact package versions it was written and tested against;
  TARGET       the module it corrects, patched right after that module is first imported;
  install(m)   the correction itself, given the imported target module.

How it reaches the trainer: the launcher puts `site/` first on PYTHONPATH and names the patches in
ODA_SFT_PATCHES. Every Python process of the trainer's tree (llamafactory-cli, torchrun, each rank)
then runs `site/sitecustomize.py` at start-up, which calls `apply_from_env()`: nothing heavy is
imported there, a hook waits for the target module. A patch refuses to run (one line, exit 4) on
versions other than the ones it was written for; oda-sft checks the same before it launches.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import os
import sys
from collections.abc import Callable, Mapping, Sequence
from importlib import metadata
from pathlib import Path
from types import ModuleType
from typing import Any

ENV_VAR = "ODA_SFT_PATCHES"
# name -> module under oda_sft.train.patches
PATCHES = {
    "resume_epoch": "resume_epoch",
    "partial_checkpointing": "partial_checkpointing",
    "template_2025": "template_2025",  # the 2025 recipe era (oda_sft/eras.py)
    "packing_2025": "packing_2025",
    "cutoff_2025": "cutoff_2025",
    "checkpoint_stamp": "checkpoint_stamp",
}
REFUSED_EXIT = 4  # a launch problem, as oda-sft's own LaunchError


def site_dir() -> Path:
    """The directory holding the trainer's sitecustomize.py; put first on its PYTHONPATH."""
    return Path(__file__).resolve().parent / "site"


def _module(name: str) -> ModuleType:
    if name not in PATCHES:
        raise KeyError(f"unknown oda-sft patch {name!r}: known patches are {', '.join(sorted(PATCHES))}")
    return importlib.import_module(f"{__name__}.{PATCHES[name]}")


def _installed(package: str) -> str | None:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None


def version_mismatch(name: str) -> str | None:
    """None when the installed packages are those the patch was written for; else what differs."""
    written_for: Mapping[str, str] = _module(name).WRITTEN_FOR
    found = {pkg: _installed(pkg) for pkg in written_for}
    if all(found[pkg] == want for pkg, want in written_for.items()):
        return None
    wanted = ", ".join(f"{pkg} {v}" for pkg, v in written_for.items())
    have = ", ".join(f"{pkg} {found[pkg] or 'missing'}" for pkg in written_for)
    return f"oda-sft patch {name} was written for {wanted}, and this environment has {have}"


def fix_hint(name: str) -> str:
    hint: str = _module(name).FIX_HINT
    return hint


def trainer_env(patches: Mapping[str, Mapping[str, str]], current_pythonpath: str | None) -> dict[str, str]:
    """launch_env for patches that take settings (patch name -> its environment variables)."""
    settings = {var: value for values in patches.values() for var, value in values.items()}
    return {**settings, **launch_env(list(patches), current_pythonpath)}


def launch_env(names: Sequence[str], current_pythonpath: str | None) -> dict[str, str]:
    """The environment changes that enable `names` in the trainer's process tree."""
    if not names:
        return {}
    for name in names:
        _module(name)  # unknown names fail here, in oda-sft, not inside the trainer
    path = os.pathsep.join(p for p in (str(site_dir()), current_pythonpath or "") if p)
    return {ENV_VAR: ",".join(names), "PYTHONPATH": path}


class _AfterImport(importlib.abc.MetaPathFinder):
    """Runs callbacks right after a module has been imported for the first time (a post-import hook),
    so the trainer's start-up imports nothing it would not import anyway."""

    def __init__(self) -> None:
        self.hooks: dict[str, list[Callable[[ModuleType], None]]] = {}

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        if fullname not in self.hooks:
            return None
        spec = None
        for finder in sys.meta_path:
            if finder is self or not hasattr(finder, "find_spec"):
                continue
            spec = finder.find_spec(fullname, path, target)
            if spec is not None:
                break
        loader: Any = spec.loader if spec is not None else None
        if loader is None or not hasattr(loader, "exec_module"):
            return spec
        hooks = self.hooks.pop(fullname)
        run_module = loader.exec_module

        def exec_module(module: ModuleType) -> None:
            run_module(module)
            for hook in hooks:
                hook(module)

        loader.exec_module = exec_module  # this loader instance belongs to this one spec
        return spec

    def add(self, fullname: str, hook: Callable[[ModuleType], None]) -> None:
        loaded = sys.modules.get(fullname)
        if loaded is not None:
            hook(loaded)
            return
        self.hooks.setdefault(fullname, []).append(hook)
        if self not in sys.meta_path:
            sys.meta_path.insert(0, self)


_HOOK = _AfterImport()


def _guarded(name: str, patch: ModuleType) -> Callable[[ModuleType], None]:
    def install(target: ModuleType) -> None:
        mismatch = version_mismatch(name)
        if mismatch is not None:
            # Inside the trainer: one line, then stop, rather than train on a correction that may not hold.
            print(f"error: {mismatch}: the trainer is stopped; {fix_hint(name)}", file=sys.stderr, flush=True)
            raise SystemExit(REFUSED_EXIT)
        patch.install(target)

    return install


def apply(names: Sequence[str]) -> None:
    """Enable each named patch: it is installed when (or if) its target module is imported."""
    for name in names:
        patch = _module(name)
        _HOOK.add(patch.TARGET, _guarded(name, patch))


def apply_from_env(environ: Mapping[str, str] = os.environ) -> list[str]:
    names = [n.strip() for n in environ.get(ENV_VAR, "").split(",") if n.strip()]
    apply(names)
    return names
