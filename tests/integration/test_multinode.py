"""A real 2-node rendezvous on one machine: two `oda-sft train` processes, called by absolute path
with the venv off PATH, train one tiny model together over gloo (world size 2)."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
import yaml

from realproc import ODA_SFT, env_without_venv, free_port, kill_tree, start, tail

TIMEOUT_S = 420


def test_two_nodes_train_one_run_together(tmp_path: Path, data_dir: Path) -> None:
    port = free_port()
    output_root = tmp_path / "shared" / "saves"  # what both nodes mount: one output_dir, one set of outputs
    procs = []
    logs = []
    began = time.monotonic()
    for rank in (0, 1):
        # Each "node" has its own local disk for the datasets cache, as the sbatch script arranges.
        env = env_without_venv(
            HF_DATASETS_CACHE=str(tmp_path / f"node{rank}-local" / "hf-datasets"),
            TOKENIZERS_PARALLELISM="false",
            ODA_SFT_GPU_COUNT="0",
            CUDA_VISIBLE_DEVICES="",
        )
        argv = [
            str(ODA_SFT), "train", "--model", "tiny", "--dataset", "oda_demo",
            "--dataset-dir", str(data_dir), "--output-root", str(output_root),
            "--nnodes", "2", "--node-rank", str(rank), "--master-addr", "127.0.0.1", "--master-port", str(port),
        ]  # fmt: skip
        logs.append(tmp_path / f"node{rank}.log")
        procs.append(start(argv, env, logs[-1], cwd=tmp_path))
    try:
        for proc in procs:
            proc.wait(max(1.0, TIMEOUT_S - (time.monotonic() - began)))
    except Exception:
        for proc in procs:
            kill_tree(proc)
        pytest.fail(f"the 2-node run did not finish in {TIMEOUT_S} s\n" + "\n".join(tail(log) for log in logs))
    elapsed = time.monotonic() - began
    assert [p.returncode for p in procs] == [0, 0], f"node 0:\n{tail(logs[0])}\nnode 1:\n{tail(logs[1])}"
    # Each node's trainer output, in a log of its own in the run dir, named on that node's terminal.
    logged = output_root / "tiny" / "full" / "sft-oda_demo" / "seed-42" / "logs"
    trainer_logs = [logged / "train-1.log", logged / "train-1.node-1.log"]
    for log, trainer_log in zip(logs, trainer_logs, strict=True):
        assert f"the trainer's output: {trainer_log}" in log.read_text(errors="replace")
    node0, node1 = (log.read_text(errors="replace") for log in trainer_logs)

    # torchrun was found although PATH has no venv: LLaMA-Factory launched it on both nodes.
    for rank, text in enumerate((node0, node1)):
        assert "FileNotFoundError" not in text
        assert f"Multi-node training enabled: num nodes: 2, node rank: {rank}" in text
        assert f"Process rank: {rank}, world size: 2" in text
    assert "Total train batch size (w. parallel, distributed & accumulation) = 32" in node0  # 4 x 4 x 2 ranks

    # One set of outputs, in one output_dir, written once.
    run_dir = output_root / "tiny" / "full" / "sft-oda_demo" / "seed-42"
    assert sorted(p.parent for p in output_root.rglob("all_results.json")) == [run_dir]
    assert sorted(p.parent for p in output_root.rglob("model.safetensors")) == [
        run_dir,
        *sorted(run_dir.glob("checkpoint-*")),
    ]
    assert len(list(run_dir.glob("checkpoint-*"))) == 1  # save_total_limit: 1
    # Nothing moved aside; beside the run, each node rank's lock.
    assert sorted(p.name for p in run_dir.parent.iterdir()) == [
        ".seed-42.oda_sft.lock",
        ".seed-42.oda_sft.node-1.lock",
        "seed-42",
    ]
    assert not list(run_dir.glob(".*.tmp"))  # no torn atomic writes left behind
    state = json.loads((run_dir / "trainer_state.json").read_text())
    assert state["epoch"] == 3.0 and state["global_step"] > 0
    # Node 0 kept the config, written atomically: one complete YAML document.
    config = yaml.safe_load((run_dir / "oda_sft_config.yaml").read_text())
    # Node 1 launched from its own copy, which here (same render on both nodes) is the same config.
    assert yaml.safe_load((run_dir / "oda_sft_config.node-1.yaml").read_text()) == config
    assert config["output_dir"] == str(run_dir) and config["dataset"] == "oda_demo"
    print(f"2-node rendezvous: {elapsed:.1f} s")
