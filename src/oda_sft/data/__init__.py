"""Datasets: sources/ (fetch and convert), formats/, registry/ (dataset_info.json and its transactions),
measure/ (token lengths), and the tokenized cache."""
