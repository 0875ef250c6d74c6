"""The dataset dir: dataset_info.json, its entries, data files and their identity, and changes as transactions."""
