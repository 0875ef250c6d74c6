"""ODA's evaluation as data: one record per benchmark, one per eval profile's model settings.

A profile is how one of ODA's eval scripts evaluates a family of base models (its benchmark configs and its
generation settings); a preset names its profile in its catalog record (oda_sft/presets.py `eval_profile`), and
its evaluation is that profile under the preset's name (`for_preset`), so a new preset of a known family needs
nothing here.

Read off OpenDataArena-Tool's model_eval/ (eval_script/*.sh, summary_scores/run_summary.py) and its OpenCompass
fork (OpenDataArena/opencompass at the commit OpenDataArena-Tool pins). tests/unit/test_eval_fork_record.py holds
these records to data/fork_record.json, generated from the fork's configs by scripts/fork_record.py (the abbrs
each config writes, its evaluator and judge); tests/unit/test_eval_contract.py holds docs/eval.md's tables to them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Literal

from oda_sft import presets
from oda_sft.errors import UsageError
from oda_sft.names import suggest

Domain = Literal["general", "math", "code", "reasoning"]
DOMAINS: tuple[Domain, ...] = ("general", "math", "code", "reasoning")
SUITES: tuple[str, ...] = (*DOMAINS, "all")

# The judge models the fork's xver/cver/Omni-MATH configs load (its lmdeploy_*.py model configs).
JUDGE_MODELS: dict[str, str] = {
    "xVerify-9B-C": "IAAR-Shanghai/xVerify-9B-C",
    "CompassVerifier-7B": "opencompass/CompassVerifier-7B",
    "Omni-Judge": "KbsdJames/Omni-Judge",
}


@dataclass(frozen=True)
class SummaryRule:
    """How run_summary.py reads one benchmark's value from summary_*.csv: the rows whose dataset is
    `dataset` (or starts with it, `prefix`), with `metric` (None: any); the first value, or the mean."""

    dataset: str
    metric: str | None
    prefix: bool = False
    average: bool = False


@dataclass(frozen=True)
class Benchmark:
    name: str  # oda-sft's name for it (--benchmarks)
    title: str  # as ODA's table names it
    domain: Domain
    configs: Mapping[str, str]  # eval profile -> the OpenCompass dataset config it runs; absent: not run
    evaluator: str  # the evaluator or judge; "" when the config's name says (xver: xVerify, cver: CompassVerifier)
    rule: SummaryRule
    summarised: bool = True  # in run_summary.py (the Qwen3-only math benchmarks are not)
    custom: bool = False  # oda-sft's own data, through OpenCompass's custom-dataset path

    def judge(self, profile: str) -> str:
        if self.evaluator:
            return self.evaluator
        config = self.configs[profile]
        if "_xver_" in config:
            return "xVerify-9B-C"
        if "_cver_" in config:
            return "CompassVerifier-7B"
        return ""


def _same(config: str, qwen3: str | None = "=") -> dict[str, str]:
    """ODA's llama and qwen scripts (one profile) run `config`; its qwen3 script runs `qwen3` ("=": the same
    one; None: not run)."""
    out = {"llama_qwen": config}
    if qwen3 is not None:
        out["qwen3"] = config if qwen3 == "=" else qwen3
    return out


def _q3(config: str) -> dict[str, str]:
    return {"qwen3": config}


def _rule(dataset: str, metric: str | None = "accuracy", prefix: bool = False, average: bool = False) -> SummaryRule:
    return SummaryRule(dataset, metric, prefix, average)


def _mean(prefix: str, metric: str = "accuracy") -> SummaryRule:
    """The mean of every row whose dataset name starts with prefix (a benchmark of several subsets)."""
    return SummaryRule(prefix, metric, prefix=True, average=True)


BENCHMARKS: tuple[Benchmark, ...] = (
    # ODA's README says xVerify; the fork's drop_gen_a2697c scores by rule and loads no judge. The file is the same
    # in PyPI's OpenCompass: the tiny preset runs it on the CPU too (tests/fixtures/opencompass_data).
    Benchmark(
        "drop",
        "DROP",
        "general",
        {**_same("drop_gen_a2697c"), "tiny": "drop_gen_a2697c"},
        "DropOpenAIEvaluator",
        _rule("drop"),
    ),
    # The fork's IFEval_gen_353ae7 differs from 0.5.4's only in its data path (the same file once resolved) and its
    # evaluator code not at all: the tiny preset runs it on the CPU too (needs langdetect and nltk's punkt_tab).
    Benchmark(
        "ifeval",
        "IFEval",
        "general",
        {**_same("IFEval_gen"), "tiny": "IFEval_gen"},
        "IFEvaluator",
        _rule("IFEval", None, average=True),
    ),
    Benchmark("agieval", "AGIEval", "general", _same("agieval_xver_gen"), "", _rule("agieval", "naive_average")),
    Benchmark("mmlu_pro", "MMLU-Pro", "general", _same("mmlu_pro_few_shot_xver_gen"), "", _mean("mmlu_pro")),
    # Scored through a judge server (eval/judges): the tiny preset runs the same config on the CPU against a named
    # --judge-url (tests/integration/test_eval_omni_real.py, with a stand-in judge).
    Benchmark(
        "omni_math",
        "Omni-MATH",
        "math",
        {**_same("omni_math_gen"), "tiny": "omni_math_gen"},
        "Omni-Judge",
        _rule("OmniMath", None),
    ),
    Benchmark(
        "olympiadbench_math",
        "OlympiadBench (math)",
        "math",
        _same("OlympiadBenchMath_0shot_xver_gen", "OlympiadBenchMath_0shot_cver_gen"),
        "",
        _rule("OlympiadBench_OE_TO_maths_en_COMP"),
    ),
    Benchmark("gsm8k", "GSM8K", "math", _same("gsm8k_0shot_xver_gen", "gsm8k_0shot_cver_gen"), "", _rule("gsm8k")),
    Benchmark("math", "MATH", "math", _same("math_0shot_xver_gen", None), "", _rule("math")),
    Benchmark(
        "math500",
        "MATH-500",
        "math",
        _same("math_prm800k_500_0shot_cot_xver_gen", "math_prm800k_500_0shot_cot_cver_gen"),
        "",
        _rule("math_prm800k_500"),
    ),
    # The llama/qwen scripts run the xver config; ODA's README table names the cver one (docs/eval.md).
    Benchmark(
        "aime2024",
        "AIME 2024",
        "math",
        _same("aime2024_repeat8_xver_gen", "aime2024_repeat8_cver_gen"),
        "",
        _mean("aime2024"),
    ),
    Benchmark("aime2025", "AIME 2025", "math", _q3("aime2025_repeat8_cver_gen"), "", _mean("aime2025"), False),
    # These three configs write capitalised abbrs (HMMT2025-run0 ...), unlike aime2024/aime2025.
    Benchmark("hmmt2025", "HMMT Feb 2025", "math", _q3("hmmt2025_repeat8_cver_gen"), "", _mean("HMMT2025"), False),
    Benchmark("cmimc2025", "CMIMC 2025", "math", _q3("cmimc2025_repeat8_cver_gen"), "", _mean("Cmimc2025"), False),
    Benchmark("brumo2025", "BRUMO 2025", "math", _q3("brumo2025_repeat8_cver_gen"), "", _mean("Brumo2025"), False),
    Benchmark(
        "humaneval",
        "HumanEval",
        "code",
        _same("humaneval_gen_8e312c"),
        "HumanEvalEvaluator",
        _rule("openai_humaneval", None),
    ),
    Benchmark(
        "humaneval_plus",
        "HumanEval+",
        "code",
        _same("humaneval_plus_gen_8e312c"),
        "HumanEvalPlusEvaluator",
        _rule("humaneval_plus", None),
    ),
    Benchmark(
        "mbpp",
        "MBPP (sanitized)",
        "code",
        _same("sanitized_mbpp_mdblock_gen_a447ff"),
        "MBPPEvaluator",
        _rule("sanitized_mbpp", "score"),
    ),
    Benchmark(
        "livecodebench",
        "LiveCodeBench",
        "code",
        _same("livecodebench_gen", "livecodebench_gen_qwen3"),
        "LCBCodeGenerationEvaluator",
        _rule("lcb_code_generation", None),
    ),
    Benchmark("arc_c", "ARC-c", "reasoning", _same("ARC_c_xver_gen"), "", _rule("ARC-c")),
    Benchmark("bbh", "BBH", "reasoning", _same("bbh_xver_gen"), "", _rule("bbh", "naive_average")),
    Benchmark("korbench", "KOR-Bench", "reasoning", _same("korbench_single_0_shot_xver_gen"), "", _mean("korbench")),
    Benchmark("calm", "CaLM", "reasoning", _same("calm"), "CaLMEvaluator", _mean("calm", "Accuracy")),
    Benchmark("gpqa", "GPQA", "reasoning", _same("gpqa_xver_gen"), "", _rule("GPQA_diamond")),
    # oda-sft's own: the embedded tiny model's end-to-end check on the CPU (data/oda_sft_arithmetic.jsonl).
    Benchmark(
        "arithmetic",
        "Arithmetic (oda-sft)",
        "math",
        {"tiny": "oda_sft_arithmetic"},
        "AccEvaluator",
        _rule("oda_sft_arithmetic"),
        custom=True,
    ),
)
BY_NAME: dict[str, Benchmark] = {b.name: b for b in BENCHMARKS}


@dataclass(frozen=True)
class EvalPreset:
    """The model config one of ODA's scripts writes, and the opencompass options it runs with: a profile (in
    PROFILES, named by it), or a preset's evaluation (named by the preset, whose name its settings record)."""

    name: str
    profile: str  # the key of Benchmark.configs: which dataset configs it runs
    model_class: str  # an opencompass.models class
    max_out_len: int
    batch_size: int
    generation_kwargs: Mapping[str, Any]
    num_gpus: int
    max_num_workers: int
    accelerator: str  # `-a`: "vllm", or "" for none
    pred_postprocessor: str = ""  # an opencompass.utils.text_postprocessors function, or a registered name
    model_kwargs: Mapping[str, Any] = field(default_factory=dict)
    tokenizer_kwargs: Mapping[str, Any] = field(default_factory=dict)
    judged: bool = True  # its benchmarks need judge models and vLLM
    named_only: frozenset[str] = frozenset()  # run when named or by their domain, not by `all`
    asked_only: frozenset[str] = frozenset()  # run only when named in --benchmarks

    @property
    def benchmarks(self) -> tuple[Benchmark, ...]:
        return tuple(b for b in BENCHMARKS if self.profile in b.configs)

    def config(self, bench: Benchmark) -> str:
        return bench.configs[self.profile]

    def judge(self, bench: Benchmark) -> str:
        return bench.judge(self.profile)

    def suite(self, suite: str) -> tuple[Benchmark, ...]:
        """The benchmarks of a suite: one domain's, or `all` (but the named-only ones)."""
        return tuple(
            b
            for b in self.benchmarks
            if b.name not in self.asked_only
            and (b.domain == suite or (suite == "all" and b.name not in self.named_only))
        )


