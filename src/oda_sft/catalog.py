"""The catalog: one record per model preset, and the datasets ODA trains with the long-CoT setting.

Plain frozen data, so the recipe can be read here without reading code. A preset declares
everything about itself once: its templates, model shape, DeepSpeed stage and the values
upstream wrote. The renderer, the memory model, the benchmark, the help texts and the tests
all read it from here; tests/unit/test_recipe_contract.py checks that they agree.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
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


@dataclass(frozen=True)
class Conversion:
    """How one catalog dataset becomes Alpaca records: declared here, never guessed from the data.

    docs/data.md lists every dataset's choice; data/sources/catalog_conversion.py carries it out. Where the
    choice is not obvious, the one that keeps the long reasoning trace wins, and `why` says so.
    """

    files: tuple[str, ...]  # glob patterns of the repo files that hold what upstream trained on
    prompt: str  # the column with the user's prompt; for chat data, the column with the turns
    response: str = ""  # the column with the reasoning trace and the answer (chat data: the last assistant turn)
    chat: bool = False  # `prompt` holds a list of turns (role/content or from/value)
    also: tuple[str, ...] = ()  # other names the `prompt` column has had across the repo's revisions
    system: str = ""  # a fixed system prompt the authors trained with
    system_column: str = ""  # a column holding each record's system prompt
    pick_from: str = ""  # a list column of candidate responses: the first whose flags pass is used
    pick_all: tuple[str, ...] = ()  # per-candidate flag lists that must all be true
    pick_any: tuple[str, ...] = ()  # per-candidate flag lists of which at least one must be true
    trace: tuple[str, str] | None = None  # the trace's opening and closing tags: opened, never closed = cut off
    why: str = ""  # the choice, in one line
    source: str = ""  # where the schema was read

    def describe(self) -> str:
        """One line, for the summary printed before a fetch writes anything."""
        prompt = f"{self.prompt} (chat turns)" if self.chat else self.prompt
        response = self.pick_from or self.response or "the last assistant turn"
        parts = [f"instruction <- {prompt}", f"output <- {response}"]
        if self.pick_from:
            flags = [*(f"{f}" for f in self.pick_all), *([" or ".join(self.pick_any)] if self.pick_any else [])]
            parts.append(f"first candidate with {' and '.join(flags)} true")
        if self.system:
            parts.append(f"system <- {self.system!r}")
        elif self.system_column:
            parts.append(f"system <- {self.system_column}")
        if self.trace:
            parts.append(f"drop traces opened with {self.trace[0]} and never closed")
        return "; ".join(parts)


@dataclass(frozen=True)
class CatalogDataset:
    name: str
    affiliation: str
    hf_id: str
    mode: Mode = "long"
    hf_file: str = ""  # a single file inside the HF repo, when upstream trained on one
    hf_split: str = ""
    conversion: Conversion | None = None  # how `oda-sft data add NAME` converts it (all 17 declare one)


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

PRESETS: dict[str, ModelPreset] = {
    p.name: p
    for p in (
        ModelPreset(
            name="llama",
            base_model="meta-llama/Llama-3.1-8B",
            save_name="llama3.1-8b",
            shape=ModelShape("llama3.1-8b", 4096, 14336, 32, 32, 8, 128256, tie_word_embeddings=False),
            zero_stage=2,
            templates={"standard": "llama_config.yaml", "long": "llama_long_config.yaml"},
            upstream=_LLAMA_UPSTREAM,
        ),
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
            note="upstream ships one Qwen3 config (long-CoT, ZeRO-3); it is used for every dataset",
        ),
        ModelPreset(
            name="tiny",
            base_model="",
            save_name="tiny",
            # Built offline by train/tiny_model.py; the vocabulary is its trained byte-level BPE size.
            shape=ModelShape("tiny", 64, 176, 2, 4, 2, 1024, tie_word_embeddings=False),
            zero_stage=2,
            templates={"standard": "tiny_config.yaml", "long": "tiny_long_config.yaml"},
            upstream=_LLAMA_UPSTREAM,
            note="random-weight Llama-shaped model built offline; the llama recipe at toy scale",
        ),
    )
}
PRESET_NAMES = ", ".join(PRESETS)
PRESET_HELP = (
    "Preset: " + "; ".join(f"{p.name} ({p.base_model or 'embedded tiny model'})" for p in PRESETS.values()) + "."
)

# The 17 datasets upstream trains with the long-CoT setting (RECIPE.md), each with its declared
# conversion. The schemas were read from each dataset card's `dataset_info` features and file list,
# and from code that loads the data (the `source` of each conversion); docs/data.md has the table.
_THINK = ("<think>", "</think>")
_THOUGHT = ("<|begin_of_thought|>", "<|end_of_thought|>")  # Bespoke / OpenThoughts (Sky-T1 format)
_BOXED = "Please reason step by step, and put your final answer within \\boxed{}."

DATASETS: dict[str, CatalogDataset] = {
    d.name: d
    for d in (
        CatalogDataset(
            "OpenR1-Math-220k",
            "Huggingface",
            "open-r1/OpenR1-Math-220k",
            conversion=Conversion(
                files=("data/train-*.parquet",),
                prompt="problem",
                pick_from="generations",
                pick_all=("is_reasoning_complete",),
                pick_any=("correctness_math_verify", "correctness_llama"),
                trace=_THINK,
                why="the default config (94k problems, the card's best SFT subset); per problem the first R1 "
                "generation that is complete and verified correct, with its full <think> trace (not `solution`, "
                "the short human solution)",
                source="dataset card features (problem, generations, is_reasoning_complete, "
                "correctness_math_verify, correctness_llama, messages) and configs (default: data/train-*)",
            ),
        ),
        CatalogDataset(
            "QwQ-LongCoT-130K",
            "Guijin Son",
            "amphora/QwQ-LongCoT-130K",
            conversion=Conversion(
                files=("data/train-*.parquet",),
                prompt="problem",
                response="qwq",
                why="`qwq` is QwQ-32B-Preview's whole answer, reasoning included (no think tags); "
                "`source` and `split` are metadata",
                source="dataset card features (problem, qwq, source, split), configs (data/train-*)",
            ),
        ),
        CatalogDataset(
            "QwQ-LongCoT-130K-2",
            "Guijin Son",
            "amphora/QwQ-LongCoT-130K-2",
            conversion=Conversion(
                files=("data/train-*.parquet",),
                prompt="problem",
                response="outputs",
                why="`outputs` is QwQ's whole long answer; `keyword` is the Magpie seed, metadata",
                source="dataset card features (problem, keyword, outputs), configs (data/train-*)",
            ),
        ),
        CatalogDataset(
            "Bespoke-Stratos-17k",
            "Bespoke Labs",
            "bespokelabs/Bespoke-Stratos-17k",
            conversion=Conversion(
                files=("data/train-*.parquet",),
                prompt="conversations",
                chat=True,
                system_column="system",
                trace=_THOUGHT,
                why="the system prompt is kept: it asks for the thought/solution format every trace follows",
                source="dataset card features (system, conversations: from/value user/assistant)",
            ),
        ),
        CatalogDataset(
            "OpenThoughts-114k",
            "Stanford University",
            "open-thoughts/OpenThoughts-114k",
            conversion=Conversion(
                files=("data/train-*.parquet",),
                prompt="conversations",
                chat=True,
                system_column="system",
                trace=_THOUGHT,
                why="the default config (system + conversations, R1's trace in thought/solution tags); the "
                "`metadata` config splits the same traces into columns",
                source="dataset card features (system, conversations: from/value); configs default and metadata",
            ),
        ),
        CatalogDataset(
            "R1-Distill-SFT",
            "ServiceNow-AI",
            "ServiceNow-AI/R1-Distill-SFT",
            conversion=Conversion(
                files=("v0/train-*.parquet",),
                prompt="reannotated_messages",
                chat=True,
                trace=_THINK,
                why="`reannotated_messages` holds DeepSeek-R1's answer with its <think> trace (`messages` is the "
                "original, short solution); config v0 (172k NuminaMath problems), the subset ODA's scored "
                "release calls R1-Distill-SFT-math (v1 adds 1.5M more)",
                source="files v0/train-0000N-of-00003.parquet, v1/...; loaders reading "
                "reannotated_messages[0] (user) and [1] (assistant)",
            ),
        ),
        CatalogDataset(
            "OpenO1-SFT",
            "GAIR",
            "O1-OPEN/OpenO1-SFT",
            conversion=Conversion(
                files=("OpenO1-SFT.jsonl",),
                prompt="instruction",
                response="output",
                trace=("<Thought>", "</Thought>"),
                why="OpenO1-SFT.jsonl (77,685 records, already instruction/output with <Thought> and <Output>); "
                "OpenO1-SFT-Pro.jsonl is a separate, later release",
                source="repo files OpenO1-SFT.jsonl, OpenO1-SFT-Pro.jsonl; card: instruction, output",
            ),
        ),
        CatalogDataset(
            "DeepMath-103K",
            "Tencent & SJTU",
            "zwhe99/DeepMath-103K",
            conversion=Conversion(
                files=("data/train-*.parquet",),
                prompt="question",
                response="r1_solution_1",
                trace=_THINK,
                why="one record per problem with the first of its three R1 solutions (103K records, the dataset's "
                "size; `final_answer` alone would drop the trace)",
                source="dataset card features (question, final_answer, difficulty, topic, r1_solution_1..3)",
            ),
        ),
        CatalogDataset(
            "Raiden-DeepSeek-R1",
            "sequelbox",
            "sequelbox/Raiden-DeepSeek-R1",
            conversion=Conversion(
                files=("Raiden_DSR1_Part*.csv",),
                prompt="prompt",
                response="response",
                trace=_THINK,
                why="R1's responses are unfiltered and the card warns of endless thought loops: a trace that "
                "opens <think> and never closes it is dropped, every finished one kept",
                source="repo files Raiden_DSR1_Part1..7.csv; card (63k orca-agentinstruct prompts, R1 responses)",
            ),
        ),
        CatalogDataset(
            "Magpie-Reasoning-V2-250K-CoT-Deepseek-R1-Llama-70B",
            "Allen AI",
            "Magpie-Align/Magpie-Reasoning-V2-250K-CoT-Deepseek-R1-Llama-70B",
            conversion=Conversion(
                files=("data/train-*.parquet",),
                prompt="instruction",
                response="response",
                trace=_THINK,
                why="`response` is the R1-Distill-Llama-70B answer with its <think> trace; the quality and "
                "difficulty tags are metadata (the card filtered on them already)",
                source="Magpie dataset card (instruction, response, quality/difficulty tags); data/train-*.parquet",
            ),
        ),
        CatalogDataset(
            "Magpie-Reasoning-V2-250K-CoT-QwQ",
            "Allen AI",
            "Magpie-Align/Magpie-Reasoning-V2-250K-CoT-QwQ",
            conversion=Conversion(
                files=("data/train-*.parquet",),
                prompt="instruction",
                response="response",
                why="`response` is QwQ's whole long answer (no think tags); tags are metadata",
                source="Magpie dataset card (instruction, response, quality/difficulty tags); data/train-*.parquet",
            ),
        ),
        CatalogDataset(
            "AM-Thinking-v1-Distilled-code",
            "a-m-team",
            "a-m-team/AM-Thinking-v1-Distilled",
            hf_file="code.jsonl",
            conversion=Conversion(
                files=("code.jsonl",),
                prompt="messages",
                chat=True,
                also=("conversations",),
                system_column="system",
                trace=_THINK,
                why="the assistant turn as written: <think> trace, then <answer> (its `info` holds the same split "
                "as think_content/answer_content, plus verify_score, which the authors already filtered on)",
                source="a-m-team card format (messages: role/content/info with think_content, answer_content)",
            ),
        ),
        CatalogDataset(
            "AM-Thinking-v1-Distilled-math",
            "a-m-team",
            "a-m-team/AM-Thinking-v1-Distilled",
            hf_file="math.jsonl",
            conversion=Conversion(
                files=("math.jsonl",),
                prompt="messages",
                chat=True,
                also=("conversations",),
                system_column="system",
                trace=_THINK,
                why="as for code.jsonl: the assistant turn with its <think> trace and <answer>",
                source="a-m-team card format (messages: role/content/info with think_content, answer_content)",
            ),
        ),
        CatalogDataset(
            "Light-R1-SFTData",
            "Qiyuan Tech",
            "qihoo360/Light-R1-SFTData",
            conversion=Conversion(
                files=("stage1-76k.json",),
                prompt="conversations",
                chat=True,
                trace=_THINK,
                why="stage 1 (76k), the main SFT stage; stage2-3k.json re-selects the hardest of the same "
                "problems for a second pass and would repeat them",
                source="repo files stage1-76k.json, stage2-3k.json (ShareGPT conversations, from/value)",
            ),
        ),
        CatalogDataset(
            "Fast-Math-R1-SFT",
            "University of Tokyo",
            "RabotniKuma/Fast-Math-R1-SFT",
            conversion=Conversion(
                files=("*.parquet",),
                prompt="problem",
                response="generation",
                system=_BOXED,
                trace=_THINK,
                why="the authors' own SFT script pairs `problem` with `generation` (the shortest correct R1 trace) "
                "under this system prompt",
                source="the authors' train_first_stage.py (load_dataset(...)['train'], problem, generation)",
            ),
        ),
        CatalogDataset(
            "OpenThoughts3-1.2M",
            "Stanford University",
            "open-thoughts/OpenThoughts3-1.2M",
            conversion=Conversion(
                files=("data/train-*.parquet",),
                prompt="conversations",
                chat=True,
                trace=_THINK,
                why="conversations (human -> gpt: QwQ-32B's <think> trace and answer); `difficulty`, `source` "
                "and `domain` are metadata; there is no system prompt",
                source="dataset card features (difficulty, source, domain, conversations: from/value)",
            ),
        ),
        CatalogDataset(
            "OpenMathReasoning-cot",
            "Nvidia",
            "nvidia/OpenMathReasoning",
            hf_split="cot",
            conversion=Conversion(
                files=("data/cot-*.parquet",),
                prompt="problem",
                response="generated_solution",
                trace=_THINK,
                why="split cot (R1's <think> trace and solution per problem), every row: the split already is the "
                "long-CoT mode; `expected_answer` alone would drop the trace",
                source="dataset card (splits cot/tir/genselect/additional_problems at data/<split>-*; problem, "
                "generated_solution, inference_mode, problem_type)",
            ),
        ),
    )
}
