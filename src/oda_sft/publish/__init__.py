"""A finished run, shared: its model card and its upload to the Hugging Face Hub (`oda-sft push`)."""
