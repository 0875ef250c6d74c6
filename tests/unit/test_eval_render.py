"""The eval's pure parts: the model config file (data written with repr, nothing typed becomes code), the
summary rules of ODA's run_summary.py, and the default chat template."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from oda_sft.errors import ConfigError
from oda_sft.eval import render, summary
from oda_sft.eval.benchmarks import BY_NAME, PRESETS
from oda_sft.eval.template import default_template


def _models(text: str) -> list[dict[str, object]]:
    tree = ast.parse(text)
    assign = next(n for n in tree.body if isinstance(n, ast.Assign) and n.targets[0].id == "models")  # type: ignore[attr-defined]
    names = {n.id for n in ast.walk(assign.value) if isinstance(n, ast.Name)}
    assert names <= set(render.SYMBOLS)  # the only names: imported OpenCompass classes and functions
    return ast.literal_eval(ast.unparse(assign.value).replace("VLLMwithChatTemplate", "'V'").replace(
        "HuggingFacewithChatTemplate", "'H'").replace("extract_non_reasoning_content", "'E'"))  # fmt: skip


@pytest.mark.parametrize("hostile", ["/x/y'z", '/a"b\\c', "/n\nimport os; os.system('x')#", "/{}%s"])
def test_paths_stay_data_in_the_model_config(hostile: str) -> None:
    text = render.model_config_text(render.model_entry(PRESETS["llama"], "abbr", Path(hostile)), "id")
    (model,) = _models(text)
    assert model["path"] == hostile
    assert "import os" not in text.split("models =")[0]


def test_qwen3_config_imports_its_post_processor() -> None:
    text = render.model_config_text(render.model_entry(PRESETS["qwen3"], "a", Path("/m")), "id")
    assert "from opencompass.utils.text_postprocessors import extract_non_reasoning_content" in text
    assert _models(text)[0]["pred_postprocessor"] == {"type": "E"}


def test_only_known_names_become_code() -> None:
    with pytest.raises(ConfigError):
        render.Symbol("os.system")
    with pytest.raises(ConfigError):
        render.model_config_text({"type": render.Symbol("VLLMwithChatTemplate"), "x": object()}, "id")


def test_settings_id_follows_the_settings() -> None:
    chosen = PRESETS["llama"].benchmarks
    a = render.settings_of(PRESETS["llama"], "all", chosen, "t1")
    assert render.settings_id(a) == render.settings_id(dict(reversed(list(a.items()))))
    assert render.settings_id(a) != render.settings_id(render.settings_of(PRESETS["llama"], "all", chosen, "t2"))
    assert len(render.settings_id(a)) == 12


ROWS = [
    {"dataset": "drop", "metric": "accuracy", "m": "61.5"},
    {"dataset": "IFEval", "metric": "Prompt-level-strict-accuracy", "m": "40"},
    {"dataset": "IFEval", "metric": "Inst-level-loose-accuracy", "m": "50"},
    {"dataset": "mmlu_pro_math", "metric": "accuracy", "m": "30"},
    {"dataset": "mmlu_pro_law", "metric": "accuracy", "m": "20"},
    {"dataset": "mmlu_pro_law", "metric": "other", "m": "99"},
    {"dataset": "agieval", "metric": "naive_average", "m": "44"},
    {"dataset": "gsm8k", "metric": "accuracy", "m": "-"},
    {"dataset": "calm-ce", "metric": "Accuracy", "m": "10"},
    {"dataset": "calm-ci", "metric": "Accuracy", "m": "30"},
]


def test_run_summary_rules() -> None:
    chosen = tuple(BY_NAME[n] for n in ("drop", "ifeval", "mmlu_pro", "agieval", "gsm8k", "calm"))
    values = summary.scores(ROWS, "m", chosen)
    assert values == {"drop": 61.5, "ifeval": 45.0, "mmlu_pro": 25.0, "agieval": 44.0, "calm": 20.0}  # gsm8k: '-'
    result = summary.summarise(values, [b.name for b in chosen])
    assert result.domains == {"general": pytest.approx((61.5 + 45 + 25 + 44) / 4), "reasoning": 20.0}
    # math's only benchmark has no score: no math value, so no overall over fewer domains
    assert (result.missing, result.partial, result.overall) == ({"math": ["gsm8k"]}, {}, None)
    values.pop("gsm8k", None)
    values["gsm8k"] = 10.0
    assert summary.summarise(values, [b.name for b in chosen]).overall == pytest.approx(
        ((61.5 + 45 + 25 + 44) / 4 + 10 + 20) / 3
    )


def test_a_domain_missing_a_benchmark_is_recorded_partial_not_averaged() -> None:
    chosen = tuple(BY_NAME[n] for n in ("drop", "ifeval", "gsm8k"))
    fields = summary.record_fields({"drop": 60.0, "gsm8k": 10.0}, chosen)
    assert fields == {"domains": {"math": 10.0}, "overall": None, "partial_domains": {"general": 60.0}}
    assert summary.record_fields({}, chosen) == {"domains": {}, "overall": None}


def test_qwen3_only_benchmarks_are_scored_but_not_averaged() -> None:
    chosen = (BY_NAME["aime2024"], BY_NAME["aime2025"])
    rows = [{"dataset": "aime2024-run0", "metric": "accuracy", "m": "10"},
            {"dataset": "aime2025-run0", "metric": "accuracy", "m": "30"}]  # fmt: skip
    values = summary.scores(rows, "m", chosen)
    assert values == {"aime2024": 10.0, "aime2025": 30.0}
    assert summary.summarise(values, [b.name for b in chosen]).domains == {"math": 10.0}


def test_default_template_refuses_an_eos_that_would_break_it() -> None:
    assert "'Human: ' + content + '</s>'" in default_template("</s>")
    for bad in ("", "a'b", "x\\", "{{"):
        with pytest.raises(ConfigError):
            default_template(bad)
