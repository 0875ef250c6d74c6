"""Datasets, lowest first (each part imports only those before it; tests/unit/test_structure.py): files.py (what a
path is), formats/, sources/ (where records come from), measure/ (token lengths), registry/ (dataset_info.json,
its transactions, and what adds to it: add, catalog fetches, analyses), and the tokenized cache."""
