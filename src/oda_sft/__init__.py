"""oda-sft: the OpenDataArena SFT recipe on LLaMA-Factory, with one command."""

__version__ = "0.1.0"
