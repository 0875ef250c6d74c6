"""Names that hold secrets: never written to a config, a log or a manifest."""

from __future__ import annotations

import re
from collections.abc import Mapping

# A secret's name has one of these as a whole _-separated word: HF_TOKEN, hub_token, WANDB_API_KEY.
# Settings such as add_special_tokens or include_num_input_tokens_seen are not secrets.
_SECRET = re.compile(r"(^|_)(TOKEN|KEY|APIKEY|SECRET|PASSWORD|PASSWD|CREDENTIALS?)($|_)", re.IGNORECASE)


def is_secret_name(name: str) -> bool:
    return bool(_SECRET.search(name))


def redact(mapping: Mapping[str, str]) -> dict[str, str]:
    """Drop anything whose name looks like a secret; keep the rest as is."""
    return {k: v for k, v in mapping.items() if not is_secret_name(k)}


def redact_argv(argv: list[str]) -> list[str]:
    """key=value words whose key looks like a secret lose their value."""
    out = []
    for word in argv:
        key, sep, _ = word.partition("=")
        out.append(f"{key}=<redacted>" if sep and is_secret_name(key.lstrip("-")) else word)
    return out
