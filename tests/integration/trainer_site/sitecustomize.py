"""Test-only start-up for trainers that run DeepSpeed on the CPU.

DeepSpeed's CPU accelerator compiles a shared-memory all-reduce (a C++ extension, minutes on two
cores, written into ~/.cache) the first time a process group starts. It is only a faster
all-reduce; gloo computes the same sums. So the tests switch it off, then apply oda-sft's trainer
patches as oda_sft/train/patches/site/sitecustomize.py does.
"""

import importlib
import os

from oda_sft.train.patches._hook import on_import

on_import("deepspeed.comm.torch", lambda module: setattr(module, "build_shm_op", lambda: None))
for _name in filter(None, (n.strip() for n in os.environ.get("ODA_SFT_TRAINER_PATCHES", "").split(","))):
    importlib.import_module(f"oda_sft.train.patches.{_name}").apply()
