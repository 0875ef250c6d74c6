"""--help, list-datasets and train --dry-run must not import torch, transformers or llamafactory."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import Cli

HEAVY = ("torch", "transformers", "llamafactory", "datasets", "deepspeed", "tokenizers")


def _run_counting_heavy(args: list[str]) -> subprocess.CompletedProcess[str]:
    """oda-sft ARGS in a fresh interpreter, which prints on stderr the heavy packages it imported."""
    code = (
        "import sys\n"
        "from oda_sft.cli import main\n"
        f"rc = main({args!r})\n"
        f"heavy = sorted(m for m in sys.modules if m.split('.')[0] in {HEAVY!r})\n"
        "print('HEAVY', heavy, file=sys.stderr)\n"
        "sys.exit(rc)\n"
    )
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize(
    "args",
    [
        ["--help"],
        ["list-datasets"],
        ["train", "--model", "llama", "--dataset", "OpenR1-Math-220k", "--dry-run"],
        ["train", "--model", "tiny", "--dataset", "oda_demo", "--dry-run"],
        # Registered, never measured: a dry run must not load a tokenizer (or build the tiny model) to decide.
        ["train", "--model", "tiny", "--dataset", "unmeasured", "--dry-run"],
        ["train", "--model", "llama", "--dataset", "unmeasured", "--dry-run"],
        # The 2025 era measures with its own template (data/measure/token_counter.py): still nothing loaded.
        ["train", "--model", "tiny", "--dataset", "unmeasured", "--recipe", "2025", "--dry-run"],
        ["train", "--model", "llama", "--dataset", "unmeasured", "--recipe", "2025", "--dry-run"],
        ["sweep", "--model", "qwen", "--datasets", "unmeasured,oda_demo", "--seeds", "1,2", "--dry-run"],
    ],
)
def test_light_paths_import_nothing_heavy(args: list[str], data_dir: Path, oda_home: Path) -> None:
    info = json.loads((data_dir / "dataset_info.json").read_text())
    info["unmeasured"] = {"file_name": "oda_demo.json"}
    (data_dir / "dataset_info.json").write_text(json.dumps(info))
    models_before = sorted((oda_home / "models").glob("*")) if (oda_home / "models").exists() else []
    if args[0] != "--help":
        args = [*args, "--dataset-dir", str(data_dir)]
    proc = _run_counting_heavy(args)
    assert proc.returncode == 0, proc.stderr
    assert "HEAVY []" in proc.stderr
    models_after = sorted((oda_home / "models").glob("*")) if (oda_home / "models").exists() else []
    assert models_after == models_before, "a light path built the tiny model"
    if "unmeasured" in args and args[0] == "train":
        assert "not measured by a dry run" in proc.stderr


def test_estimate_and_a_sweep_total_import_nothing_heavy(cli: Cli, data_dir: Path) -> None:
    """Once a dataset's token stats are cached, `estimate` and the sweep --dry-run total are light."""
    first = cli("estimate", "--model", "tiny", "--dataset", "oda_demo", "--dataset-dir", str(data_dir), "--gpus", "1")
    assert first.code == 0, first.err  # measures once (the tokenizer is heavy), cached by sha256 + tokenizer
    for args in (
        ["estimate", "--model", "tiny", "--dataset", "oda_demo", "--dataset-dir", str(data_dir)],
        ["sweep", "--model", "tiny", "--datasets", "oda_demo", "--seeds", "1,2", "--dataset-dir", str(data_dir),
         "--dry-run"],
    ):  # fmt: skip
        proc = _run_counting_heavy(args)
        assert proc.returncode == 0, proc.stderr
        assert "HEAVY []" in proc.stderr
        assert "measuring" not in proc.stderr


# What registering the commands may import: the CLI modules and the few light modules their options
# need. Each command imports its own work when it runs, so `--help` does not pay for planning, the data
# registry, runs, the cost model or the bench (about 0.8 s on this machine before; about 0.3 s now).
HELP_MAY_IMPORT = (
    "oda_sft",
    "oda_sft.presets",
    "oda_sft.eras",  # --recipe's choices and help (plain data, no I/O)
    "oda_sft.datasets_catalog",  # `data add` names the catalog datasets in its help (plain records, no I/O)
    "oda_sft.datasets_catalog.advice",  # the `data add` a message advises (names only, no I/O)
    "oda_sft.datasets_catalog.evidence",
    "oda_sft.datasets_catalog.oda_release",  # the subsets of ODA's release each record maps to (plain data)
    "oda_sft.datasets_catalog.records",
    "oda_sft.datasets_catalog.schema",
    "oda_sft.names",
    "oda_sft.shapes",
    "oda_sft.errors",
    "oda_sft.cli",
    "oda_sft.cluster",
    "oda_sft.cluster.slurm",
    "oda_sft.data",
    "oda_sft.data.formats",
    "oda_sft.data.formats.alpaca",
    "oda_sft.train",
    "oda_sft.cards",
    "oda_sft.util.hardware",
    "oda_sft.train.request",
    "oda_sft.util",
)


def test_help_imports_only_the_command_line() -> None:
    code = (
        "import json, sys\n"
        "from oda_sft.cli import main\n"
        "main(['--help'])\n"
        "print('LOADED', json.dumps(sorted(m for m in sys.modules if m.startswith('oda_sft'))), file=sys.stderr)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    loaded = json.loads(proc.stderr.split("LOADED ", 1)[1])
    extra = [m for m in loaded if m not in HELP_MAY_IMPORT and not m.startswith(("oda_sft.cli.", "oda_sft.util."))]
    assert extra == [], f"--help imported {extra}: import them inside the command that needs them"


def test_fast_dry_run_does_not_import_torch(data_dir: Path, tmp_path: Path) -> None:
    code = (
        "import sys; from oda_sft.cli import main; "
        f"rc = main(['train', '--model', 'tiny', '--dataset', 'oda_demo', '--dataset-dir', {str(data_dir)!r}, "
        "'--profile', 'fast', '--dry-run']); "
        "heavy = [m for m in ('torch', 'transformers', 'llamafactory') if m in sys.modules]; "
        "print('HEAVY', heavy, rc)"
    )
    done = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "ODA_SFT_HOME": str(tmp_path)},
    )
    assert "HEAVY [] 0" in done.stdout, done.stdout[-2000:] + done.stderr[-2000:]
