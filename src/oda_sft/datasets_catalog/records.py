"""The 17 datasets ODA trains with the long-CoT setting (RECIPE.md), each with its declared conversion and the
public evidence for its schema (evidence.toml). docs/data.md has the table.

Where ODA's published row count shows what it trained on, the conversion reproduces it: every row of every
dataset whose count is known (ranking comparability is the point), so a trace cut off before its closing tag is
counted, not dropped, and DeepMath yields one record per R1 solution.
"""

from __future__ import annotations

from typing import Any

from oda_sft.datasets_catalog.evidence import EVIDENCE
from oda_sft.datasets_catalog.oda_release import BY_CATALOG
from oda_sft.datasets_catalog.schema import CatalogDataset, Conversion

_THINK = ("<think>", "</think>")
_THOUGHT = ("<|begin_of_thought|>", "<|end_of_thought|>")  # Bespoke / OpenThoughts (Sky-T1 format)
_BOXED = "Please reason step by step, and put your final answer within \\boxed{}."
_TRAIN = ("data/train-*.parquet",)  # the shard glob most of these repos publish


def _dataset(name: str, affiliation: str, hf_id: str, conversion: Conversion, **kw: Any) -> CatalogDataset:
    oda = BY_CATALOG.get(name)
    kw["oda_subset"] = oda.name if oda else ""
    return CatalogDataset(name, affiliation, hf_id, conversion=conversion, evidence=EVIDENCE[name], **kw)


def _chat(why: str, trace: tuple[str, str] = _THINK, files: tuple[str, ...] = _TRAIN, **kw: Any) -> Conversion:
    """Chat data: turns in `conversations`, the trace and the answer in the last assistant turn."""
    return Conversion(files=files, prompt="conversations", chat=True, trace=trace, why=why, **kw)


def _pair(
    prompt: str, response: str, why: str, trace: tuple[str, str] | None = _THINK, files: tuple[str, ...] = _TRAIN
) -> Conversion:
    """A prompt column and a response column that holds the trace (when `trace` tags it) and the answer."""
    return Conversion(files=files, prompt=prompt, response=response, trace=trace, why=why)


_AM_WHY = (
    "the whole file, as ODA: the assistant turn as written (<think> trace, then <answer>); `system` is left out, "
    "as the card says it is not used in training (and is sometimes empty)"
)


def _am(part: str) -> CatalogDataset:
    """AM-Thinking-v1-Distilled: ODA trained on each of its files as a dataset of its own."""
    file = f"{part}.jsonl"
    conversion = _chat(_AM_WHY, files=(file,))
    return _dataset(
        f"AM-Thinking-v1-Distilled-{part}", "a-m-team", "a-m-team/AM-Thinking-v1-Distilled", conversion, hf_file=file
    )


