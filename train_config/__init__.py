"""The recipe's YAML templates and DeepSpeed configs, shipped as package data (oda_sft.train_config)."""
