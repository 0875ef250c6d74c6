"""The public evidence for each catalog dataset's schema and layout, and for what ODA trained on.

Gathered without Hub access (issue 17): copies of Hugging Face pages (the commit each shows), and public code
found in a GitHub index, cited by its index id because the index does not name the repository. ODA's counts are
`size_precise` in its leaderboard data. ODA's conversion code is not public, so which column it took is inferred
from those counts. docs/data.md shows this as a table.
"""

from __future__ import annotations

from oda_sft.datasets_catalog.schema import Evidence

HF = "https://huggingface.co/datasets/"
ODA = (
    "OpenDataArena/OpenDataArena.github.io gh-pages 0437f13 (2025-07-27), data/processed_leaderboard_data.json "
    "size_precise"
)


def _names(text: str) -> tuple[str, ...]:
    return tuple(text.split())


def _shards(stem: str, n: int) -> tuple[str, ...]:
    return tuple(f"{stem}-{i:05d}-of-{n:05d}.parquet" for i in range(n))


_CHAT = ("conversations", "conversations[].from", "conversations[].value")
_AM_INFO = _names(
    "source category ground_truth test_case instruction_constrain think_content answer_content verify_score "
    "model_name ppl"
)
_AM_READ = (
    "index id 61879023308 (a copy of the dataset card: system, conversations from/value/info)",
    "index id 26849465223 (a loader reading turn['from'], turn['value'] of example['conversations'])",
)


def _am(file: str, oda_rows: int) -> Evidence:
    """AM-Thinking-v1-Distilled: one card for both files; ODA trained on each whole file as its own dataset."""
    return Evidence(
        read_from=_AM_READ,
        at="undated copy of the card",
        columns=("system", *_CHAT, "conversations[].info", *(f"conversations[].info.{k}" for k in _AM_INFO)),
        files=("code.jsonl", "math.jsonl"),
        oda_rows=oda_rows,
        oda_source=f"{ODA}, linked to blob/main/{file}: the whole file",
        note="roles `human`/`assistant`; the card says `system` is sometimes empty and 'not used in training'; "
        "per-file row counts are not in the card; other repo files are not shown",
    )


def _every_row(card: str, at: str, columns: tuple[str, ...], shards: int, rows: int) -> Evidence:
    """One card that shows the columns, data/train's shards and their row count; ODA trained on every row."""
    return Evidence(
        read_from=(card,),
        at=at,
        columns=columns,
        files=_shards("data/train", shards),
        rows={"data/train-*": rows},
        oda_rows=rows,
        oda_source=f"{ODA}: every row",
    )


