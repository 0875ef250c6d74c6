"""A stand-in OpenCompass environment and a finished run, for tests of `oda-sft eval` and of eval jobs.

The environment is a Python that sees a package named opencompass (version metadata, the dataset config files
named), and optionally engines (vllm, lmdeploy, transformers, torch): exactly what oda-sft's offline query and
config search read. Its `opencompass` program exits 99: these tests never run it."""

from __future__ import annotations

import json
import stat
import sys
from pathlib import Path

from oda_sft.eval.benchmarks import JUDGE_MODELS
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
    _exe(root / "bin" / "python", f'#!/bin/sh\nPYTHONPATH={site} exec {sys.executable} "$@"\n')
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
