"""Per-question evidence for `oda-sft rank`: each eval's per-question results and answer lengths (kept from
OpenCompass's own result details), the paired test that separates two datasets, and truncation at the cap."""
