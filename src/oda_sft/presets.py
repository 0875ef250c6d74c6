"""The catalog: one record per model preset (the 17 long-CoT datasets are in oda_sft.datasets_catalog).

Plain frozen data, so the recipe can be read here without reading code. A preset declares
everything about itself once: its templates, model shape, DeepSpeed stage, the values upstream
wrote and the evaluation profile it is evaluated with. The renderer, the memory model, the
benchmark, the evaluation, the help texts and the tests all read it from here, so adding a preset
is its record here plus its recipe file in train_config/ (tests/unit/test_presets.py adds one);
tests/unit/test_recipe_contract.py and tests/unit/test_presets.py check that they agree.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any, Literal

from oda_sft.shapes import ModelShape

Mode = Literal["standard", "long"]
MODES: tuple[Mode, ...] = ("standard", "long")


@dataclass(frozen=True)
class ModelPreset:
    name: str
    base_model: str  # HF id, or "" for the embedded tiny model built on first use
    save_name: str  # first component of output_dir under the output root
    shape: ModelShape  # what --profile fast, the benchmark and `estimate` compute memory and FLOPs from
    zero_stage: int  # the DeepSpeed ZeRO stage its templates use
    templates: Mapping[Mode, str]  # mode -> file in train_config/
    upstream: Mapping[Mode, Mapping[str, Any]]  # mode -> the values upstream wrote (see upstream_config)
    # How it is evaluated: a key of oda_sft.eval.benchmarks.PROFILES (the benchmark configs and generation
    # settings of one of ODA's eval scripts), shared by the base models of one family.
    eval_profile: str
    note: str = ""

    @property
    def modes(self) -> tuple[Mode, ...]:
        return tuple(m for m in MODES if m in self.templates)

    @property
    def embedded(self) -> bool:
        return not self.base_model

    def upstream_config(self, mode: Mode) -> dict[str, Any]:
        """The config upstream's YAML means, before oda-sft's fixes (the benchmark's `raw` baseline):
        overwrite_output_dir true, no seed in qwen_long, the DeepSpeed file named by its file name."""
        return {**UPSTREAM_SHARED, "deepspeed": f"ds_z{self.zero_stage}_config.json", **self.upstream[mode]}


# Every upstream config has these, as upstream wrote them (RECIPE.md).
UPSTREAM_SHARED: dict[str, Any] = {
    "trust_remote_code": True,
    "stage": "sft",
    "do_train": True,
    "finetuning_type": "full",
    "template": "default",
    "overwrite_cache": True,
    "preprocessing_num_workers": 16,
    "logging_steps": 10,
    "save_strategy": "epoch",
    "save_only_model": True,
    "save_total_limit": 1,
    "plot_loss": True,
    "overwrite_output_dir": True,
    "num_train_epochs": 3.0,
    "lr_scheduler_type": "cosine",
    "bf16": True,
    "ddp_timeout": 180000000,
    "use_liger_kernel": True,
}
_STANDARD = {"cutoff_len": 4096, "per_device_train_batch_size": 4, "gradient_accumulation_steps": 4}
_LONG = {"cutoff_len": 32768, "packing": True, "per_device_train_batch_size": 1, "gradient_accumulation_steps": 2}
_LLAMA_UPSTREAM: dict[Mode, dict[str, Any]] = {
    "standard": {**_STANDARD, "learning_rate": 2.0e-5, "warmup_ratio": 0.03, "seed": 42},
    "long": {**_LONG, "learning_rate": 3.0e-5, "warmup_ratio": 0.03, "seed": 42},
}

_LLAMA = ModelPreset(
    name="llama",
    base_model="meta-llama/Llama-3.1-8B",
    save_name="llama3.1-8b",
    shape=ModelShape("llama3.1-8b", 4096, 14336, 32, 32, 8, 128256, tie_word_embeddings=False),
    zero_stage=2,
    templates={"standard": "llama_config.yaml", "long": "llama_long_config.yaml"},
    upstream=_LLAMA_UPSTREAM,
    eval_profile="llama_qwen",
)

PRESETS: dict[str, ModelPreset] = {
    p.name: p
    for p in (
        _LLAMA,
        ModelPreset(
            name="qwen",
            base_model="Qwen/Qwen2.5-7B",
            save_name="qwen2.5-7b",
            shape=ModelShape(
                "qwen2.5-7b", 3584, 18944, 28, 28, 4, 152064, tie_word_embeddings=False, attention_bias=True
            ),
            zero_stage=2,
            templates={"standard": "qwen_config.yaml", "long": "qwen_long_config.yaml"},
            upstream={
                "standard": {**_STANDARD, "learning_rate": 5.0e-6, "warmup_ratio": 0.1, "seed": 42},
                "long": {**_LONG, "learning_rate": 5.0e-5, "warmup_ratio": 0.1},  # upstream has no seed here
            },
            eval_profile="llama_qwen",
        ),
        ModelPreset(
            name="qwen3",
            base_model="Qwen/Qwen3-8B-Base",
            save_name="qwen3-8b",
            shape=ModelShape("qwen3-8b", 4096, 12288, 36, 32, 8, 151936, tie_word_embeddings=False, head_dim=128),
            zero_stage=3,
            templates={"long": "qwen3_config.yaml"},
            upstream={
                "long": {
                    **_LONG,
                    "per_device_train_batch_size": 2,
                    "learning_rate": 5.0e-5,
                    "warmup_ratio": 0.1,
                    "seed": 42,
                },
            },
            eval_profile="qwen3",
            note="upstream ships one Qwen3 config (long-CoT, ZeRO-3); it is used for every dataset",
        ),
        replace(  # the llama recipe (its ZeRO stage and upstream values) on a toy model
            _LLAMA,
            name="tiny",
            base_model="",
            save_name="tiny",
            # Built offline by tiny_model.py; the vocabulary is its trained byte-level BPE size.
            shape=ModelShape("tiny", 64, 176, 2, 4, 2, 1024, tie_word_embeddings=False),
            templates={"standard": "tiny_config.yaml", "long": "tiny_long_config.yaml"},
            eval_profile="tiny",
            note="random-weight Llama-shaped model built offline; the llama recipe at toy scale",
        ),
    )
}


# Read when asked, not at import: everything said about the presets follows PRESETS.
def preset_names() -> str:
    return ", ".join(PRESETS)


def preset_help() -> str:
    return "Preset: " + "; ".join(f"{p.name} ({p.base_model or 'embedded tiny model'})" for p in PRESETS.values()) + "."
