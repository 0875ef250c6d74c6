"""Test-only start-up for trainers that run DeepSpeed on the CPU.

DeepSpeed's CPU accelerator compiles a shared-memory all-reduce (a C++ extension, minutes on two
cores, written into ~/.cache) the first time a process group starts. It is only a faster
all-reduce; gloo computes the same sums. So the tests switch it off, then apply oda-sft's trainer
patches as oda_sft/train/patches/site/sitecustomize.py does.
"""

from oda_sft.train import patches

# The patches' own after-import hook (patches._HOOK): it imported a module `_hook` that is gone, so this file
# failed at start-up (Python prints the error and goes on) and the extension was compiled after all.
patches._HOOK.add("deepspeed.comm.torch", lambda module: setattr(module, "build_shm_op", lambda: None))
patches.apply_from_env()
