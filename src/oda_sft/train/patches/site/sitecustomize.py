"""Applies the trainer patches named in ODA_SFT_TRAINER_PATCHES (see oda_sft.train.patches).

Python imports `sitecustomize` at start-up from the first directory on sys.path that has one;
this directory goes first on the trainer's PYTHONPATH. A sitecustomize that was there before
(the interpreter's own) is still run, so nothing else changes.
"""

import importlib
import os
import sys

_here = os.path.dirname(os.path.abspath(__file__))


def _chain_previous() -> None:
    # Run the sitecustomize this one shadows, if any (e.g. a distribution's).
    import importlib.util

    for entry in sys.path:
        if not entry or os.path.abspath(entry) == _here:
            continue
        candidate = os.path.join(entry, "sitecustomize.py")
        if os.path.isfile(candidate):
            spec = importlib.util.spec_from_file_location("_oda_sft_previous_sitecustomize", candidate)
            if spec is not None and spec.loader is not None:
                spec.loader.exec_module(importlib.util.module_from_spec(spec))
            return


_chain_previous()
for _name in filter(None, (n.strip() for n in os.environ.get("ODA_SFT_TRAINER_PATCHES", "").split(","))):
    importlib.import_module(f"oda_sft.train.patches.{_name}").apply()
