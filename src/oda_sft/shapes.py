"""The geometry of a decoder-only model: what the memory model and the benchmark need to know."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any


@dataclass(frozen=True)
class ModelShape:
    name: str
    hidden_size: int
    intermediate_size: int
    num_layers: int
    num_heads: int
    num_kv_heads: int
    vocab_size: int
    tie_word_embeddings: bool
    head_dim: int = 0  # 0: hidden_size // num_heads
    attention_bias: bool = False  # Qwen2 has q/k/v biases

    @property
    def dim_head(self) -> int:
        return self.head_dim or self.hidden_size // self.num_heads

    @property
    def q_dim(self) -> int:
        return self.num_heads * self.dim_head

    @property
    def kv_dim(self) -> int:
        return self.num_kv_heads * self.dim_head

    @property
    def layer_params(self) -> int:
        h, q, kv = self.hidden_size, self.q_dim, self.kv_dim
        attn = h * q + 2 * h * kv + q * h + ((q + 2 * kv) if self.attention_bias else 0)
        return attn + 3 * h * self.intermediate_size + 2 * h

    @property
    def embedding_params(self) -> int:
        return self.vocab_size * self.hidden_size

    @property
    def params(self) -> int:
        head = 0 if self.tie_word_embeddings else self.embedding_params
        return self.embedding_params + head + self.num_layers * self.layer_params + self.hidden_size

    @property
    def matmul_params(self) -> int:
        """Parameters that take part in a matmul per token: everything but the embedding lookup,
        with the LM head counted even when it shares the embedding's weights."""
        return self.num_layers * self.layer_params + self.hidden_size + self.embedding_params

    def with_layers(self, layers: int) -> ModelShape:
        return replace(self, name=f"{self.name}-{layers}L", num_layers=layers)


def shape_from_hf_config(name: str, cfg: dict[str, Any]) -> ModelShape:
    """A shape from a checkpoint's config.json; KeyError when a required field is missing."""
    heads = int(cfg["num_attention_heads"])
    return ModelShape(
        name=name,
        hidden_size=int(cfg["hidden_size"]),
        intermediate_size=int(cfg["intermediate_size"]),
        num_layers=int(cfg["num_hidden_layers"]),
        num_heads=heads,
        num_kv_heads=int(cfg.get("num_key_value_heads") or heads),
        vocab_size=int(cfg["vocab_size"]),
        tie_word_embeddings=bool(cfg.get("tie_word_embeddings", False)),
        head_dim=int(cfg.get("head_dim") or 0),
        attention_bias=bool(cfg.get("attention_bias", cfg.get("model_type") == "qwen2")),
    )
