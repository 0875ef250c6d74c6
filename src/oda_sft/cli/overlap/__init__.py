"""`oda-sft data contamination`: a dataset against the benchmarks it will be ranked on."""
