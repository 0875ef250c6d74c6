"""Omni-MATH scored by the real OmniMathEvaluator on the CPU (issue 23 item 3): the embedded tiny base model answers
the questions of `omni_math_gen` (PyPI OpenCompass 0.5.4's config; the fork's at a58c9cb differs only in `url` and
`max_out_len`, and both use this evaluator: docs/eval.md), and the evaluator sends every answer with LMDeploy's real
APIClient (lmdeploy 0.17.0, eval/data/opencompass-nodeps.txt) to the judge server named by --judge-url.

Stand-ins, and why:
- the judge server (tests/judgestub.py: the two endpoints of LMDeploy's api_server the evaluator and oda-sft use):
  no Omni-Judge weights or GPU here. It judges TRUE where the question says so, so the score is known beforehand.
- Omni-Judge's tokenizer code: the evaluator loads it from the Hugging Face cache (`AutoTokenizer.from_pretrained(
  'KbsdJames/Omni-Judge', trust_remote_code=True)`) for its `get_context(question, reference, candidate)`, which
  writes the judge's prompt. The real one is on the Hub, which this machine cannot reach: the stand-in keeps the
  signature and puts the three fields in the prompt.
- Omni-MATH's rows: four, in the dataset's columns (`problem`, `answer`: the config's reader_cfg), prepared where
  `datasets.load_dataset('KbsdJames/Omni-MATH')` leaves a Hub dataset (its Json builder, with the repo's id and a
  commit hash) and read back offline by the real loader, `OmniMathDataset.load`.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import judgestub
from oda_sft.eval.judges import omni

from realproc import manifest, oda_sft, opencompass_program

SHA = "0123456789abcdef0123456789abcdef01234567"
MARK = "(the stand-in judge says TRUE)"
ROWS = [
    {"problem": f"What is {a} + {b}? {MARK if judged else ''}".strip(), "answer": str(a + b), "domain": ["Arithmetic"],
     "difficulty": 1.0, "solution": f"{a} + {b} = {a + b}", "source": "oda-sft test"}
    for a, b, judged in [(2, 3, True), (7, 1, False), (4, 4, True), (6, 2, False)]
]  # fmt: skip

# What load_dataset('KbsdJames/Omni-MATH') writes into HF_DATASETS_CACHE from the Hub: the Json builder's prepared
# copy under <owner>___<snake-cased name>/default/0.0.0/<commit>.
_PREPARE = f"""
import sys
from datasets.data_files import DataFilesDict
from datasets.packaged_modules.json.json import Json, JsonConfig

class OmniMath(Json):
    BUILDER_CONFIGS = [JsonConfig(name="default", data_files=DataFilesDict.from_patterns({{"test": [sys.argv[1]]}}))]

OmniMath(dataset_name="omni-math", repo_id="KbsdJames/Omni-MATH", config_name="default",
         hash="{SHA}").download_and_prepare()
"""

_TOKENIZER_CODE = '''from transformers import PreTrainedTokenizerFast


class OmniJudgeStandIn(PreTrainedTokenizerFast):
    """Omni-Judge's get_context writes the judge's prompt from these three; this one lists them."""

    def get_context(self, question, reference_answer, student_solution):
        return f"QUESTION: {question}\\nREFERENCE: {reference_answer}\\nCANDIDATE: {student_solution}"
'''


def _cache_tokenizer(hf_home: Path) -> None:
    """The stand-in tokenizer where from_pretrained finds a Hub model offline: the Hub cache's snapshot of main."""
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    repo = hf_home / "hub" / "models--KbsdJames--Omni-Judge"
    snap = repo / "snapshots" / SHA
    snap.mkdir(parents=True)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(SHA)
    words = Tokenizer(models.WordLevel({"[UNK]": 0}, unk_token="[UNK]"))
    words.pre_tokenizer = pre_tokenizers.Whitespace()  # type: ignore[assignment]
    PreTrainedTokenizerFast(tokenizer_object=words, unk_token="[UNK]").save_pretrained(snap)
    config = json.loads((snap / "tokenizer_config.json").read_text())
    config.update(auto_map={"AutoTokenizer": [None, "tokenization_stand_in.OmniJudgeStandIn"]},
                  tokenizer_class="OmniJudgeStandIn")  # fmt: skip
    (snap / "tokenizer_config.json").write_text(json.dumps(config))
    (snap / "tokenization_stand_in.py").write_text(_TOKENIZER_CODE)
    # Omni-Judge is a Llama 3.1 8B fine-tune; eval checks a judge is cached by its config (no weights: not served)
    (snap / "config.json").write_text(json.dumps({"model_type": "llama", "architectures": ["LlamaForCausalLM"]}))


