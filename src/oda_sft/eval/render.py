"""One evaluation's settings, its OpenCompass model config file, and the exact command.

The model config is Python (OpenCompass loads configs with mmengine). It is generated from data: every
value is a plain dict, list, str or number written with repr(), and the only names in it are the
classes and functions in SYMBOLS, imported at the top. Nothing the user types becomes code.
"""

from __future__ import annotations

import hashlib
import json
import pprint
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from oda_sft.eras import CURRENT, MANIFEST_KEY, RecipeEra
from oda_sft.errors import ConfigError
from oda_sft.eval.benchmarks import Benchmark, EvalPreset

CONFIG_STEM = "oda_sft_model"  # configs/models/oda_sft_model_<id>.py in the eval's own --config-dir
DATA_DIR = Path(__file__).with_name("data")
CUSTOM_DATA = {"arithmetic": DATA_DIR / "oda_sft_arithmetic.jsonl"}

# The names a model config may use, and where OpenCompass defines them.
SYMBOLS = {
    "VLLMwithChatTemplate": "opencompass.models",
    "HuggingFacewithChatTemplate": "opencompass.models",
    "extract_non_reasoning_content": "opencompass.utils.text_postprocessors",
}
# OpenCompass's folder per attempt under -w: datetime.now().strftime('%Y%m%d_%H%M%S') (opencompass 0.5.4,
# cli/main.py:297); `-r STAMP` works in <work_dir>/STAMP, made if new (cli/main.py:306-307, 316). A bare `-r`
# reuses sorted(os.listdir(work_dir))[-1] (cli/main.py:299-305), and OpenCompass's own scratch folder tmp/
# (runners/local.py:104,212: in the directory it runs in) sorts after every stamp: oda-sft names the folder.
STAMP = re.compile(r"\d{8}_\d{6}")


def new_stamp() -> str:
    return datetime.now().strftime("%Y%m%d_%H%M%S")


class Symbol:
    """A class or function of OpenCompass, written as its bare name (imported at the top of the file)."""

    def __init__(self, name: str) -> None:
        if name not in SYMBOLS:
            raise ConfigError(f"{name!r} is not an OpenCompass name oda-sft writes into a config")
        self.name = name

    def __repr__(self) -> str:
        return self.name


def settings_of(
    preset: EvalPreset, suite: str, chosen: tuple[Benchmark, ...], template_digest: str, era: RecipeEra = CURRENT
) -> dict[str, Any]:
    """What makes two evaluations the same: their id is the sha256 of this, as JSON. The recipe era is in it
    except for the current one, so evals recorded before eras existed keep their ids (and read as 2026)."""
    return {
        **({MANIFEST_KEY: era} if era != CURRENT else {}),
        "preset": preset.name,
        "suite": suite,
        "benchmarks": [b.name for b in chosen],
        "configs": {b.name: preset.config(b) for b in chosen},
        "generation": {
            "model_class": preset.model_class,
            "max_out_len": preset.max_out_len,
            "batch_size": preset.batch_size,
            "generation_kwargs": dict(preset.generation_kwargs),
            "pred_postprocessor": preset.pred_postprocessor or None,
            "num_gpus": preset.num_gpus,
            "max_num_workers": preset.max_num_workers,
            "accelerator": preset.accelerator or None,
            "chat_template_sha256": template_digest,
        },
        "judges": {b.name: preset.judge(b) for b in chosen},
    }


def settings_id(settings: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(settings, sort_keys=True).encode("utf-8")).hexdigest()[:12]


@dataclass(frozen=True)
class Layout:
    """Where one evaluation keeps everything: <run dir>/eval/<id>/."""

    eval_dir: Path

    @property
    def config_dir(self) -> Path:  # OpenCompass's --config-dir: its models/ holds our model config
        return self.eval_dir / "configs"

    def model_config(self, eval_id: str) -> Path:
        return self.config_dir / "models" / f"{CONFIG_STEM}_{eval_id}.py"

    @property
    def model_view(self) -> Path:  # the checkpoint's files, with the eval's own tokenizer config
        return self.eval_dir / "model"

    @property
    def work_dir(self) -> Path:  # OpenCompass's -w: <stamp>/{predictions,results,summary,logs}
        return self.eval_dir / "work"

    def stamps(self) -> list[str]:
        """The attempt folders OpenCompass made under work/, oldest first (never its tmp/ or .cache/)."""
        if not self.work_dir.is_dir():
            return []
        return sorted(d.name for d in self.work_dir.iterdir() if STAMP.fullmatch(d.name) and d.is_dir())


