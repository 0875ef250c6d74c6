"""The benchmark's offline fixture: a random-weight model of the chosen shape and synthetic Alpaca
data with realistic length mixes. torch, transformers and tokenizers are imported inside the builders."""

from __future__ import annotations

import json
import math
import random
import time
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any

from oda_sft import tiny_model
from oda_sft.shapes import ModelShape
from oda_sft.throughput.spec import FIXTURE_VERSION, LENGTH_MIX, SPLIT_MULTIPLE, BenchSpec
from oda_sft.util.fs import atomic_write_json, atomic_write_text


def fixture_key(spec: BenchSpec) -> str:
    shape = spec.model_shape()
    return f"{shape.name}-s{spec.scale}-n{spec.steps}-seed{spec.seed}-v{FIXTURE_VERSION}"


def sample_counts(spec: BenchSpec, world: int) -> dict[str, int]:
    """Enough samples that the measured steps never wrap into a second epoch."""
    counts: dict[str, int] = {}
    for d in spec.datasets:
        raw = spec.upstream(d)
        rows = spec.steps * raw["per_device_train_batch_size"] * raw["gradient_accumulation_steps"] * world
        lo, hi = LENGTH_MIX[d]
        mean = (hi - lo) / math.log(hi / lo)  # mean of a log-uniform distribution
        per_row = raw["cutoff_len"] / mean if raw.get("packing") else 1.0
        n = math.ceil(rows * max(per_row, 1.0) * 1.25) + 8
        counts[d] = -(-n // SPLIT_MULTIPLE) * SPLIT_MULTIPLE
    return counts


def build_fixture(spec: BenchSpec, world: int, log: Callable[[str], None]) -> Path:
    """Model and data under out_dir/fixture/<key>; reused when already complete."""
    root = spec.out_dir / "fixture" / fixture_key(spec)
    done = root / "fixture.json"
    if done.is_file():
        log(f"fixture: reusing {root}")
        return root
    t0 = time.time()
    tok = _train_tokenizer(1024 if spec.shape == "tiny" else 8192, spec.seed)
    tok.save_pretrained(root / "model")
    shape = spec.model_shape()
    n_params = _build_model(root / "model", shape, tok, spec.seed)
    log(f"fixture: {shape.name} model, {n_params / 1e6:.1f}M parameters ({time.time() - t0:.0f}s)")
    rng = random.Random(spec.seed)
    stats: dict[str, Any] = {}
    info: dict[str, Any] = {}
    for d, n in sample_counts(spec, world).items():
        lo, hi = (max(8, x // spec.scale) for x in LENGTH_MIX[d])
        samples, lengths = _make_samples(tok, rng, n, lo, hi)
        atomic_write_text(root / "data" / f"{d}.json", json.dumps(samples, ensure_ascii=False))
        info[d] = {
            "file_name": f"{d}.json",
            "oda_sft": {"mode": "long" if d == "long" else "standard", "reason": "oda-sft bench fixture"},
        }
        lengths.sort()
        stats[d] = {
            "samples": n,
            "tokens": sum(lengths),
            "min": lengths[0],
            "p50": lengths[n // 2],
            "max": lengths[-1],
            "mix": [lo, hi],
        }
        log(f"fixture: {d} {stats[d]}")
    atomic_write_json(root / "data" / "dataset_info.json", info)
    atomic_write_json(done, {"shape": asdict(shape), "params": n_params, "data": stats, "key": fixture_key(spec)})
    return root


_WORD_TEXT = (
    "the of and to in is that for it as with was on be by this are or from at which an have not but we "
    "can all their has more one will two if there so when first then value sum answer result step "
    "therefore because number equation solve check let each prove case term list code function return "
    "loop array string integer prime factor total compute given find show since thus hence assume"
)
_WORDS = tuple(_WORD_TEXT.split())


def _text(rng: random.Random, n_words: int) -> str:
    words = [rng.choice(_WORDS) if rng.random() < 0.8 else str(rng.randint(0, 9999)) for _ in range(max(1, n_words))]
    out, line = [], 0
    for w in words:
        out.append(w)
        line += 1
        if line >= rng.randint(8, 24):
            out[-1] += "." if rng.random() < 0.8 else ".\n\n"
            line = 0
    return " ".join(out)


def _render(sample: dict[str, str]) -> str:
    # LLaMA-Factory's `default` template, which the recipe uses.
    prompt = sample["instruction"] + (f"\n{sample['input']}" if sample.get("input") else "")
    return f"Human: {prompt}\nAssistant:{sample['output']}"


def _make_samples(tok: Any, rng: random.Random, n: int, lo: int, hi: int) -> tuple[list[dict[str, str]], list[int]]:
    """n Alpaca samples whose rendered token lengths follow a log-uniform mix between lo and hi."""
    probe = _text(rng, 4000)
    words_per_token = len(probe.split()) / len(tok(probe, add_special_tokens=False)["input_ids"])
    samples, lengths = [], []
    for _ in range(n):
        target = math.exp(rng.uniform(math.log(lo), math.log(hi)))
        instruction = _text(rng, rng.randint(4, 30))
        budget = max(4, int(target * words_per_token) - len(instruction.split()))
        inp = _text(rng, int(budget * rng.uniform(0.1, 0.5))) if rng.random() < 0.4 else ""
        sample = {"instruction": instruction, "input": inp, "output": _text(rng, budget - len(inp.split()))}
        samples.append(sample)
        lengths.append(len(tok(_render(sample), add_special_tokens=False)["input_ids"]) + 2)  # two eos
    return samples, lengths


def _train_tokenizer(vocab: int, seed: int) -> Any:
    rng = random.Random(seed)
    corpus = [_text(rng, 200) for _ in range(400)] + ["Human: ", "\nAssistant:"]
    special = {"bos_token": "<s>", "eos_token": "</s>", "pad_token": "<pad>"}
    return tiny_model.train_byte_bpe(corpus, vocab, special, 65536)


def _build_model(out: Path, shape: ModelShape, tok: Any, seed: int) -> int:
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM, Qwen2Config, Qwen2ForCausalLM

    vocab = shape.vocab_size if shape.vocab_size >= len(tok) else math.ceil(len(tok) / 64) * 64
    common: dict[str, Any] = {
        "vocab_size": vocab,
        "hidden_size": shape.hidden_size,
        "intermediate_size": shape.intermediate_size,
        "num_hidden_layers": shape.num_layers,
        "num_attention_heads": shape.num_heads,
        "num_key_value_heads": shape.num_kv_heads,
        "max_position_embeddings": 65536,
        "tie_word_embeddings": shape.tie_word_embeddings,
        "bos_token_id": tok.bos_token_id,
        "eos_token_id": tok.eos_token_id,
        "pad_token_id": tok.pad_token_id,
    }
    config: Any
    if shape.attention_bias:  # the Qwen2 family
        config = Qwen2Config(**common, rope_theta=1_000_000.0, use_sliding_window=False)  # type: ignore[no-untyped-call]
        cls: Any = Qwen2ForCausalLM
    else:
        config = LlamaConfig(**common, rope_theta=500_000.0, head_dim=shape.dim_head)  # type: ignore[no-untyped-call]
        cls = LlamaForCausalLM
    torch.manual_seed(seed)
    dtype = torch.float32 if shape.name.startswith("tiny") else torch.bfloat16
    # On the CPU, always: a CUDA context and cached blocks in this process would stay for the whole
    # benchmark, taking GPU memory from the runs and from the fast profile's free-memory check.
    device = "cpu"
    previous = torch.get_default_dtype()
    torch.set_default_dtype(dtype)
    try:
        with torch.device(device):
            model = cls(config)
    finally:
        torch.set_default_dtype(previous)
    model.save_pretrained(out, safe_serialization=True)
    return int(sum(p.numel() for p in model.parameters()))