EVIDENCE: dict[str, Evidence] = {
    "OpenR1-Math-220k": Evidence(
        read_from=(
            f"{HF}open-r1/OpenR1-Math-220k/blob/075afe03dbbc6e7b8bd35af1e4259957f0beb07d/README.md (card)",
            f"{HF}open-r1/OpenR1-Math-220k/tree/main/data",
            f"{HF}open-r1/OpenR1-Math-220k/viewer/all/default (default 93.7k rows)",
        ),
        at="075afe03dbbc (card); data/ listing at main",
        columns=_names(
            "problem solution answer problem_type question_type source uuid is_reasoning_complete generations "
            "correctness_math_verify correctness_llama finish_reasons correctness_count messages messages[].content "
            "messages[].role"
        ),
        files=(*_shards("data/train", 10), "extended/train-*"),
        rows={"data/train-*": 93_733, "extended/train-*": 131_396},
        oda_rows=93_733,
        oda_source=f"{ODA}, link annotated '(default)': one record per problem of the default config",
        note="which response ODA took per problem is not published; whether `messages` holds an R1 trace is not shown",
    ),
    "QwQ-LongCoT-130K": _every_row(
        f"{HF}amphora/QwQ-LongCoT-130K/blob/079ca73fab3261856d3f459203fc90b5e0d70a5f/README.md",
        at="079ca73fab32",
        columns=("problem", "qwq", "source", "split", "__index_level_0__"),
        shards=2,
        rows=133_102,
    ),
    "QwQ-LongCoT-130K-2": _every_row(
        f"{HF}amphora/QwQ-LongCoT-130K-2/blob/main/README.md (commit 595a3f5)",
        at="595a3f5",
        columns=("problem", "keyword", "outputs"),
        shards=3,
        rows=138_000,
    ),
    "Bespoke-Stratos-17k": Evidence(
        read_from=(
            f"{HF}bespokelabs/Bespoke-Stratos-17k/blob/main/README.md (no dataset_info)",
            "index id 71382638854 (downloads resolve/main/data/train-00000-of-00001.parquet, reads "
            "conversations from user/assistant)",
            "index ids 16511936664, 12002651319 (rows with system and conversations)",
        ),
        at="main (public loaders; the card has no schema)",
        columns=("system", *_CHAT),
        files=_shards("data/train", 1),
        oda_rows=16_710,
        oda_source=f"{ODA}: every row (the card gives no exact count; the HF collection shows 16.7k)",
        note="roles `user`/`assistant`",
    ),
    "OpenThoughts-114k": Evidence(
        read_from=("index id 20495352106 (a copy of the card's YAML)", f"{HF}ryanmarten/OpenThoughts-1k-sample"),
        at="undated copy of the card",
        columns=("system", *_CHAT),
        files=("data/train-*", "metadata/train-*"),
        rows={"data/train-*": 113_957, "metadata/train-*": 113_957},
        oda_rows=113_957,
        oda_source=f"{ODA}: every row; scored-data config OpenThoughts has 113,957 too",
        note="shard names under data/ are not shown; role strings are not shown",
    ),
    "R1-Distill-SFT": Evidence(
        read_from=(
            f"{HF}ServiceNow-AI/R1-Distill-SFT/blob/16e851e107d928b9069dcce428a2d3d7154e5353/README.md",
            f"{HF}ServiceNow-AI/R1-Distill-SFT/tree/18f71d5f/v0 (train-0000N-of-00003.parquet)",
            "index ids 31363763765, 19031417276, 6035503093 (v0 loaders: problem, reannotated_assistant_content)",
        ),
        at="16e851e107d9 (card), 18f71d5f (v0 listing)",
        columns=_names("id reannotated_assistant_content problem source solution verified quality_metrics"),
        files=(*_shards("v0/train", 3), "v1/train-*"),
        rows={"v0/train-*": 171_647, "v1/train-*": 1_679_162},
        oda_rows=171_647,
        oda_source=f"{ODA}: the v0 count; ODA's process_score.py maps scored subset R1-Distill-SFT-math to it",
        note="config v0 has no reannotated_messages or messages column (v1 has both)",
    ),
    "OpenO1-SFT": Evidence(
        read_from=(
            f"{HF}O1-OPEN/OpenO1-SFT/tree/63112de1 ('Delete OpenO1-SFT-Pro.jsonl')",
            "index ids 11872966814, 36448593226, 55573430080, 45856298721 (loaders: instruction, output)",
        ),
        at="e01fc6b (OpenO1-SFT.jsonl, 383,545,217 bytes); 63112de1",
        columns=("instruction", "output"),
        files=("OpenO1-SFT.jsonl",),
        oda_rows=77_685,
        oda_source=f"{ODA}: the whole OpenO1-SFT.jsonl",
        note="the card has no dataset_info; the <Thought>/<Output> tags are not shown; the Pro file moved to "
        "O1-OPEN/OpenO1-SFT-Pro",
    ),
    "DeepMath-103K": Evidence(
        read_from=(
            "index id 55927876010 (a copy of the current card)",
            f"{HF}zwhe99/DeepMath-103K/blob/0406dc9d/README.md (older: 103,110 rows)",
            "index ids 62515641070, 46242852396 (public code: one row per r1_solution_k)",
        ),
        at="current card copy (103,022 rows; 0406dc9d had 103,110)",
        columns=("question", "final_answer", "difficulty", "topic", "r1_solution_1", "r1_solution_2", "r1_solution_3"),
        files=("data/train-*",),
        rows={"data/train-*": 103_022},
        oda_rows=309_066,
        oda_source=f"{ODA} (size '103k'): 309,066 = 3 x 103,022, every R1 solution; ODA's scored subset is "
        "named DeepMath-309K",
        note="shard names are not shown; index id 56223209442 suggests solutions may close </think> without opening it",
    ),
    "Raiden-DeepSeek-R1": Evidence(
        read_from=(
            f"{HF}sequelbox/Raiden-DeepSeek-R1/tree/main (commit e81443e: Raiden_DSR1_Part1..7.csv)",
            f"{HF}sequelbox/Raiden-DeepSeek-R1/blob/main/README.md (63k prompts, unfiltered R1 responses)",
            "index ids 11448422325, 11484447769, 10956163139 (loaders that guess: prompt; response or completion)",
        ),
        at="e81443e",
        columns=(),
        files=tuple(f"Raiden_DSR1_Part{i}.csv" for i in range(1, 8)),
        unconfirmed=("prompt", "response"),
        oda_rows=62_925,
        oda_source=f"{ODA}: every row (the card says 63k)",
        note="no source shows the CSV header",
    ),
    "Magpie-Reasoning-V2-250K-CoT-Deepseek-R1-Llama-70B": Evidence(
        read_from=(
            f"{HF}Magpie-Align/Magpie-Reasoning-V2-250K-CoT-Deepseek-R1-Llama-70B/commits/main/data/"
            "train-00000-of-00009.parquet (commit e3c62a0)",
            "index ids 54535270481, 717008161, 4205121535 (loaders: instruction, response with <think>)",
            "index id 11466973761 (reads difficulty)",
        ),
        at="e3c62a0",
        columns=("instruction", "response", "difficulty"),
        files=_shards("data/train", 9),
        oda_rows=249_922,
        oda_source=f"{ODA}: every row",
        note="the card's full feature list was not found",
    ),
    "Magpie-Reasoning-V2-250K-CoT-QwQ": Evidence(
        read_from=(f"{HF}Magpie-Align/Magpie-Reasoning-V2-250K-CoT-QwQ/tree/cba01bcf/data",),
        at="cba01bcf",
        columns=(),
        files=_shards("data/train", 12),
        unconfirmed=("instruction", "response"),
        oda_rows=249_922,
        oda_source=f"{ODA}: every row (the scored -math subset, 235k, is not the training set)",
        note="the columns are assumed from the Magpie family; no loader of this repo was found",
    ),
    "AM-Thinking-v1-Distilled-code": _am("code.jsonl", 323_965),
    "AM-Thinking-v1-Distilled-math": _am("math.jsonl", 558_129),
    "Light-R1-SFTData": Evidence(
        read_from=(
            f"{HF}qihoo360/Light-R1-SFTData/tree/main (commit 2c5e467: stage1-76k.json, stage2-3k.json)",
            "index id 9238002751 (decontamination: --problem_column conversations)",
            f"{HF}sunshk/Light-R1-stage1 (a copy of stage 1: 60,721 + 15,185 rows)",
            "index id 65896426102 (stage2-3k.json has 3,533 rows)",
        ),
        at="2c5e467",
        columns=_CHAT,
        files=("stage1-76k.json", "stage2-3k.json"),
        rows={"stage1-76k.json": 75_906, "stage2-3k.json": 3_533},
        oda_rows=79_439,
        oda_source=f"{ODA}: 79,439 = 75,906 + 3,533, both files (scored subset qihoo360_Light-R1-SFTData_train)",
        note="role strings, and whether the files are JSON lists or JSON Lines, are not shown; the row counts "
        "come from third-party copies",
    ),
    "Fast-Math-R1-SFT": Evidence(
        read_from=(
            f"{HF}RabotniKuma/Fast-Math-R1-SFT/blob/main/README.md (commit 67168ba; no dataset_info)",
            "index id 12204409616 (the authors' first-stage script: problem, generation, its system prompt)",
            "index id 2116884460 (a loader: problem, generation, answer)",
        ),
        at="67168ba",
        columns=("problem", "generation", "answer"),
        files=(),
        rows={"*": 7_900},  # the train split, whatever its files
        unconfirmed_files=("*.parquet", "*.jsonl"),
        oda_rows=7_900,
        oda_source=f"{ODA}: every row",
        note="no source shows the repo's data files; the full column list is not shown",
    ),
    "OpenThoughts3-1.2M": Evidence(
        read_from=(
            "index id 61419658235 (a copy of the card)",
            f"{HF}open-thoughts/OpenThoughts3-1.2M/tree/main (commit 61bcf9d)",
            "index ids 62821891503, 22663541235 (loaders mapping human/gpt over conversations)",
        ),
        at="61bcf9d",
        columns=("difficulty", "source", "domain", *_CHAT),
        files=("data/train-*",),
        rows={"data/train-*": 1_200_000},
        oda_source="not in ODA's July-2025 leaderboard snapshot; scored subsets OpenThoughts3-1_2M-all/-code/-math",
        note="roles `human`/`gpt`; shard names and <think> in the gpt turn are not shown",
    ),
    "OpenMathReasoning-cot": Evidence(
        read_from=(
            f"{HF}nnmax/OpenMathReasoning/blob/main/README.md (a mirror of the latest card)",
            f"{HF}nvidia/OpenMathReasoning/blob/192c909b/README.md, .../blob/47d30cbe/README.md (older)",
            f"{HF}nvidia/OpenMathReasoning/tree/main (commit d3d0866)",
        ),
        at="d3d0866",
        columns=_names(
            "expected_answer problem_type problem_source generation_model pass_rate_72b_tir problem "
            "generated_solution inference_mode used_in_kaggle"
        ),
        files=("data/cot-*", "data/tir-*", "data/genselect-*", "data/additional_problems-*"),
        rows={"data/cot-*": 3_201_061, "data/tir-*": 1_718_466, "data/genselect-*": 565_620},
        oda_source="not in ODA's July-2025 leaderboard snapshot; scored subset nvidia_OpenMathReasoning_cot",
        note="used_in_kaggle is missing from older revisions; shard names are not shown",
    ),
}
