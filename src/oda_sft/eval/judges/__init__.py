"""Judges that OpenCompass reaches over the network: Omni-MATH's Omni-Judge, behind an OpenAI-style server that
the user names (--judge-url) or that oda-sft serves on the eval's GPU after inference (docs/eval.md)."""
