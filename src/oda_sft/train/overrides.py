"""LLaMA-Factory overrides (`-- key=value`), checked before anything starts.

Which keys exist and what type each takes come from LLaMA-Factory's own argument dataclasses (the ones
`llamafactory-cli train` parses: ModelArguments, DataArguments, its TrainingArguments, a subclass of
transformers' Seq2SeqTrainingArguments, FinetuningArguments, GeneratingArguments). Importing them
imports torch, which `train --dry-run` must not, so their fields are kept in a generated table,
`hparams_fields.json`, next to this file. `python -m oda_sft.train.overrides` regenerates it, and
tests/integration/test_overrides_table.py fails when it differs from the installed LLaMA-Factory.

On top of the types: numbers must be finite, some must lie in a range, and some keys are refused
because they would take the run's state out of oda-sft's hands (where it writes, whether it resumes
or deletes, which DeepSpeed config runs), with the flag to use instead.
"""

from __future__ import annotations

import dataclasses
import enum
import importlib
import json
import math
import shlex
import sys
import types
import typing
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from oda_sft.errors import UsageError
from oda_sft.names import suggest

TABLE = Path(__file__).with_name("hparams_fields.json")
# The classes `llamafactory-cli train` parses (llamafactory/hparams/parser.py: _TRAIN_ARGS).
SOURCES = ("ModelArguments", "DataArguments", "TrainingArguments", "FinetuningArguments", "GeneratingArguments")
SHIPPED_DEEPSPEED = ("ds_z2_config.json", "ds_z3_config.json")
# Text fields LLaMA-Factory looks up by name in a registry, failing only once the trainer starts
# ("Template ... does not exist."): their names are kept in the table as the field's choices.
REGISTRIES = {
    "template": ("llamafactory.data.template", "TEMPLATES"),
    "tool_format": ("llamafactory.data.tool_utils", "TOOLS"),
}

# key -> why it is refused, and what to do instead.
REFUSED = {
    "output_dir": "oda-sft derives it from --output-root, --model, --dataset and --seed, and guards it",
    "overwrite_output_dir": "it would let LLaMA-Factory delete a run; --force moves an earlier run aside instead",
    "resume_from_checkpoint": "oda-sft decides how a run resumes (run the same command again, or --model-path "
    "<checkpoint> for a new run from its weights)",
    "save_strategy": "checkpointing is the recipe's (once per epoch) or --resumable --save-steps N",
    "save_steps": "use --resumable --save-steps N",
    "save_only_model": "use --resumable for full checkpoints",
    "save_total_limit": "checkpointing is the recipe's (1 kept) or --resumable's (2 kept)",
    "tokenized_path": "oda-sft manages the tokenized cache (--no-tokenized-cache turns it off)",
    "seed": "use --seed",
    "dataset": "use --dataset",
    "dataset_dir": "use --dataset-dir",
    "model_name_or_path": "use --model-path",
}
# Settings LLaMA-Factory takes as null that oda-sft cannot: key -> why, and the fix.
NEEDS_A_VALUE = {
    "template": "with no template LLaMA-Factory guesses one from the tokenizer, and the lengths oda-sft "
    "measures to choose standard or long-CoT assume a named one: name it, e.g. template=default (the recipe's)",
}
# key -> the only values oda-sft can run: it trains full-parameter SFT.
FIXED = {"stage": "sft", "do_train": True, "finetuning_type": "full"}
# (lowest, highest, lowest allowed itself). Numbers beyond these cannot train; everything else only needs
# to be finite and to fit its type.
RANGES: dict[str, tuple[float, float, bool]] = {
    "learning_rate": (0.0, 1.0, False),
    "num_train_epochs": (0.0, 1e6, False),
    "warmup_ratio": (0.0, 1.0, True),
    "weight_decay": (0.0, 1.0, True),
    "max_grad_norm": (0.0, 1e6, True),
    "adam_beta1": (0.0, 1.0, True),
    "adam_beta2": (0.0, 1.0, True),
    "adam_epsilon": (0.0, 1.0, False),
    "per_device_train_batch_size": (1, 1e6, True),
    "gradient_accumulation_steps": (1, 1e6, True),
    "cutoff_len": (1, 1e8, True),
    "logging_steps": (0.0, 1e9, False),
    "preprocessing_num_workers": (1, 4096, True),
    "warmup_steps": (0, 1e9, True),
    "max_steps": (-1, 1e12, True),
    "dataloader_num_workers": (0, 4096, True),
}
INT64 = 2**63
_WORDS = {"int": "an integer", "float": "a number", "bool": "true or false", "str": "text", "none": "null",
          "list": "a list (set it in a config, not on the command line)", "dict": "a mapping"}  # fmt: skip


