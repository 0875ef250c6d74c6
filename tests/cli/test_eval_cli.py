"""`oda-sft eval` before anything starts: the dry run, and every refusal (one line, non-zero, nothing written).

OpenCompass here is a stand-in environment: a Python that sees a package named opencompass (version
metadata, the dataset config files named in the test), and optionally vllm/lmdeploy, exactly what oda-sft's
offline query and config search read. The real OpenCompass runs in tests/integration/test_eval_real.py."""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import time
from pathlib import Path

import pytest

from oda_sft.eval.benchmarks import PRESETS
from oda_sft.eval.opencompass import FORK_REPO

from conftest import Cli, snapshot
from ocstub import RUN, cache_judges, eval_workspace, finished_run, stub_opencompass


@pytest.fixture
def where(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    return eval_workspace(tmp_path, monkeypatch, gpus=1)


LLAMA_CONFIGS = [PRESETS["llama"].config(b) for b in PRESETS["llama"].benchmarks]


def _refused(cli: Cli, root: Path, *args: str, code: int = 2) -> str:
    before = snapshot(root)
    r = cli("eval", *args)
    assert r.code == code, (r.code, r.out, r.err)
    errors = [line for line in r.err.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, r.err
    assert snapshot(root) == before
    return errors[0]


def test_dry_run_prints_the_model_config_and_the_command_and_writes_nothing(cli: Cli, where: Path) -> None:
    finished_run(where)
    oc = stub_opencompass(where / "oc", LLAMA_CONFIGS, ("vllm", "lmdeploy"))
    before = snapshot(where)
    r = cli("eval", "-m", "llama", "-d", "d1", "--opencompass", str(oc), "--dry-run")
    assert r.code == 0, r.err
    assert snapshot(where) == before
    assert "from opencompass.models import VLLMwithChatTemplate" in r.out
    assert "'max_out_len': 32768" in r.out and "'batch_size': 8" in r.out and "'temperature': 0" in r.out
    command = next(line for line in r.out.splitlines() if line.startswith("# command: "))
    assert str(oc / "bin" / "opencompass") in command
    assert "--datasets drop_gen_a2697c IFEval_gen agieval_xver_gen" in command
    assert "--max-num-workers 8 -a vllm" in command and "--config-dir " + str(where / RUN / "eval") in command
    assert "site-packages" not in command  # never OpenCompass's own package


def test_dry_run_of_qwen3_has_its_sampling_and_post_processor(cli: Cli, where: Path) -> None:
    run = finished_run(where, preset="qwen3")
    r = cli("eval", "--run", str(run), "--opencompass", str(where / "none"), "--dry-run")
    assert r.code == 0, r.err
    assert "'top_p': 0.95" in r.out and "'top_k': 20" in r.out and "extract_non_reasoning_content" in r.out
    assert re.search(r" -r \d{8}_\d{6} ", r.out) and "warning: a real eval would stop: OpenCompass not found" in r.err


def test_an_unfinished_run_is_refused(cli: Cli, where: Path) -> None:
    finished_run(where, status="interrupted")
    (where / RUN / "model.safetensors").unlink()
    assert "is not a finished training run (status interrupted)" in _refused(
        cli, where, "-m", "llama", "-d", "d1", code=3
    )


def test_a_missing_run_names_the_train_command(cli: Cli, where: Path) -> None:
    line = _refused(cli, where, "-m", "llama", "-d", "nothere")
    assert "`oda-sft train --model llama --dataset nothere --seed 42 --output-root saves` trains it" in line


def test_a_corrupt_manifest_is_called_corrupt_not_missing(cli: Cli, where: Path) -> None:
    run = finished_run(where)
    text = (run / "oda_sft_run.json").read_text()
    (run / "oda_sft_run.json").write_text(text[: len(text) // 2])
    line = _refused(cli, where, "--run", str(run), "--opencompass", str(where / "none"), "--dry-run")
    assert f"{run / 'oda_sft_run.json'} is corrupt (not valid JSON" in line and "holds no" not in line


def test_missing_opencompass_is_one_line(cli: Cli, where: Path) -> None:
    finished_run(where)
    line = _refused(cli, where, "-m", "llama", "-d", "d1", "--opencompass", str(where / "nowhere"))
    assert "OpenCompass not found" in line and "`oda-sft setup-eval` builds it" in line


def test_pypi_opencompass_without_the_forks_configs_names_the_fork(cli: Cli, where: Path) -> None:
    finished_run(where)
    oc = stub_opencompass(where / "oc", [c for c in LLAMA_CONFIGS if "ver_" not in c], ("vllm", "lmdeploy"))
    line = _refused(cli, where, "-m", "llama", "-d", "d1", "--opencompass", str(oc))
    assert "exist only in ODA's fork" in line and FORK_REPO in line and "agieval_xver_gen" in line
    assert "`oda-sft setup-eval --fork CLONE --python python3.10 --venv DIR`" in line


def test_missing_engines_judges_and_gpus_are_each_one_line(
    cli: Cli, where: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    finished_run(where)
    args = ("-m", "llama", "-d", "d1", "--opencompass")
    bare = stub_opencompass(where / "oc1", LLAMA_CONFIGS)
    assert "has no lmdeploy, vllm" in _refused(cli, where, *args, str(bare))
    oc = stub_opencompass(where / "oc2", LLAMA_CONFIGS, ("vllm", "lmdeploy"))
    started = time.monotonic()
    line = _refused(cli, where, *args, str(oc))
    assert time.monotonic() - started < 5  # the offline query of the OpenCompass environment included
    assert "judge model" in line and "huggingface-cli download" in line
    cache_judges(where / "hf")
    monkeypatch.setenv("ODA_SFT_GPU_COUNT", "0")
    assert "runs on 1 GPU(s) and this node has 0" in _refused(cli, where, *args, str(oc))


def test_what_scoring_needs_after_inference_is_checked_before_it_starts(
    cli: Cli, where: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """IFEval's scoring, after inference, calls langdetect and loads nltk's punkt_tab: both checked first."""
    finished_run(where)
    cache_judges(where / "hf")
    oc = stub_opencompass(where / "oc", LLAMA_CONFIGS, ("vllm", "lmdeploy"))
    args = ("-m", "llama", "-d", "d1", "--benchmarks", "ifeval", "--opencompass", str(oc))
    shutil.rmtree(oc / "site" / "langdetect")
    line = _refused(cli, where, *args)
    assert "IFEval's language instructions (datasets/IFEval/instructions.py:25-28, 165) import langdetect" in line
    assert f"`{oc / 'bin' / 'python'} -m pip install langdetect==1.0.9`" in line
    (oc / "site" / "langdetect").mkdir()
    (oc / "site" / "langdetect" / "__init__.py").write_text("")
    shutil.rmtree(oc / "nltk_data" / "tokenizers")
    line = _refused(cli, where, *args)
    assert f"IFEval counts sentences with nltk's punkt_tab model, which is in none of the folders nltk looks in " \
           f"({oc / 'nltk_data'}, " in line  # fmt: skip
    assert f"`{oc / 'bin' / 'python'} -m nltk.downloader -d {oc / 'nltk_data'} punkt_tab`" in line
    # HumanEval's and HumanEval+'s evaluators import their own packages when they score
    (oc / "nltk_data" / "tokenizers" / "punkt_tab" / "english").mkdir(parents=True)
    shutil.rmtree(oc / "site" / "human_eval")
    shutil.rmtree(oc / "site" / "evalplus")
    line = _refused(cli, where, "-m", "llama", "-d", "d1", "--benchmarks", "humaneval", "--opencompass", str(oc))
    assert "HumanEval's evaluator (datasets/humaneval.py:72-78) import human_eval" in line
    assert f"`git clone https://github.com/openai/human-eval && {oc / 'bin' / 'python'} -m pip install -e " in line
    line = _refused(cli, where, "-m", "llama", "-d", "d1", "--benchmarks", "humaneval_plus", "--opencompass", str(oc))
    assert "import evalplus" in line and "model_eval/evalplus`" in line
    # other benchmarks do not need them: the next check (the GPU) speaks
    monkeypatch.setenv("ODA_SFT_GPU_COUNT", "0")
    line = _refused(cli, where, "-m", "llama", "-d", "d1", "--benchmarks", "drop", "--opencompass", str(oc))
    assert "runs on 1 GPU(s) and this node has 0" in line


def test_other_settings_are_refused_without_force(cli: Cli, where: Path) -> None:
    run = finished_run(where)
    record = json.loads((run / "oda_sft_run.json").read_text())
    record["evals"] = [{"id": "0123456789ab", "settings": {"suite": "math"}, "status": "finished"}]
    (run / "oda_sft_run.json").write_text(json.dumps(record))
    oc = stub_opencompass(where / "oc", LLAMA_CONFIGS, ("vllm", "lmdeploy"))
    cache_judges(where / "hf")
    line = _refused(cli, where, "-m", "llama", "-d", "d1", "--opencompass", str(oc), code=3)
    assert "was evaluated with other settings (0123456789ab (math, finished))" in line
    assert f"`oda-sft eval --run {where / RUN} --opencompass {oc} --force`" in line


def test_unknown_benchmark_and_empty_suite(cli: Cli, where: Path) -> None:
    finished_run(where)
    assert "benchmark 'gsm8' is not in the llama evaluation (did you mean gsm8k" in _refused(
        cli, where, "-m", "llama", "-d", "d1", "--benchmarks", "gsm8"
    )
    assert "has no code benchmarks" in _refused(cli, where, "-m", "tiny", "--base", "--suite", "code")


def test_a_base_model_outside_the_hf_cache_is_refused(cli: Cli, where: Path) -> None:
    line = _refused(cli, where, "-m", "qwen", "--base")
    assert "Qwen/Qwen2.5-7B is not in the Hugging Face cache" in line


def test_env_var_locates_opencompass(cli: Cli, where: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    finished_run(where)
    oc = stub_opencompass(where / "oc", [])
    monkeypatch.setenv("ODA_SFT_OPENCOMPASS", str(oc / "bin" / "opencompass"))
    line = _refused(cli, where, "-m", "llama", "-d", "d1")
    assert "has no dataset config" in line or "only in ODA's fork" in line
    assert os.environ["ODA_SFT_OPENCOMPASS"]


def test_missing_benchmark_data_is_one_line_and_its_fetch_command_works_as_printed(
    cli: Cli, where: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    finished_run(where)
    oc = stub_opencompass(where / "oc", LLAMA_CONFIGS, ("vllm", "lmdeploy"))
    table = oc / "site" / "opencompass" / "utils" / "datasets_info.py"
    table.parent.mkdir()
    table.write_text("DATASETS_MAPPING = {}\nDATASETS_URL = {'/drop_simple_eval/': {'url': 'http://127.0.0.1:9/x.zip', "
                     "'md5': '0'}}\n")  # fmt: skip
    cache_judges(where / "hf")
    empty = where / "empty-cache"
    monkeypatch.setenv("COMPASS_DATA_CACHE", str(empty))
    line = _refused(cli, where, "-m", "llama", "-d", "d1", "--suite", "general", "--opencompass", str(oc))
    assert "benchmark data not found for drop (data/drop_simple_eval/dev.jsonl)" in line
    assert "OpenCompass would try to download it mid-run" in line and "no download for agieval" in line
    printed = shlex.split(line.split("`")[1])
    assert printed[:3] == ["oda-sft", "eval-data", "fetch"] and "drop" in printed
    # As printed: parsed, and OpenCompass's own download tried (the stand-in has none: it says so)
    r = cli(*printed[1:])
    assert r.code == 1 and "fetching 1 item(s) into " + str(empty) in r.err, r.err
    assert "missing: drop (data/drop_simple_eval/dev.jsonl)" in r.err and "the download failed" in r.err


def test_a_folder_in_the_users_cwd_does_not_count_as_installed(where: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`python -c` puts its cwd first on sys.path: the probe runs elsewhere, so ./human_eval is not an install."""
    from oda_sft.eval import opencompass as oc_module

    oc = stub_opencompass(where / "oc", LLAMA_CONFIGS, ("vllm", "lmdeploy"))
    shutil.rmtree(oc / "site" / "human_eval")
    (where / "human_eval").mkdir()
    (where / "human_eval" / "__init__.py").write_text("")
    monkeypatch.chdir(where)
    assert "human_eval" not in oc_module.describe(oc / "bin" / "opencompass").engines
