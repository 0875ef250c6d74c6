"""Contract: every preset x mode renders to exactly the values in RECIPE.md."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
import yaml

from oda_sft.presets import PRESETS
from oda_sft.train.render import RenderSpec, dump_yaml, render
from oda_sft.util.paths import train_config_dir

# Written from RECIPE.md, independently of train_config/.
SHARED: dict[str, Any] = {
    "stage": "sft",
    "do_train": True,
    "finetuning_type": "full",
    "trust_remote_code": True,
    "template": "default",
    "overwrite_cache": True,
    "preprocessing_num_workers": 16,
    "save_only_model": True,
    "save_strategy": "epoch",
    "save_total_limit": 1,
    "logging_steps": 10,
    "plot_loss": True,
    "num_train_epochs": 3.0,
    "lr_scheduler_type": "cosine",
    "bf16": True,
    "ddp_timeout": 180000000,
    "use_liger_kernel": True,
    "overwrite_output_dir": False,  # fixed defect 5: upstream's true deletes runs
}
# preset, mode -> base model, save name, zero stage, cutoff, bs, ga, lr, warmup, packing
TABLE = {
    ("llama", "standard"): ("meta-llama/Llama-3.1-8B", "llama3.1-8b", 2, 4096, 4, 4, 2.0e-5, 0.03, False),
    ("llama", "long"): ("meta-llama/Llama-3.1-8B", "llama3.1-8b", 2, 32768, 1, 2, 3.0e-5, 0.03, True),
    ("qwen", "standard"): ("Qwen/Qwen2.5-7B", "qwen2.5-7b", 2, 4096, 4, 4, 5.0e-6, 0.1, False),
    ("qwen", "long"): ("Qwen/Qwen2.5-7B", "qwen2.5-7b", 2, 32768, 1, 2, 5.0e-5, 0.1, True),
    ("qwen3", "long"): ("Qwen/Qwen3-8B-Base", "qwen3-8b", 3, 32768, 2, 2, 5.0e-5, 0.1, True),
}


def _render(preset: str, mode: str, tmp_path: Path, seed: int = 1234, dataset: str = "My-Data_v2") -> dict[str, Any]:
    p = PRESETS[preset]
    return render(
        RenderSpec(
            preset=p,
            mode=mode,  # type: ignore[arg-type]
            dataset=dataset,
            seed=seed,
            dataset_dir=tmp_path / "data",
            output_root=tmp_path / "saves",
            model_path=p.base_model,
        )
    )


@pytest.mark.parametrize(("preset", "mode"), sorted(TABLE))
def test_preset_mode_matches_recipe(preset: str, mode: str, tmp_path: Path) -> None:
    base, save_name, zero, cutoff, bs, ga, lr, warmup, packing = TABLE[(preset, mode)]
    config = _render(preset, mode, tmp_path)
    expected = {
        **SHARED,
        "model_name_or_path": base,
        "cutoff_len": cutoff,
        "per_device_train_batch_size": bs,
        "gradient_accumulation_steps": ga,
        "learning_rate": lr,
        "warmup_ratio": warmup,
        "packing": packing,
        "seed": 1234,
        "dataset": "My-Data_v2",
        "dataset_dir": str(tmp_path / "data"),
        "output_dir": str(tmp_path / "saves" / save_name / "full" / "sft-My-Data_v2" / "seed-1234"),
    }
    ds_path = Path(config.pop("deepspeed"))
    assert config == expected
    assert ds_path.is_absolute() and ds_path.is_file(), "defect 4: the DeepSpeed config must ship and exist"
    assert ds_path.name == f"ds_z{zero}_config.json"
    assert yaml.safe_load(ds_path.read_text())["zero_optimization"]["stage"] == zero


@pytest.mark.parametrize(("preset", "mode"), sorted(TABLE))
def test_rendered_yaml_round_trips_without_placeholders(preset: str, mode: str, tmp_path: Path) -> None:
    config = _render(preset, mode, tmp_path, seed=7, dataset="abc")
    text = dump_yaml(config)
    assert "${" not in text and "SEED" not in text and "DATASET" not in text  # defect 1
    assert yaml.safe_load(text) == config
    assert "seed-7" in config["output_dir"] and "sft-abc" in config["output_dir"]  # defects 2 and 3


def test_every_template_parses_and_leaves_only_the_filled_keys_empty() -> None:
    for preset in PRESETS.values():
        for file_name in preset.templates.values():
            data = yaml.safe_load((train_config_dir() / file_name).read_text())
            empty = {k for k, v in data.items() if v is None}
            assert empty <= {"model_name_or_path", "dataset", "dataset_dir", "output_dir", "seed"}, file_name
            assert {"dataset", "output_dir", "seed", "dataset_dir"} <= empty


def test_qwen3_has_only_the_long_config() -> None:
    assert PRESETS["qwen3"].modes == ("long",)


def test_tiny_mirrors_the_llama_recipe(tmp_path: Path) -> None:
    for mode in ("standard", "long"):
        tiny = _render("tiny", mode, tmp_path)
        llama = _render("llama", mode, tmp_path)
        differs = {k for k in set(tiny) | set(llama) if tiny.get(k) != llama.get(k)}
        assert differs == {"model_name_or_path", "output_dir"}


def test_cpu_fallback_only_touches_what_a_cpu_cannot_run(tmp_path: Path) -> None:
    p = PRESETS["tiny"]
    common = {"dataset": "d", "seed": 1, "dataset_dir": tmp_path, "output_root": tmp_path, "model_path": "m"}
    gpu = render(RenderSpec(preset=p, mode="standard", **common))  # type: ignore[arg-type]
    cpu = render(RenderSpec(preset=p, mode="standard", cpu_fallback=True, **common))  # type: ignore[arg-type]
    changed = {k for k in set(gpu) | set(cpu) if gpu.get(k) != cpu.get(k)}
    # preprocessing_num_workers only where the machine has fewer cores than the recipe's 16.
    assert {"bf16", "use_liger_kernel", "deepspeed"} <= changed <= {"bf16", "use_liger_kernel", "deepspeed",
                                                                    "preprocessing_num_workers"}  # fmt: skip
    assert "deepspeed" not in cpu and cpu["bf16"] is False and cpu["use_liger_kernel"] is False
    assert 1 <= cpu["preprocessing_num_workers"] <= min(16, os.cpu_count() or 1)


def test_every_config_of_recipe_md_is_a_preset() -> None:
    """RECIPE.md's five configs are shipped as presets. A preset of oda-sft's own (a proxy base model) is not
    in RECIPE.md and needs no row here: its record and its recipe file are all it takes (tests/unit/test_presets.py)."""
    declared = {(p.name, m) for p in PRESETS.values() if not p.embedded for m in p.modes}
    assert set(TABLE) <= declared


@pytest.mark.parametrize(("preset", "mode"), sorted(TABLE))
def test_the_preset_record_agrees_with_its_templates_and_the_upstream_files(preset: str, mode: str) -> None:
    base, save_name, zero, cutoff, bs, ga, lr, warmup, packing = TABLE[(preset, mode)]
    p = PRESETS[preset]
    assert (p.base_model, p.save_name, p.zero_stage) == (base, save_name, zero)
    template = yaml.safe_load((train_config_dir() / p.templates[mode]).read_text())
    assert template["deepspeed"] == f"ds_z{zero}_config.json"
    assert p.shape.num_layers > 0 and p.shape.name == save_name  # what fast, bench and estimate compute from
    # What upstream wrote, defects included: overwrite_output_dir true, and no seed in qwen_long_config.yaml.
    upstream = dict(p.upstream_config(mode))
    expected = {
        **SHARED,
        "overwrite_output_dir": True,
        "deepspeed": f"ds_z{zero}_config.json",
        "cutoff_len": cutoff,
        "per_device_train_batch_size": bs,
        "gradient_accumulation_steps": ga,
        "learning_rate": lr,
        "warmup_ratio": warmup,
        **({"packing": True} if packing else {}),
        **({} if (preset, mode) == ("qwen", "long") else {"seed": 42}),
    }
    assert upstream == expected