DATASETS: dict[str, CatalogDataset] = {
    d.name: d
    for d in (
        _dataset(
            "OpenR1-Math-220k",
            "Huggingface",
            "open-r1/OpenR1-Math-220k",
            Conversion(
                files=_TRAIN,
                prompt="problem",
                pick_from="generations",
                pick_any=("correctness_math_verify", "correctness_llama"),
                prefer_all=("is_reasoning_complete",),
                trace=_THINK,
                why="the default config, one record per problem as ODA (93,733): the first R1 generation verified "
                "correct, preferring a complete one (the card: every problem has a correct one); not `solution`, "
                "the short human solution",
            ),
        ),
        _dataset(
            "QwQ-LongCoT-130K",
            "Guijin Son",
            "amphora/QwQ-LongCoT-130K",
            _pair(
                "problem",
                "qwq",
                trace=None,
                why="every row, as ODA (133,102): `qwq` is QwQ-32B-Preview's whole answer, reasoning included (no "
                "think tags); `source` and `split` are metadata",
            ),
        ),
        _dataset(
            "QwQ-LongCoT-130K-2",
            "Guijin Son",
            "amphora/QwQ-LongCoT-130K-2",
            _pair(
                "problem",
                "outputs",
                trace=None,
                why="every row, as ODA (138,000): `outputs` is QwQ's whole long answer; `keyword` is the Magpie "
                "seed, metadata",
            ),
        ),
        _dataset(
            "Bespoke-Stratos-17k",
            "Bespoke Labs",
            "bespokelabs/Bespoke-Stratos-17k",
            _chat(
                system_column="system",
                trace=_THOUGHT,
                why="every row, as ODA (16,710); the system prompt is kept: it asks for the thought/solution "
                "format every trace follows",
            ),
        ),
        _dataset(
            "OpenThoughts-114k",
            "Stanford University",
            "open-thoughts/OpenThoughts-114k",
            _chat(
                system_column="system",
                trace=_THOUGHT,
                why="the default config, every row as ODA (113,957): system + conversations, R1's trace in "
                "thought/solution tags; the `metadata` config splits the same traces into columns",
            ),
        ),
        _dataset(
            "R1-Distill-SFT",
            "ServiceNow-AI",
            "ServiceNow-AI/R1-Distill-SFT",
            _pair(
                "problem",
                "reannotated_assistant_content",
                files=("v0/train-*.parquet",),
                why="config v0, every row as ODA (171,647; its scored subset R1-Distill-SFT-math): `problem` and "
                "R1's answer with its <think> trace (`solution` is the original short one); v0 has no message "
                "lists, v1 adds 1.5M more rows",
            ),
        ),
        _dataset(
            "OpenO1-SFT",
            "GAIR",
            "O1-OPEN/OpenO1-SFT",
            _pair(
                "instruction",
                "output",
                files=("OpenO1-SFT.jsonl",),
                trace=("<Thought>", "</Thought>"),
                why="OpenO1-SFT.jsonl, every record as ODA (77,685), already instruction/output; "
                "OpenO1-SFT-Pro is a separate, later release",
            ),
        ),
        _dataset(
            "DeepMath-103K",
            "Tencent & SJTU",
            "zwhe99/DeepMath-103K",
            Conversion(
                files=_TRAIN,
                prompt="question",
                responses=("r1_solution_1", "r1_solution_2", "r1_solution_3"),
                trace=_THINK,
                why="one record per R1 solution, as ODA: 3 x 103,022 = 309,066 (ODA's DeepMath-309K); "
                "`final_answer` alone would drop the trace",
            ),
        ),
        _dataset(
            "Raiden-DeepSeek-R1",
            "sequelbox",
            "sequelbox/Raiden-DeepSeek-R1",
            _pair(
                "prompt",
                "response",
                files=("Raiden_DSR1_Part*.csv",),
                why="every row, as ODA (62,925): the card warns of endless thought loops in R1's unfiltered "
                "responses; a trace that opens <think> and never closes it is counted, not dropped",
            ),
        ),
        _dataset(
            "Magpie-Reasoning-V2-250K-CoT-Deepseek-R1-Llama-70B",
            "Allen AI",
            "Magpie-Align/Magpie-Reasoning-V2-250K-CoT-Deepseek-R1-Llama-70B",
            _pair(
                "instruction",
                "response",
                why="every row, as ODA (249,922): `response` is the R1-Distill-Llama-70B answer with its <think> "
                "trace; `difficulty` and the other tags are metadata",
            ),
        ),
        _dataset(
            "Magpie-Reasoning-V2-250K-CoT-QwQ",
            "Allen AI",
            "Magpie-Align/Magpie-Reasoning-V2-250K-CoT-QwQ",
            _pair(
                "instruction",
                "response",
                trace=None,
                why="every row, as ODA (249,922): `response` is QwQ's whole long answer (no think tags); the "
                "columns are assumed from the Magpie family",
            ),
        ),
        _am("code"),
        _am("math"),
        _dataset(
            "Light-R1-SFTData",
            "Qiyuan Tech",
            "qihoo360/Light-R1-SFTData",
            _chat(
                files=("stage1-76k.json", "stage2-3k.json"),
                why="both files, as ODA: 75,906 + 3,533 = 79,439; stage 2 re-selects the hardest of stage 1's "
                "problems, so about 3.5k problems appear twice, as they did in ODA's training",
            ),
        ),
        _dataset(
            "Fast-Math-R1-SFT",
            "University of Tokyo",
            "RabotniKuma/Fast-Math-R1-SFT",
            Conversion(
                files=("*.parquet", "*.jsonl"),
                prompt="problem",
                response="generation",
                system=_BOXED,
                trace=_THINK,
                why="every row, as ODA (7,900): the authors' own SFT script pairs `problem` with `generation` (the "
                "shortest correct R1 trace) under this system prompt",
            ),
        ),
        _dataset(
            "OpenThoughts3-1.2M",
            "Stanford University",
            "open-thoughts/OpenThoughts3-1.2M",
            _chat(
                why="every row: conversations (human -> gpt: QwQ-32B's trace and answer); `difficulty`, `source` "
                "and `domain` are metadata; there is no system prompt",
            ),
        ),
        _dataset(
            "OpenMathReasoning-cot",
            "Nvidia",
            "nvidia/OpenMathReasoning",
            _pair(
                "problem",
                "generated_solution",
                files=("data/cot-*.parquet",),
                why="split cot, every row (R1's <think> trace and solution per problem): the split already is the "
                "long-CoT mode; `expected_answer` alone would drop the trace",
            ),
            hf_split="cot",
        ),
    )
}