def model_entry(preset: EvalPreset, abbr: str, model_path: Path) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "type": Symbol(preset.model_class),
        "abbr": abbr,
        "path": str(model_path),
    }
    if preset.model_kwargs:
        entry["model_kwargs"] = dict(preset.model_kwargs)
    if preset.tokenizer_kwargs:
        entry["tokenizer_kwargs"] = {
            k: (list(v) if isinstance(v, tuple) else v) for k, v in preset.tokenizer_kwargs.items()
        }
    entry.update(
        max_out_len=preset.max_out_len,
        batch_size=preset.batch_size,
        generation_kwargs=dict(preset.generation_kwargs),
        run_cfg={"num_gpus": preset.num_gpus},
    )
    if preset.pred_postprocessor:
        # A function oda-sft imports, or the name OpenCompass registered a text post-processor under.
        name = preset.pred_postprocessor
        entry["pred_postprocessor"] = {"type": Symbol(name) if name in SYMBOLS else name}
    return entry


def _check_plain(value: Any, where: str = "models") -> None:
    """Only data and Symbols: anything else would not survive repr() as the same value."""
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                raise ConfigError(f"{where}: key {key!r} is not a string")
            _check_plain(item, f"{where}.{key}")
    elif isinstance(value, list):
        for item in value:
            _check_plain(item, where)
    elif not isinstance(value, str | int | float | bool | Symbol) and value is not None:
        raise ConfigError(f"{where}: {type(value).__name__} cannot be written into an OpenCompass config")


def model_config_text(entry: dict[str, Any], eval_id: str) -> str:
    _check_plain(entry)
    used = sorted(_symbols(entry))
    lines = [f"# Written by oda-sft for one evaluation (settings {eval_id}); OpenCompass reads it via --config-dir."]
    for module in sorted({SYMBOLS[name] for name in used}):
        names = ", ".join(n for n in used if SYMBOLS[n] == module)
        lines.append(f"from {module} import {names}")
    lines += ["", f"models = {pprint.pformat([entry], width=100, sort_dicts=False)}", ""]
    return "\n".join(lines)


def _symbols(value: Any) -> set[str]:
    if isinstance(value, Symbol):
        return {value.name}
    if isinstance(value, dict):
        return set().union(*(_symbols(v) for v in value.values())) if value else set()
    if isinstance(value, list):
        return set().union(*(_symbols(v) for v in value)) if value else set()
    return set()


def command(
    program: Path,
    preset: EvalPreset,
    chosen: tuple[Benchmark, ...],
    layout: Layout,
    eval_id: str,
    stamp: str,
    renamed: Mapping[str, str] | None = None,
) -> list[str]:
    """ODA's command line, pointed at the eval's own config dir and work dir (never OpenCompass's package), in
    the attempt's own folder <work dir>/<stamp> (`-r STAMP`: a new one starts there, a resumed one reuses its
    predictions and results; ODA's qwen3 script's bare `-r` would pick the newest folder by name). `renamed`:
    benchmark -> the dataset config oda-sft wrote for it in the config dir (Omni-MATH's, with its judge's URL)."""
    if not STAMP.fullmatch(stamp):
        raise ConfigError(f"{stamp!r} is not an OpenCompass work folder name (YYYYmmdd_HHMMSS)")
    argv = [str(program), "--models", f"{CONFIG_STEM}_{eval_id}", "--config-dir", str(layout.config_dir)]
    custom = [b for b in chosen if b.custom]
    if custom:
        if len(chosen) != 1:
            raise ConfigError("a custom benchmark runs on its own: OpenCompass takes one --custom-dataset-path")
        path = CUSTOM_DATA[custom[0].name]
        argv += ["--custom-dataset-path", str(path), "--custom-dataset-data-type", "qa",
                 "--custom-dataset-infer-method", "gen"]  # fmt: skip
    else:
        argv += ["--datasets", *((renamed or {}).get(b.name, preset.config(b)) for b in chosen)]
    argv += ["-w", str(layout.work_dir), "-r", stamp]
    argv += ["--max-out-len", str(preset.max_out_len), "--hf-type", "chat"]
    argv += ["--max-num-workers", str(preset.max_num_workers)]
    if preset.accelerator:
        argv += ["-a", preset.accelerator]
    return argv
