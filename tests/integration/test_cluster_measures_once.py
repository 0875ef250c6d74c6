"""A dataset is measured once per job: `oda-sft slurm` measures an unmeasured dataset on the login
node and stores the answer; every node's preflight and train read it instead of tokenizing again."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from oda_sft.data.registry import analysis
from oda_sft.train import launcher

from conftest import Cli

NODES = 4


def test_an_n_node_slurm_job_tokenizes_an_unmeasured_dataset_once(
    cli: Cli, data_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    info = json.loads((data_dir / "dataset_info.json").read_text())
    info["fresh"] = {"file_name": "oda_demo.json"}  # registered, never measured, no mode written by hand
    (data_dir / "dataset_info.json").write_text(json.dumps(info))
    measured: list[str] = []
    real_measure = analysis.measure

    def counting_measure(dataset: Any, *args: Any, **kwargs: Any) -> Any:
        measured.append(dataset.name)
        return real_measure(dataset, *args, **kwargs)

    monkeypatch.setattr(analysis, "measure", counting_measure)
    launched: list[list[str]] = []

    def fake_trainer(argv: list[str], env: Any, *_: Any, **__: Any) -> int:  # the launcher seam (watch, output)
        launched.append(argv)
        return 0

    monkeypatch.setattr(launcher, "run", fake_trainer)
    train = ["train", "--model", "tiny", "--dataset", "fresh", "--dataset-dir", str(data_dir),
             "--output-root", str(tmp_path / "saves")]  # fmt: skip

    r = cli("slurm", "--nodes", str(NODES), "--gpus-per-node", "0", "-o", str(tmp_path / "job.sbatch"), "--", *train)
    assert r.code == 0, r.err
    assert measured == ["fresh"] and "measuring fresh with the tiny tokenizer" in r.err

    # What the script runs on every node: preflight, then train with this node's rank.
    for rank in range(NODES):
        node = ["--nnodes", str(NODES), "--node-rank", str(rank), "--master-addr", "127.0.0.1", "--nproc-per-node", "1"]
        r = cli("preflight", "--gpus-per-node", "0", "--node-rank", str(rank), "--", *train, *node)
        assert r.code == 0, r.err
        r = cli(*train, *node)
        assert r.code == 0, r.err
        assert "mode: standard (cached analysis of this file in dataset_info.json" in r.err
    assert measured == ["fresh"], "a node measured the data again"
    assert len(launched) == NODES
