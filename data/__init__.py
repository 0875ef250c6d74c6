"""The demo dataset (oda_demo), shipped as package data (oda_sft.demo) so `--dataset oda_demo` works from any install.

oda-sft only reads this directory: nothing is ever written here (no analyses, no registrations)."""
