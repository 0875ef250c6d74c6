"""The catalog: model presets and the datasets ODA trains with the long-CoT setting.

Plain frozen data, so the recipe can be read here without reading code.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Mode = Literal["standard", "long"]
MODES: tuple[Mode, ...] = ("standard", "long")


@dataclass(frozen=True)
class ModelPreset:
    name: str
    base_model: str  # HF id, or "" for the embedded tiny model built on first use
    save_name: str  # first component of output_dir under the output root
    templates: dict[Mode, str]  # mode -> file in train_config/
    note: str = ""

    @property
    def modes(self) -> tuple[Mode, ...]:
        return tuple(m for m in MODES if m in self.templates)

    @property
    def embedded(self) -> bool:
        return not self.base_model


@dataclass(frozen=True)
class CatalogDataset:
    name: str
    affiliation: str
    hf_id: str
    mode: Mode = "long"
    hf_file: str = ""  # a single file inside the HF repo, when upstream trained on one
    hf_split: str = ""


PRESETS: dict[str, ModelPreset] = {
    p.name: p
    for p in (
        ModelPreset(
            name="llama",
            base_model="meta-llama/Llama-3.1-8B",
            save_name="llama3.1-8b",
            templates={"standard": "llama_config.yaml", "long": "llama_long_config.yaml"},
        ),
        ModelPreset(
            name="qwen",
            base_model="Qwen/Qwen2.5-7B",
            save_name="qwen2.5-7b",
            templates={"standard": "qwen_config.yaml", "long": "qwen_long_config.yaml"},
        ),
        ModelPreset(
            name="qwen3",
            base_model="Qwen/Qwen3-8B-Base",
            save_name="qwen3-8b",
            templates={"long": "qwen3_config.yaml"},
            note="upstream ships one Qwen3 config (long-CoT, ZeRO-3); it is used for every dataset",
        ),
        ModelPreset(
            name="tiny",
            base_model="",
            save_name="tiny",
            templates={"standard": "tiny_config.yaml", "long": "tiny_long_config.yaml"},
            note="random-weight Llama-shaped model built offline; the llama recipe at toy scale",
        ),
    )
}

# The 17 datasets upstream trains with the long-CoT setting (RECIPE.md).
DATASETS: dict[str, CatalogDataset] = {
    d.name: d
    for d in (
        CatalogDataset("OpenR1-Math-220k", "Huggingface", "open-r1/OpenR1-Math-220k"),
        CatalogDataset("QwQ-LongCoT-130K", "Guijin Son", "amphora/QwQ-LongCoT-130K"),
        CatalogDataset("QwQ-LongCoT-130K-2", "Guijin Son", "amphora/QwQ-LongCoT-130K-2"),
        CatalogDataset("Bespoke-Stratos-17k", "Bespoke Labs", "bespokelabs/Bespoke-Stratos-17k"),
        CatalogDataset("OpenThoughts-114k", "Stanford University", "open-thoughts/OpenThoughts-114k"),
        CatalogDataset("R1-Distill-SFT", "ServiceNow-AI", "ServiceNow-AI/R1-Distill-SFT"),
        CatalogDataset("OpenO1-SFT", "GAIR", "O1-OPEN/OpenO1-SFT"),
        CatalogDataset("DeepMath-103K", "Tencent & SJTU", "zwhe99/DeepMath-103K"),
        CatalogDataset("Raiden-DeepSeek-R1", "sequelbox", "sequelbox/Raiden-DeepSeek-R1"),
        CatalogDataset(
            "Magpie-Reasoning-V2-250K-CoT-Deepseek-R1-Llama-70B",
            "Allen AI",
            "Magpie-Align/Magpie-Reasoning-V2-250K-CoT-Deepseek-R1-Llama-70B",
        ),
        CatalogDataset("Magpie-Reasoning-V2-250K-CoT-QwQ", "Allen AI", "Magpie-Align/Magpie-Reasoning-V2-250K-CoT-QwQ"),
        CatalogDataset(
            "AM-Thinking-v1-Distilled-code",
            "a-m-team",
            "a-m-team/AM-Thinking-v1-Distilled",
            hf_file="code.jsonl",
        ),
        CatalogDataset(
            "AM-Thinking-v1-Distilled-math",
            "a-m-team",
            "a-m-team/AM-Thinking-v1-Distilled",
            hf_file="math.jsonl",
        ),
        CatalogDataset("Light-R1-SFTData", "Qiyuan Tech", "qihoo360/Light-R1-SFTData"),
        CatalogDataset("Fast-Math-R1-SFT", "University of Tokyo", "RabotniKuma/Fast-Math-R1-SFT"),
        CatalogDataset("OpenThoughts3-1.2M", "Stanford University", "open-thoughts/OpenThoughts3-1.2M"),
        CatalogDataset("OpenMathReasoning-cot", "Nvidia", "nvidia/OpenMathReasoning", hf_split="cot"),
    )
}