def test_omni_math_is_scored_by_the_real_evaluator_through_the_named_judge(tmp_path: Path) -> None:
    oc = opencompass_program()
    hf_home = tmp_path / "hf"
    _cache_tokenizer(hf_home)
    env = {"HF_HOME": str(hf_home), "HF_DATASETS_CACHE": str(hf_home / "datasets")}
    args = ("eval", "-m", "tiny", "--base", "--benchmarks", "omni_math", "--output-root", "saves",
            "--opencompass", str(oc))  # fmt: skip
    base = tmp_path / "saves" / "tiny" / "base"

    with judgestub.serving(omni.MODEL_ID, judge=lambda prompt: MARK in prompt) as (url, seen):
        # Without the data where the loader reads it offline: one line, before anything starts.
        refused = oda_sft(*args, "--judge-url", url, cwd=tmp_path, **env)
        assert refused.returncode == 2, refused.stderr[-3000:]
        assert "benchmark data not found for omni_math (KbsdJames/Omni-MATH)" in refused.stderr
        assert not (base / "eval").exists() and seen == []  # the data is checked before the judge is asked

        rows = tmp_path / "omni_math_test.jsonl"
        rows.write_text("".join(json.dumps(r) + "\n" for r in ROWS))
        python = oc.parent / "python"
        script = tmp_path / "prepare_omni_math.py"  # a file: datasets reads its builder's module file
        script.write_text(_PREPARE)
        prepared = subprocess.run([str(python), str(script), str(rows)], env={**env, "PATH": "/usr/bin:/bin"},
                                  capture_output=True, text=True, timeout=300)  # fmt: skip
        assert prepared.returncode == 0, prepared.stderr[-3000:]
        seen.clear()

        done = oda_sft(*args, "--judge-url", url, cwd=tmp_path, **env)
        assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]

    (record,) = manifest(base)["evals"]
    assert record["status"] == "finished", record
    assert record["omni_judge"] == {"model": omni.MODEL_ID, "urls": [url], "served_by": "user"}
    # oda-sft's probe, then one completion per answer, asked for the judge by name, each prompt written by the
    # tokenizer's get_context from the question and its reference
    assert [s["path"] for s in seen] == ["/v1/models"] + ["/v1/completions"] * len(ROWS)
    asked = [s["body"] for s in seen[1:]]
    assert {b["model"] for b in asked} == {omni.MODEL_ID}
    prompts = sorted(b["prompt"] for b in asked)
    expected = sorted(f"QUESTION: {r['problem']}\nREFERENCE: {r['answer']}\nCANDIDATE: " for r in ROWS)
    assert [p[: len(e)] for p, e in zip(prompts, expected, strict=True)] == expected
    # The evaluator's own details: each verdict read off the judge's reply, the candidate the model's answer
    (result,) = Path(record["work_dir"]).glob("*/results/tiny-base/OmniMath.json")
    scored = json.loads(result.read_text())
    details = scored["details"]  # OpenCompass keeps each field of a detail as a list of one
    details = list(details.values()) if isinstance(details, dict) else details
    verdicts = sorted((d["question"][0], d["label"][0]) for d in details)
    assert verdicts == sorted((r["problem"], MARK in r["problem"]) for r in ROWS)
    assert all(d["response"][0].startswith("## Student Final Answer") for d in details)  # the judge's reply, kept
    (prediction,) = Path(record["work_dir"]).glob("*/predictions/tiny-base/OmniMath.json")
    assert len(json.loads(prediction.read_text())) == len(ROWS)
    # Two of four judged right: 50, in the summary, the record and its math domain
    assert scored["accuracy"] == 50.0 and record["scores"] == {"omni_math": 50.0}
    assert record["domains"] == {"math": 50.0}
