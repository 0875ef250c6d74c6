"""Adding a preset is its record plus its recipe file (issue 24): a small proxy base model, which users rank
datasets with to save GPU hours, added exactly so, is listed, trains-plans and evaluates-plans.

Each command runs in a fresh interpreter that adds the record to presets.PRESETS before anything else of
oda-sft is imported (as an edit of presets.py would) and finds train_config/ in a copy holding the recipe file
(as a new file in train_config/ would). No other registry is touched: the evaluation, the help texts, the
benchmark shapes all follow the record."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import yaml

from oda_sft.util.paths import train_config_dir

from ocstub import finished_run

RECORD = """
from oda_sft.presets import PRESETS, ModelPreset
from oda_sft.shapes import ModelShape

PRESETS["qwen05"] = ModelPreset(
    name="qwen05",
    base_model="Qwen/Qwen2.5-0.5B",
    save_name="qwen2.5-0.5b",
    shape=ModelShape("qwen2.5-0.5b", 896, 4864, 24, 14, 2, 151936, tie_word_embeddings=True, attention_bias=True),
    zero_stage=2,
    templates={"standard": "qwen05_config.yaml"},
    upstream={"standard": {"cutoff_len": 4096, "per_device_train_batch_size": 4, "gradient_accumulation_steps": 4,
                           "learning_rate": 5.0e-6, "warmup_ratio": 0.1, "seed": 42}},
    eval_profile="llama_qwen",
    note="a proxy of Qwen2.5-7B with its standard recipe, to rank datasets in fewer GPU hours",
)
"""


def _oda_sft(recipes: Path, *args: str) -> subprocess.CompletedProcess[str]:
    code = (
        "import sys\n"
        "from oda_sft.util import paths\n"
        f"paths.train_config_dir = lambda: paths.Path({str(recipes)!r})\n"
        f"{RECORD}\n"
        "from oda_sft.cli import main\n"
        f"sys.exit(main({list(args)!r}))\n"
    )
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)


def _recipes(tmp_path: Path) -> Path:
    """train_config/ with the proxy's recipe file: the Qwen2.5 standard recipe on the 0.5B model."""
    recipes = tmp_path / "train_config"
    shutil.copytree(train_config_dir(), recipes, ignore=shutil.ignore_patterns("__init__.py", "__pycache__"))
    qwen = (recipes / "qwen_config.yaml").read_text(encoding="utf-8")
    (recipes / "qwen05_config.yaml").write_text(qwen.replace("Qwen/Qwen2.5-7B", "Qwen/Qwen2.5-0.5B"), encoding="utf-8")
    return recipes


def test_a_preset_added_as_one_record_is_listed_trained_and_evaluated(data_dir: Path, tmp_path: Path) -> None:
    recipes = _recipes(tmp_path)
    for command in (["train", "--help"], ["eval", "--help"]):
        listed = _oda_sft(recipes, *command)
        assert listed.returncode == 0, listed.stderr
        assert "qwen05 (Qwen/Qwen2.5-0.5B)" in " ".join(listed.stdout.split()), command
    wrong = _oda_sft(recipes, "train", "-m", "qwen5", "-d", "oda_demo", "--dry-run")
    assert wrong.returncode == 2 and "did you mean qwen05" in wrong.stderr and "qwen3, tiny, qwen05" in wrong.stderr

    saves = tmp_path / "saves"
    train = _oda_sft(recipes, "train", "-m", "qwen05", "-d", "oda_demo", "--mode", "standard", "--dry-run",
                     "--dataset-dir", str(data_dir), "--output-root", str(saves))  # fmt: skip
    assert train.returncode == 0, train.stderr
    config = yaml.safe_load(train.stdout)
    assert config["model_name_or_path"] == "Qwen/Qwen2.5-0.5B"
    assert config["output_dir"] == str(saves / "qwen2.5-0.5b/full/sft-oda_demo/seed-42")
    assert (config["learning_rate"], config["warmup_ratio"], config["cutoff_len"]) == (5.0e-6, 0.1, 4096)
    assert config["deepspeed"] == str(recipes / "ds_z2_config.json")
    assert not saves.exists()

    run = finished_run(tmp_path, preset="qwen05")  # its manifest names the new preset
    evaluated = _oda_sft(recipes, "eval", "--run", str(run), "--opencompass", str(tmp_path / "none"), "--dry-run")
    assert evaluated.returncode == 0, evaluated.stderr
    assert "'abbr': 'qwen2.5-0.5b-sft'" in evaluated.stdout  # its own name, in ODA's llama/qwen settings
    assert "VLLMwithChatTemplate" in evaluated.stdout and "'temperature': 0" in evaluated.stdout
    assert "--datasets drop_gen_a2697c IFEval_gen agieval_xver_gen" in evaluated.stdout
    assert "--max-num-workers 8 -a vllm" in evaluated.stdout
