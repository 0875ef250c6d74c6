"""Runs at start-up in every Python process of a trainer that oda-sft launched (this directory is
first on its PYTHONPATH): enables the patches named in ODA_SFT_PATCHES, then runs the
sitecustomize this file shadows, if there is one. See oda_sft/train/patches/__init__.py."""

import importlib.machinery
import importlib.util
import os
import sys


def _enable() -> None:
    if not os.environ.get("ODA_SFT_PATCHES"):
        return
    try:
        from oda_sft.train import patches
    except ImportError:  # oda-sft runs from a source tree the trainer's sys.path does not name
        sys.path.append(os.path.abspath(os.path.join(os.path.dirname(__file__), *[os.pardir] * 4)))
        from oda_sft.train import patches
    patches.apply_from_env()


def _chain() -> None:
    here = os.path.dirname(os.path.abspath(__file__))
    rest = [p for p in sys.path if os.path.abspath(p or os.curdir) != here]
    spec = importlib.machinery.PathFinder.find_spec("sitecustomize", rest)
    if spec is not None and spec.loader is not None:
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)


_enable()
_chain()
