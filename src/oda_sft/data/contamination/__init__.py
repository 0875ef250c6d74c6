"""Overlap between a registered dataset and the benchmarks it is ranked on (docs/data.md, Contamination)."""