def _vllm(name: str, sampling: dict[str, Any], workers: int, post: str = "") -> EvalPreset:
    """ODA's scripts: VLLMwithChatTemplate, max_out_len 32768, batch 8, one GPU (tensor_parallel_size 1)."""
    return EvalPreset(
        name,
        name,
        model_class="VLLMwithChatTemplate",
        max_out_len=32768,
        batch_size=8,
        generation_kwargs=sampling,
        num_gpus=1,
        max_num_workers=workers,
        accelerator="vllm",
        pred_postprocessor=post,
        model_kwargs={"tensor_parallel_size": 1},
    )


PROFILES: dict[str, EvalPreset] = {
    # ODA's test_llama*.sh and test_qwen*.sh: the same configs and settings.
    "llama_qwen": _vllm("llama_qwen", {"temperature": 0}, workers=8),
    "qwen3": _vllm("qwen3", {"temperature": 0.6, "top_p": 0.95, "top_k": 20}, 1, post="extract_non_reasoning_content"),
    # The embedded tiny model on the CPU: OpenCompass's HF chat class, no GPU (the local runner asserts
    # enough GPUs), greedy and short; its tokenizer returns token_type_ids, which generate() refuses.
    "tiny": EvalPreset(
        "tiny",
        "tiny",
        model_class="HuggingFacewithChatTemplate",
        max_out_len=16,
        batch_size=8,
        generation_kwargs={"do_sample": False},
        num_gpus=0,
        max_num_workers=1,
        accelerator="",
        pred_postprocessor="gsm8k",  # the answer is the last number in the reply (OpenCompass's GSM8K rule)
        tokenizer_kwargs={"model_input_names": ["input_ids", "attention_mask"]},
        judged=False,
        # OpenCompass runs --datasets or one --custom-dataset-path, not both: DROP runs on its own.
        named_only=frozenset({"drop"}),
        # Scored by a judge server the CPU cannot serve: only with --benchmarks omni_math and a --judge-url. IFEval's
        # scoring needs nltk's punkt_tab, fetched from GitHub: `--suite general` stays DROP alone (docs/eval.md).
        asked_only=frozenset({"omni_math", "ifeval"}),
    ),
}


