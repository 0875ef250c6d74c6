"""The dataset dir: dataset_info.json, its entries, data files and their identity, changes as transactions, and
what adds to it: `data add` (add.py), catalog fetches (fetch.py), length analyses (analysis.py)."""
