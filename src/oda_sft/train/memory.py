"""A first-principles model of peak training memory per GPU, to decide whether activations fit
without gradient checkpointing. Pure arithmetic: no torch, no I/O.

What it counts (bytes), per GPU, for full fine-tuning with AdamW:
- model states, by DeepSpeed ZeRO stage (P parameters, N data-parallel ranks):
    stage 0 (no DeepSpeed): fp32 weights, fp32 grads, Adam m and v = 16P (+2P bf16 autocast copies)
    stage 1: bf16 weights 2P + bf16 grads 2P + (fp32 master, fp32 grad, m, v) 16P/N
    stage 2: bf16 weights 2P + bf16 grads 2P/N + 16P/N, + one reduce bucket when N > 1
    stage 3: (2P + 2P + 16P)/N + the gathered working set (embedding + two layers, bf16)
- activations saved for backward, per token per decoder layer (bf16 = 2 bytes per element):
    with liger kernels 4h + 3q + 2kv + 3i elements (h hidden, q and kv projection widths, i MLP width);
    without them 12h + 3q + 2kv + 4i (`_layer_act_elems` says which tensors)
  with gradient checkpointing only each layer's input (h) is kept, plus one layer recomputed in backward;
  with partial checkpointing (`kept_layers` > 0) that many layers keep all their activations.
- the loss: liger's fused linear cross-entropy never holds the logits (chunked), plain transformers
  holds bf16 logits, their fp32 copy and fp32 log-softmax, and an fp32 gradient in backward: 14V per token.

The peaks measured on one H200 (0.5B shape: the gpu-kit's four and the six of issue 13's table)
are reproduced within 15% (tests/unit/test_memory_model.py). Everything else, multi-GPU and the
8B-shaped proxies included, still has to be checked against measured peaks on a GPU
(benchmarks/gpu_check_8b.sh prints the model next to every measured peak).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from oda_sft.shapes import ModelShape

GIB = 1024**3

# What torch's allocator statistics (max_memory_allocated) do not show but the GPU must still hold:
# the CUDA context, cuBLAS/NCCL workspaces, and fragmentation between allocated and reserved.
CONTEXT_BYTES = 1 * GIB
FRAGMENTATION = 1.10
# DeepSpeed's reduce_bucket_size in the recipe's ds_z2_config.json (elements), held in bf16.
ZERO2_BUCKET_ELEMS = 500_000_000


@dataclass(frozen=True)
class TrainShape:
    """How one rank trains: what the memory depends on besides the model."""

    tokens_per_row: int  # the longest row a micro-batch can hold (cutoff_len, +1 when packed)
    micro_batch: int
    zero_stage: int  # 0 = no DeepSpeed
    world_size: int
    gradient_checkpointing: bool
    liger: bool  # liger kernels incl. the fused linear cross-entropy
    bf16: bool
    kept_layers: int = 0  # with checkpointing on: layers that keep their activations (partial checkpointing)
    overlap_comm: bool = False  # ZeRO-2 overlap_comm: a second reduce bucket (double buffering)


@dataclass(frozen=True)
class MemoryEstimate:
    parts: dict[str, int]  # bytes per component, for the notes and the benchmark

    @property
    def peak_allocated(self) -> int:
        """What torch.cuda.max_memory_allocated should report."""
        return sum(self.parts.values())

    @property
    def required(self) -> int:
        """What the GPU must have free: the allocator peak plus what the allocator does not see."""
        return math.ceil(self.peak_allocated * FRAGMENTATION) + CONTEXT_BYTES

    def fits(self, free_bytes: int) -> bool:
        return self.required <= free_bytes

    def describe(self) -> str:
        total = self.peak_allocated
        shown = ", ".join(f"{k} {_size(v)}" for k, v in self.parts.items() if v >= total / 50)
        return f"{_size(total)} peak allocated ({shown})"


def _size(n: int) -> str:
    return f"{n / GIB:.1f} GiB" if n >= GIB else f"{n / 1024**2:.0f} MiB"


def _layer_act_elems(shape: ModelShape, liger: bool) -> int:
    """Elements one decoder layer saves for backward, per token, with sdpa or flash attention
    (neither stores the seq x seq score matrix).

    With liger: norm input and output (2h) twice, rotated q and k plus v (q + 2kv) for attention,
    its output (q) and the contiguous copy o_proj saves (q), and gate, up and their product (3i).
    Liger's RoPE backward needs only cos/sin, so un-rotated q and k are not kept.
    Without liger, transformers' RMSNorm keeps fp32 copies (+4h per norm) and SiLU keeps its output (+i).
    """
    h, q, kv, i = shape.hidden_size, shape.q_dim, shape.kv_dim, shape.intermediate_size
    elems = 4 * h + 3 * q + 2 * kv + 3 * i
    if not liger:
        elems += 2 * 4 * h + i
    return elems


def estimate(shape: ModelShape, train: TrainShape) -> MemoryEstimate:
    p, n = shape.params, max(1, train.world_size)
    act_bytes = 2 if train.bf16 else 4
    parts: dict[str, int] = {}
    if train.zero_stage <= 0:
        parts["weights+grads+adam"] = 16 * p
        if train.bf16:
            parts["autocast weight copies"] = 2 * p
    elif train.zero_stage == 1:
        parts["weights+grads"] = 4 * p
        parts["optimizer"] = math.ceil(16 * p / n)
    elif train.zero_stage == 2:
        parts["weights+grads"] = 2 * p + math.ceil(2 * p / n)
        parts["optimizer"] = math.ceil(16 * p / n)
        # The reduce bucket; overlap_comm double-buffers it (a second bucket, on one rank too).
        buckets = (1 if n > 1 else 0) + (1 if train.overlap_comm else 0)
        if buckets:
            parts["reduce bucket"] = 2 * min(ZERO2_BUCKET_ELEMS, p) * buckets
    else:
        parts["weights+grads+optimizer"] = math.ceil(20 * p / n)
        parts["gathered params"] = 2 * (shape.embedding_params + 2 * shape.layer_params)

    tokens = train.tokens_per_row * train.micro_batch
    per_layer = _layer_act_elems(shape, train.liger) * act_bytes * tokens
    kept = min(max(train.kept_layers, 0), shape.num_layers) if train.gradient_checkpointing else shape.num_layers
    if kept < shape.num_layers:
        parts["activations"] = (shape.num_layers - kept) * shape.hidden_size * act_bytes * tokens + kept * per_layer
        parts["recomputed layer"] = per_layer
    else:
        parts["activations"] = shape.num_layers * per_layer
    if train.liger:
        # Chunked logits and the input gradient (about 2 x tokens x h), and the LM-head gradient.
        parts["loss"] = 2 * tokens * shape.hidden_size * act_bytes + 2 * shape.embedding_params
    else:
        parts["loss"] = 14 * tokens * shape.vocab_size
    return MemoryEstimate(parts)


def train_shape_from_config(
    config: dict[str, Any],
    zero_stage: int,
    world_size: int,
    gradient_checkpointing: bool | None = None,
    *,
    kept_layers: int = 0,
    overlap_comm: bool = False,
) -> TrainShape:
    """The TrainShape of a rendered LLaMA-Factory config.

    Without packing a micro-batch is padded to its longest sample, so the worst case (cutoff_len)
    is what must fit: one long batch late in epoch 3 is enough to fail a run.
    """
    cutoff = int(config.get("cutoff_len", 2048))
    packed = bool(config.get("packing"))
    if gradient_checkpointing is None:
        gradient_checkpointing = not bool(config.get("disable_gradient_checkpointing", False))
    return TrainShape(
        tokens_per_row=cutoff + 1 if packed else cutoff,
        micro_batch=int(config.get("per_device_train_batch_size", 1)),
        zero_stage=zero_stage,
        world_size=world_size,
        gradient_checkpointing=gradient_checkpointing,
        liger=bool(config.get("use_liger_kernel") or config.get("enable_liger_kernel")),
        bf16=bool(config.get("bf16")),
        kept_layers=kept_layers,
        overlap_comm=overlap_comm,
    )
