"""The embedded `tiny` preset's model: a random-weight Llama-shaped model with a byte-level BPE
tokenizer, built offline on first use and cached, so the whole recipe runs on a laptop CPU.

transformers, tokenizers and torch are imported inside the builder only: start-up stays fast.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import os
import re
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

from oda_sft.util.paths import cache_dir

BUILDER_VERSION = 1
SPECIAL_TOKENS = {"bos_token": "<|begin_of_text|>", "eos_token": "<|end_of_text|>", "pad_token": "<|pad|>"}
VOCAB_SIZE = 1024
MODEL_SHAPE: dict[str, Any] = {
    "hidden_size": 64,
    "intermediate_size": 176,
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
    "num_key_value_heads": 2,
    "max_position_embeddings": 32768,
    "rope_theta": 500000.0,
    "rms_norm_eps": 1e-5,
    "tie_word_embeddings": False,
}

# Text the tokenizer learns merges from. Byte-level BPE encodes any text, so this only
# shapes how compact English, digits and the `default` template's markers become.
_CORPUS = [
    "Human: ",
    "\nAssistant:",
    "System: ",
    "The quick brown fox jumps over the lazy dog.",
    "To solve the problem, first add the two numbers, then multiply the sum by three.",
    "The answer is 42. Let me check the calculation step by step.",
    "Question: what is the capital of France? Answer: Paris.",
    "Reverse the word 'language' to get 'egaugnal'.",
    "def add(a, b):\n    return a + b\n",
    "You are a helpful assistant. Answer briefly and show your reasoning.",
    "0 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20 100 1000",
    "First, second, third. Therefore, the result follows. In conclusion, yes.",
    "数学 问题 答案 你好 世界",
]


def model_spec() -> dict[str, Any]:
    return {"builder": BUILDER_VERSION, "vocab_size": VOCAB_SIZE, "shape": MODEL_SHAPE, "special": SPECIAL_TOKENS}


def model_dir() -> Path:
    """Where the tiny model lives; the name changes whenever its definition does."""
    digest = hashlib.sha256(json.dumps(model_spec(), sort_keys=True).encode()).hexdigest()[:12]
    return cache_dir() / "models" / f"tiny-llama-{digest}"


def is_built(path: Path | None = None) -> bool:
    path = path or model_dir()
    return (
        (path / "config.json").is_file()
        and (path / "tokenizer.json").is_file()
        and (path / "model.safetensors").is_file()
    )


def ensure_model() -> Path:
    """Build the tiny model once; later calls reuse it. Safe when two processes race."""
    target = model_dir()
    if is_built(target):
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".tiny-build-", dir=target.parent))
    try:
        try:
            # What torch, transformers and DeepSpeed print on import goes to stderr: stdout is the
            # command's answer (`estimate --json`, a table).
            with contextlib.redirect_stdout(sys.stderr):
                _build(staging)
        except OSError as exc:
            raise OSError(exc.errno, exc.strerror, str(target)) from None  # named: the disk that is full
        except Exception as exc:  # safetensors and tokenizers report a failed write as their own error
            code = os_error_code(exc)
            if code is None:
                raise
            raise OSError(code, os.strerror(code), str(target)) from None
        staging.chmod(0o755)
        try:
            os.rename(staging, target)
        except OSError:
            if not is_built(target):  # someone else's half-built directory is not ours to trust
                raise
    finally:
        if staging.exists():
            shutil.rmtree(staging)
    return target


def os_error_code(exc: BaseException) -> int | None:
    """The errno inside a library's error that wraps an I/O failure ("... (os error 28)"), if any."""
    text = str(exc)
    found = re.search(r"os error (\d+)", text)
    if found:
        return int(found.group(1))
    for code in (errno.ENOSPC, errno.EFBIG, errno.EDQUOT, errno.EROFS, errno.EACCES):
        if os.strerror(code) in text:
            return code
    return None


def train_byte_bpe(corpus: list[str], vocab_size: int, special: dict[str, str], max_length: int) -> Any:
    """A byte-level BPE tokenizer trained offline (any text encodes; no hub download)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    tokenizer.post_processor = processors.ByteLevel(trim_offsets=False)
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=list(special.values()),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tokenizer.train_from_iterator(corpus, trainer=trainer)
    return PreTrainedTokenizerFast(  # type: ignore[no-untyped-call]
        tokenizer_object=tokenizer, model_max_length=max_length, **special
    )


def _build(out: Path) -> None:  # untyped libraries: checked by the smoke test, not mypy
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    fast = train_byte_bpe(_CORPUS * 4, VOCAB_SIZE, SPECIAL_TOKENS, 32768)
    fast.save_pretrained(out)

    config = LlamaConfig(  # type: ignore[no-untyped-call]
        vocab_size=len(fast),
        bos_token_id=fast.bos_token_id,
        eos_token_id=fast.eos_token_id,
        pad_token_id=fast.pad_token_id,
        **MODEL_SHAPE,
    )
    torch.manual_seed(0)
    model = LlamaForCausalLM(config)  # type: ignore[no-untyped-call]
    model.save_pretrained(out, safe_serialization=True)
