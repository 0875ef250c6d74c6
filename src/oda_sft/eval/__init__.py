"""`oda-sft eval`: ODA's OpenCompass evaluation of a finished run, rendered from data (docs/eval.md)."""