@dataclass(frozen=True)
class Field:
    kinds: tuple[str, ...]  # of: bool, int, float, str, list, dict, none, any
    choices: tuple[Any, ...] = ()  # a Literal's or Enum's values, or a registry's names: it takes only those


def _kinds(annotation: Any) -> tuple[set[str], list[Any]]:
    """The kinds of value an annotation takes, and its choices (Literal, Enum)."""
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        kinds: set[str] = set()
        choices: list[Any] = []
        for arg in typing.get_args(annotation):
            k, c = _kinds(arg)
            kinds |= k
            choices += c
        return kinds, choices
    if origin is typing.Literal:
        values = list(typing.get_args(annotation))
        return {type(v).__name__ if v is not None else "none" for v in values}, values
    if annotation is type(None) or annotation is None:
        return {"none"}, []
    if isinstance(annotation, type) and issubclass(annotation, enum.Enum):
        return {"str"}, [m.value for m in annotation]
    if origin in (list, tuple, set) or annotation in (list, tuple, set):
        return {"list"}, []
    if origin is dict or annotation is dict:
        return {"dict"}, []
    for kind in (bool, int, float, str):
        if annotation is kind:
            return {kind.__name__}, []
    return {"any"}, []


def generate() -> dict[str, dict[str, Any]]:
    """The table, read from the installed LLaMA-Factory (imports torch: for the regeneration only)."""
    import llamafactory.hparams as hparams

    table: dict[str, dict[str, Any]] = {}
    for name in SOURCES:
        cls = getattr(hparams, name)
        hints = typing.get_type_hints(cls)
        for f in dataclasses.fields(cls):
            if not f.init or f.name in table:
                continue
            kinds, choices = _kinds(hints.get(f.name, Any))
            entry: dict[str, Any] = {"kinds": sorted(kinds)}
            if choices and kinds <= {"str", "none", "int", "bool"} and "any" not in kinds:
                # An Enum or Literal: only its values are accepted (a free `str` beside an Enum is
                # converted to that Enum by transformers, so it takes the same values).
                entry["choices"] = sorted({c for c in choices if c is not None}, key=str)
            table[f.name] = entry
    for key, (module, registry) in REGISTRIES.items():
        table[key]["choices"] = sorted(getattr(importlib.import_module(module), registry))
    # The tokens each template adds to a tokenizer that lacks them (Template.fix_special_tokens: its stop
    # words, the first becoming the EOS token where it replaces it): a model whose embedding has no row for
    # them fails in training unless resize_vocab grows it.
    templates = importlib.import_module("llamafactory.data.template").TEMPLATES
    table["template"]["stop_words"] = {n: list(t.stop_words) for n, t in sorted(templates.items()) if t.stop_words}
    return dict(sorted(table.items()))


def template_tokens(name: str) -> tuple[str, ...]:
    """The special tokens LLaMA-Factory's template `name` adds to a tokenizer that lacks them."""
    raw = json.loads(TABLE.read_text(encoding="utf-8"))
    return tuple(raw.get("template", {}).get("stop_words", {}).get(name, ()))


@cache
def fields() -> dict[str, Field]:
    raw = json.loads(TABLE.read_text(encoding="utf-8"))
    return {k: Field(tuple(v["kinds"]), tuple(v.get("choices", ()))) for k, v in raw.items()}


