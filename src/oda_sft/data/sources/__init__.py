"""Where records come from: the Hugging Face Hub, catalog conversions, local files and the `datasets` library."""
