"""Datasets: sources, conversion, validation, the dataset_info.json registry, lengths, the tokenized cache."""
