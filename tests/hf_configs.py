"""Model config.json fields the tests need, copied from the published files (not derived from oda-sft's shapes,
which the tests check against them)."""

from __future__ import annotations

# huggingface.co/Qwen/Qwen2.5-0.5B/blob/main/config.json: the geometry fields.
QWEN25_05B = {
    "model_type": "qwen2",
    "hidden_size": 896,
    "intermediate_size": 4864,
    "num_hidden_layers": 24,
    "num_attention_heads": 14,
    "num_key_value_heads": 2,
    "vocab_size": 151936,
    "tie_word_embeddings": True,
}
