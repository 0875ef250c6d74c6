"""The chat template a model is evaluated with, and the eval's own view of the checkpoint that carries it.

ODA evaluates with LLaMA-Factory's `default` template, the one the recipe trains with; its scripts of 2025
rewrote `chat_template` in the checkpoint's tokenizer_config.json in place, ending every assistant turn with
Qwen's `<|endoftext|>` (ODA_2025 below: the 2025 recipe era evaluates with it). oda-sft never edits the
checkpoint: the eval dir gets a view of it (a symlink per file)
whose tokenizer files carry the template: the one LLaMA-Factory saved beside the trained weights, or for
an untuned base model the same template rendered with that tokenizer's own EOS token.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

from oda_sft.eras import CURRENT, RecipeEra
from oda_sft.errors import ConfigError
from oda_sft.util.fs import atomic_write_json, atomic_write_text

TEMPLATE_FILE = "chat_template.jinja"
TOKENIZER_CONFIG = "tokenizer_config.json"

# LLaMA-Factory 0.9.4's `default` template as it saves it (chat_template.jinja beside the weights), with the
# tokenizer's EOS token in place of EOS. tests/integration/test_eval_real.py compares it with a trained one.
_DEFAULT = (
    "{% if messages[0]['role'] == 'system' %}{% set loop_messages = messages[1:] %}{% set system_message = "
    "messages[0]['content'] %}{% else %}{% set loop_messages = messages %}{% endif %}{% if system_message is "
    "defined %}{{ 'System: ' + system_message + 'EOS' + '\n' }}{% endif %}{% for message in loop_messages %}"
    "{% set content = message['content'] %}{% if message['role'] == 'user' %}{{ 'Human: ' + content + 'EOS' + "
    "'\nAssistant:' }}{% elif message['role'] == 'assistant' %}{{ content + 'EOS' + '\n' }}{% endif %}{% endfor %}"
)


# The 2025 era's eval template: what ODA's evaluation scripts of the time wrote into every checkpoint before
# OpenCompass ran (replace_chat_template_to_default.py, line 14, in OpenDataArena/opencompass from c33bc16 until
# db31b81 removed it, 2025-07-26; script/test_llama.sh and script/test_qwen.sh ran it), verbatim: the system
# prompt bare (no `System: `), no EOS after the user turn, and Qwen's `<|endoftext|>` after every assistant
# turn, for Llama too. The user turn is LLaMA-Factory 0.9.2's (tests/integration/test_recipe_eras.py).
ODA_2025 = (
    "{% if messages[0]['role'] == 'system' %}{% set loop_messages = messages[1:] %}{% set system_message = "
    "messages[0]['content'] %}{% else %}{% set loop_messages = messages %}{% endif %}{% if system_message is "
    "defined %}{{ system_message + '\n' }}{% endif %}{% for message in loop_messages %}{% set content = "
    "message['content'] %}{% if message['role'] == 'user' %}{{ 'Human: ' + content + '\nAssistant:' }}{% elif "
    "message['role'] == 'assistant' %}{{ content + '<|endoftext|>' + '\n' }}{% endif %}{% endfor %}"
)


def default_template(eos_token: str) -> str:
    """LLaMA-Factory's `default` template for a tokenizer whose EOS token is eos_token."""
    if not eos_token or any(c in eos_token for c in "'\\\n{}%"):
        raise ConfigError(f"cannot write the default chat template for EOS token {eos_token!r}: it is empty or "
                          "holds quote, backslash, brace or newline characters")  # fmt: skip
    return _DEFAULT.replace("EOS", eos_token)


def _tokenizer_config(model_dir: Path) -> dict[str, object]:
    try:
        data = json.loads((model_dir / TOKENIZER_CONFIG).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ConfigError(f"cannot read {model_dir / TOKENIZER_CONFIG}: {exc}: the model needs its tokenizer") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{model_dir / TOKENIZER_CONFIG} is not a JSON object")
    return data


def template_for(model_dir: Path, trained: bool, era: RecipeEra = CURRENT) -> str:
    """The template to evaluate with: the 2025 era's for that era; else the trained run's own, or for a base
    model the default one for this tokenizer."""
    if era != CURRENT:
        return ODA_2025
    saved = model_dir / TEMPLATE_FILE
    if trained:
        if saved.is_file():
            return saved.read_text(encoding="utf-8")
        stored = _tokenizer_config(model_dir).get("chat_template")
        if isinstance(stored, str) and stored:
            return stored
        raise ConfigError(f"{model_dir} holds no chat template ({TEMPLATE_FILE} or tokenizer_config.json's): "
                          "it was not saved by LLaMA-Factory's training")  # fmt: skip
    eos = _tokenizer_config(model_dir).get("eos_token")
    if isinstance(eos, dict):  # an AddedToken written out
        eos = eos.get("content")
    if not isinstance(eos, str):
        raise ConfigError(f"{model_dir / TOKENIZER_CONFIG} names no eos_token: cannot render the default template")
    return default_template(eos)


def template_digest(template: str) -> str:
    return hashlib.sha256(template.encode("utf-8")).hexdigest()[:12]


def write_model_view(model_dir: Path, view: Path, template: str) -> None:
    """view/: a relative symlink to each of model_dir's files, except the tokenizer config and the
    template, which are the view's own, with `template`. The checkpoint itself is not touched."""
    view.mkdir(parents=True, exist_ok=True)
    for entry in sorted(model_dir.iterdir()):
        if entry.name in (TOKENIZER_CONFIG, TEMPLATE_FILE) or entry.name.startswith(".") or not entry.is_file():
            continue
        link = view / entry.name
        target = os.path.relpath(entry.resolve(), view.resolve())
        if link.is_symlink() or link.exists():
            if link.is_symlink() and os.readlink(link) == target:
                continue
            link.unlink()
        link.symlink_to(target)
    config = _tokenizer_config(model_dir)
    config["chat_template"] = template
    atomic_write_json(view / TOKENIZER_CONFIG, config)
    atomic_write_text(view / TEMPLATE_FILE, template)