def _fits(value: Any, kind: str) -> bool:
    if kind == "any":
        return True
    if kind == "none":
        return value is None
    if kind == "bool":
        return isinstance(value, bool)
    if kind == "int":
        return isinstance(value, int) and not isinstance(value, bool)
    if kind == "float":
        return isinstance(value, int | float) and not isinstance(value, bool)
    if kind == "str":
        return isinstance(value, str)
    return False  # list, dict: a key=value on the command line is a scalar


def check(key: str, value: Any, text: str) -> Any:
    """The value as it goes into the config, or UsageError naming the problem and the fix.

    `value` is `text` typed as YAML would type it; a field that takes a string gets the text as written."""
    if key in REFUSED:
        raise UsageError(f"override {key}= is not allowed: {REFUSED[key]}")
    known = fields()
    if key not in known:
        raise UsageError(
            f"unknown override {key}={text}{suggest(key, known)}: LLaMA-Factory 0.9.4 has no such setting "
            "(its names are the fields of its ModelArguments, DataArguments, TrainingArguments, "
            "FinetuningArguments and GeneratingArguments)"
        )
    if text != text.strip():
        # A quoting slip on the command line (`'template=default '`): shown as written, with the fix.
        fix = f"write {shlex.quote(f'{key}={text.strip()}')}" if text.strip() else "give a value"
        raise UsageError(f"override {key}={text!r} has whitespace around its value: {fix}")
    if key in FIXED and value != FIXED[key]:
        raise UsageError(f"override {key}={text} is not allowed: oda-sft trains {key}={FIXED[key]} only")
    field = known[key]
    if key == "deepspeed":
        return _deepspeed(text, value)
    if field.choices:
        if value is None and "none" in field.kinds:  # null: LLaMA-Factory's own default
            if key in NEEDS_A_VALUE:
                raise UsageError(f"override {key}=null is not allowed: {NEEDS_A_VALUE[key]}")
            return None
        if value not in field.choices and text not in field.choices:
            names = [str(c) for c in field.choices]  # all of them: the list is the fix
            hint = suggest(text, names)
            raise UsageError(f"override {key}={text} is not one of its values{hint}: {', '.join(names)}")
        return value if value in field.choices else text
    if isinstance(value, float) and not math.isfinite(value):
        raise UsageError(f"override {key}={text} is not a finite number")
    fitting = [k for k in field.kinds if _fits(value, k)]
    if not fitting:
        if "str" in field.kinds:
            return text  # a setting that takes text gets it as written: run_name=1 stays "1"
        if "float" in field.kinds and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        else:
            wanted = " or ".join(_WORDS.get(k, k) for k in field.kinds)
            raise UsageError(f"override {key}={text} must be {wanted}")
    if isinstance(value, int) and not isinstance(value, bool) and not -INT64 <= value < INT64:
        raise UsageError(f"override {key}={text} is out of range for an integer")
    if key in RANGES and isinstance(value, int | float) and not isinstance(value, bool):
        low, high, low_ok = RANGES[key]
        if value > high or value < low or (value == low and not low_ok):
            side = ">=" if low_ok else ">"
            raise UsageError(f"override {key}={text} is out of range: it must be {side} {low:g} and <= {high:g}")
    return value


def _deepspeed(text: str, value: Any) -> Any:
    """Only the DeepSpeed configs oda-sft ships (by name), or null to turn DeepSpeed off."""
    if value is None or value is False:
        return None
    from oda_sft.util.paths import train_config_dir

    shipped = {name: train_config_dir() / name for name in SHIPPED_DEEPSPEED}
    for name, path in shipped.items():
        if text in (name, str(path)):
            return str(path)
    raise UsageError(
        f"override deepspeed={text} is not allowed: use one of the configs oda-sft ships "
        f"({', '.join(SHIPPED_DEEPSPEED)}), or deepspeed=null to turn DeepSpeed off"
    )


def main() -> int:
    """Regenerate hparams_fields.json from the installed LLaMA-Factory."""
    text = json.dumps(generate(), indent=1, sort_keys=True) + "\n"
    TABLE.write_text(text, encoding="utf-8")
    print(f"wrote {TABLE} ({len(json.loads(text))} fields)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
