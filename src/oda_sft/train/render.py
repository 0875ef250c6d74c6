"""Render the recipe: (preset, mode, dataset, seed, overrides) -> the config dict -> YAML."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from oda_sft.eras import CURRENT, ERAS, RecipeEra
from oda_sft.errors import ConfigError, UsageError
from oda_sft.presets import Mode, ModelPreset
from oda_sft.train.overrides import check as check_override
from oda_sft.train.overrides import fields as override_fields
from oda_sft.util.paths import train_config_dir
from oda_sft.util.secrets import is_secret_name

# Keys a template leaves empty for oda-sft to fill in.
FILLED_KEYS = ("model_name_or_path", "dataset", "dataset_dir", "output_dir", "seed")

# Keys that only a flag may set, so that output_dir, the manifest and the config agree.
_FLAG_FOR_KEY = {
    "seed": "--seed",
    "dataset": "--dataset",
    "dataset_dir": "--dataset-dir",
    "output_dir": "--output-root",
    "model_name_or_path": "--model-path",
    "overwrite_output_dir": "--force (oda-sft never lets LLaMA-Factory delete a run)",
    "tokenized_path": "the tokenized cache oda-sft manages (--no-tokenized-cache to turn it off)",
}

# What a machine without a GPU cannot run. Only the tiny preset falls back; real presets never do.
_CPU_OFF = {"bf16": False, "use_liger_kernel": False}
_CPU_DROPPED = ("deepspeed",)

_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


@dataclass(frozen=True)
class RenderSpec:
    preset: ModelPreset
    mode: Mode
    dataset: str
    seed: int
    dataset_dir: Path
    output_root: Path
    model_path: str
    cpu_fallback: bool = False
    overrides: dict[str, Any] = field(default_factory=dict)
    era: RecipeEra = CURRENT


def template_path(preset: ModelPreset, mode: Mode) -> Path:
    if mode not in preset.templates:
        raise ConfigError(
            f"preset {preset.name!r} has no {mode} config ({preset.note or 'not in the recipe'}): "
            f"use --mode {' or '.join(preset.modes)}"
        )
    return train_config_dir() / preset.templates[mode]


def load_template(preset: ModelPreset, mode: Mode) -> dict[str, Any]:
    path = template_path(preset, mode)
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    if not isinstance(data, dict):
        raise ConfigError(f"{path} is not a YAML mapping: restore it from the oda-sft sources")
    return data


def output_dir_for(output_root: Path, preset: ModelPreset, dataset: str, seed: int) -> Path:
    """The upstream layout: <root>/<model>/full/sft-DATASET/seed-SEED."""
    return output_root / preset.save_name / "full" / f"sft-{dataset}" / f"seed-{seed}"


def cpu_fallback(config: dict[str, Any]) -> dict[str, Any]:
    """The config with bf16, liger kernels and DeepSpeed off: what a CPU can train; and no more
    preprocessing workers than the machine has cores (the recipe's 16 would crowd a laptop)."""
    fallback = {**{k: v for k, v in config.items() if k not in _CPU_DROPPED}, **_CPU_OFF}
    workers = fallback.get("preprocessing_num_workers")
    if isinstance(workers, int):
        fallback["preprocessing_num_workers"] = max(1, min(workers, os.cpu_count() or 1))
    return fallback


def render(spec: RenderSpec) -> dict[str, Any]:
    config = load_template(spec.preset, spec.mode)
    config["model_name_or_path"] = spec.model_path
    config["dataset"] = spec.dataset
    config["dataset_dir"] = str(spec.dataset_dir)
    config["seed"] = spec.seed
    config["output_dir"] = str(output_dir_for(spec.output_root, spec.preset, spec.dataset, spec.seed))
    if config.get("deepspeed"):
        config["deepspeed"] = str(train_config_dir() / str(config["deepspeed"]))
    if spec.cpu_fallback:
        config = cpu_fallback(config)
    if spec.era != CURRENT:  # the era's tokens: its template stands in for the recipe's `default`
        if "template" in spec.overrides:
            raise UsageError(f"override template= cannot be combined with --recipe {spec.era}, which trains with "
                             f"its own ({ERAS[spec.era].template}): drop one of them")  # fmt: skip
        config["template"] = ERAS[spec.era].template
    config.update(spec.overrides)
    missing = [k for k in FILLED_KEYS if config.get(k) is None]
    if missing:
        raise ConfigError(f"rendered config has no value for {', '.join(missing)}: this is a bug in oda-sft")
    return config


DEFAULT_SAVE_STEPS = 500
RESUMABLE_KEEP = 2  # the newest two: if the run dies while writing one, the other is whole


def make_resumable(config: dict[str, Any], save_steps: int | None) -> dict[str, Any]:
    """Full checkpoints every N steps instead of weights once per epoch. Only checkpointing changes:
    the data order, batches, learning rate and loss are those of the recipe."""
    return {
        **config,
        "save_strategy": "steps",
        "save_steps": save_steps or DEFAULT_SAVE_STEPS,
        "save_only_model": False,
        "save_total_limit": RESUMABLE_KEEP,
    }


def parse_value(text: str) -> Any:
    """A command-line value as LLaMA-Factory's own parser would type it: bool, null, int, float or str."""
    lowered = text.lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    if lowered in ("null", "~"):  # "none" stays a string: report_to=none
        return None
    for cast in (int, float):
        try:
            return cast(text)
        except ValueError:
            pass
    return text


def parse_overrides(items: list[str]) -> dict[str, Any]:
    overrides: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not _KEY.fullmatch(key):
            raise UsageError(
                f"malformed override {item!r}: write LLaMA-Factory settings after `--` as key=value, "
                "e.g. `-- logging_steps=5`"
            )
        if value.startswith("="):  # key==value: not a value "=value" (and not the secret "key")
            raise UsageError(
                f"malformed override {item!r}: one '=' separates the key from its value, e.g. "
                f"`-- {key}={value.lstrip('=')}`"
            )
        if key in _FLAG_FOR_KEY:
            raise UsageError(f"override {key}= is not allowed: use {_FLAG_FOR_KEY[key]} instead")
        # A secret's name (hub_token, WANDB_API_KEY) is refused as one, whether LLaMA-Factory has the setting
        # or not; a bare word such as `key` (a pasted `-- key=value`) is refused below as unknown.
        if is_secret_name(key) and (key in override_fields() or "_" in key):
            raise UsageError(
                f"override {key}= looks like a secret, which would be kept in the run's config: "
                "pass it through the environment instead (e.g. HF_TOKEN)"
            )
        # Type, range and the keys oda-sft must keep: checked against LLaMA-Factory's own fields.
        overrides[key] = check_override(key, parse_value(value), value)
    return overrides


def dump_yaml(config: dict[str, Any]) -> str:
    return yaml.safe_dump(config, sort_keys=False, allow_unicode=True, default_flow_style=False)