def for_preset(preset: presets.ModelPreset) -> EvalPreset:
    """A preset's evaluation: its profile's settings under the preset's name."""
    if preset.eval_profile not in PROFILES:
        raise UsageError(f"preset {preset.name!r} names eval profile {preset.eval_profile!r}, which oda_sft/eval/"
                         f"benchmarks.py does not have: use one of {', '.join(PROFILES)}")  # fmt: skip
    return replace(PROFILES[preset.eval_profile], name=preset.name)


PRESETS: dict[str, EvalPreset] = {name: for_preset(p) for name, p in presets.PRESETS.items()}


def select(preset: EvalPreset, suite: str, names: list[str] | None) -> tuple[Benchmark, ...]:
    """The benchmarks one eval runs, in the table's order: `names` when given, else the suite's."""
    available = preset.benchmarks
    if suite not in SUITES:
        raise UsageError(f"unknown --suite {suite!r}: choose one of {', '.join(SUITES)}")
    if names:
        known = {b.name for b in available}
        for name in names:
            if name not in known:
                raise UsageError(
                    f"benchmark {name!r} is not in the {preset.name} evaluation{suggest(name, known)}: choose from "
                    f"{', '.join(sorted(known))}"
                )
        chosen = tuple(b for b in available if b.name in names)
    else:
        chosen = preset.suite(suite)
    if not chosen:
        have = sorted({b.domain for b in available})
        raise UsageError(
            f"the {preset.name} evaluation has no {suite} benchmarks: choose --suite all or one of {', '.join(have)}"
        )
    return chosen
