"""ODA's normalised release on the Hub, OpenDataArena/OpenDataArena-scored-data: the rows ODA trained on, one
folder per dataset (`<subset>/train-*.parquet`, columns instruction, output, Q_scores, QA_scores).

`oda-sft data add oda:<subset>` registers a subset as `oda-<subset>`; `oda-sft data add <catalog name> --from oda`
takes the subset ODA published for one of the 17. docs/data.md has the table and how each mapping was found.

The list below is what public sources show, not the Hub's current listing: the keys of ODA's site data
`data/processed_score_data.json` (OpenDataArena/OpenDataArena.github.io, branch gh-pages, commit 0437f13, 2025-07-27),
with the two keys the site renames (its data/process_score.py) given under their Hub folder names, and its
`missing_data` key left out (not a dataset). A subset missing here is still fetched if the Hub lists its folder.
"""

from __future__ import annotations

from dataclasses import dataclass

REPO = "OpenDataArena/OpenDataArena-scored-data"
LISTED_FROM = (
    "keys of data/processed_score_data.json, OpenDataArena/OpenDataArena.github.io gh-pages 0437f13 (2025-07-27)"
)
COLUMNS = ("instruction", "output")
SCORE_COLUMNS = ("Q_scores", "QA_scores")  # structs of per-row scores (Clarity, IFD, Deita_Quality, ...)
PREFIX = "oda:"  # `oda-sft data add oda:<subset>`
NAME_PREFIX = "oda-"  # ... registers it as oda-<subset>: never a catalog name, visibly ODA's release


@dataclass(frozen=True)
class OdaSubset:
    name: str  # the folder (and config) in REPO
    rows: int | None = None  # its row count, where a public source shows it
    catalog: str = ""  # the catalog dataset (one of the 17 long-CoT) whose training set this is
    evidence: str = ""  # where the name, the mapping and the count were read
    note: str = ""  # how it differs from what ODA trained, where it may

    @property
    def files(self) -> str:
        return f"{self.name}/train-*.parquet"

    @property
    def registered_as(self) -> str:
        return NAME_PREFIX + self.name


def _commit(sha: str) -> str:
    return f"{REPO} README diff context of commit {sha}"


_MAPPED = (
    OdaSubset("AM-Thinking-v1-Distilled-code", 323_965, "AM-Thinking-v1-Distilled-code", _commit("7474eb77")),
    OdaSubset("AM-Thinking-v1-Distilled-math", None, "AM-Thinking-v1-Distilled-math", "config name in commit 7474eb77"),
    OdaSubset(
        "DeepMath-309K",
        None,
        "DeepMath-103K",
        "11 shards in commit 77ad5a06; named DeepMath-103K in the 2603 release",
        "ODA's leaderboard count 309,066 = 3 x 103,022: one row per R1 solution",
    ),
    OdaSubset("OpenR1-Math", 93_733, "OpenR1-Math-220k", _commit("f79d9549")),
    OdaSubset("OpenThoughts", 113_957, "OpenThoughts-114k", _commit("8f9d679d")),
    OdaSubset(
        "OpenThoughts3-1_2M-all",
        None,
        "OpenThoughts3-1.2M",
        "config in commit 8f9d679d; -code and -math are its parts",
        "ODA's training count is not in the July 2025 leaderboard",
    ),
    OdaSubset(
        "R1-Distill-SFT-math",
        None,
        "R1-Distill-SFT",
        "the site's data/process_score.py maps it onto the leaderboard name R1-Distill-SFT",
        "rows unverified: the leaderboard trained 171,647 (config v0)",
    ),
    OdaSubset(
        "Magpie-Reasoning-V2-250K-CoT-QwQ-math",
        None,
        "Magpie-Reasoning-V2-250K-CoT-QwQ",
        "the site's data/process_score.py maps it onto the leaderboard name",
        "a math part (235k in ODA's July 2025 per-dataset repo): the leaderboard trained 249,922",
    ),
    OdaSubset("qihoo360_Light-R1-SFTData_train", None, "Light-R1-SFTData", "site key; the train split of both files"),
    OdaSubset("RabotniKuma_Fast-Math-R1-SFT_train", None, "Fast-Math-R1-SFT", "site key; one parquet conversion file"),
    OdaSubset("nvidia_OpenMathReasoning_cot", None, "OpenMathReasoning-cot", "site key; the cot split"),
)

# The rest of the site's keys: no row count shown.
_LISTED = (
    "Code-Feedback EpiCoder-func-380k Evol-Instruct-Code-80k-v1 InstructCoder KodCode-V1 "
    "Magicoder-OSS-Instruct-75K-shuffle Magpie-Reasoning-V1-150K-code Magpie-Reasoning-V1-150K-math "
    "Maths-College OpenCoder-LLM__opc-sft-stage1 OpenCoder-LLM__opc-sft-stage2 OpenThoughts3-1_2M-code "
    "OpenThoughts3-1_2M-math Python-Code-23k-ShareGPT QwQ-LongCoT ScaleQuest-Math Self-oss-Instruct "
    "allenai__tulu-3-sft-personas-code alpaca_gpt4 code290k_sharegpt code_alpaca_20k-shuffle "
    "code_instructions_122k code_instructions_18k frontedcookbook gretel-text-to-python-fintech-en-v1 "
    "herculesv1 hkust-nlp__dart-math-hard ise-uiuc__Magicoder-Evol-Instruct-110K "
    "m-a-p__CodeFeedback-Filtered-Instruction magpiepro_10k_gptmini magpiev1_150k mathfusionqa_all "
    "mathgpt4o200k mathplus numinamath-cot numinamath1_5 openmathinstruct-2 orca-agentinstruct-shuffle "
    "theblackcat102__evol-codealpaca-v1 tulu-3-sft-mixture webinstructcft"
)

_OTHERS = (
    ("OpenHermes-shuffle", 615_376),
    ("orca-math-word-problems-200k", 200_035),
    ("QwQ-LongCoT-130K-math", 90_065),
    *((n, None) for n in _LISTED.split()),
)

_ROWS = f"{REPO} README diff context of its Upload dataset commits (an inference)"
_NOTES = {
    # A site key: which QwQ-LongCoT dataset it holds (130K or 130K-2) and its Hub folder name are unverified.
    "QwQ-LongCoT": "site key; which QwQ-LongCoT dataset, and its Hub folder name, unverified",
    "QwQ-LongCoT-130K-math": "a math part of QwQ-LongCoT-130K, not the 133,102 rows ODA trained",
}

SUBSETS: dict[str, OdaSubset] = {
    s.name: s
    for s in (
        *_MAPPED,
        *(OdaSubset(n, rows, evidence=_ROWS if rows else LISTED_FROM, note=_NOTES.get(n, "")) for n, rows in _OTHERS),
    )
}

BY_CATALOG: dict[str, OdaSubset] = {s.catalog: s for s in SUBSETS.values() if s.catalog}


def subset_of(registered: str) -> str | None:
    """The subset a name registered from `oda:<subset>` came from (`oda-X` -> X), else None."""
    return registered[len(NAME_PREFIX) :] if registered.startswith(NAME_PREFIX) else None
