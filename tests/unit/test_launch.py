"""The launch command and environment, and the one function that starts the trainer."""

from __future__ import annotations

import os
import re
import shlex
import sys
from pathlib import Path

import pytest

from oda_sft.errors import LaunchError, UsageError
from oda_sft.train import launcher as launch
from oda_sft.train.launcher import build_command
from oda_sft.train.request import LaunchOptions

CFG = Path("/runs/seed-42/oda_sft_config.yaml")
BIN = str(Path(sys.executable).parent)


def test_single_gpu_runs_llamafactory_directly() -> None:
    argv, env = build_command(CFG, LaunchOptions(), gpu_count=1, base_path="/usr/bin")
    assert argv == [launch.launcher_path(), "train", str(CFG)]
    assert Path(argv[0]).name == "llamafactory-cli"
    assert env == {"PATH": f"{BIN}{os.pathsep}/usr/bin"}


def test_deepspeed_on_one_gpu_goes_through_torchrun() -> None:
    _, env = build_command(CFG, LaunchOptions(), gpu_count=1, base_path=BIN, deepspeed=True)
    assert env == {"FORCE_TORCHRUN": "1", "NNODES": "1", "NODE_RANK": "0", "NPROC_PER_NODE": "1"}
    _, cpu = build_command(CFG, LaunchOptions(), gpu_count=0, base_path=BIN, deepspeed=True)
    assert cpu == {}  # no GPU: no DeepSpeed either (the tiny preset's CPU fallback drops it)


def test_eight_gpus_force_torchrun_with_all_of_them() -> None:
    argv, env = build_command(CFG, LaunchOptions(), gpu_count=8, base_path=BIN)
    assert argv[1:] == ["train", str(CFG)]
    assert env == {"FORCE_TORCHRUN": "1", "NNODES": "1", "NODE_RANK": "0", "NPROC_PER_NODE": "8"}


def test_second_node_of_two() -> None:
    options = LaunchOptions(nproc_per_node=8, nnodes=2, node_rank=1, master_addr="10.0.0.1", master_port=29555)
    _, env = build_command(CFG, options, gpu_count=8, base_path=BIN)
    assert env == {
        "FORCE_TORCHRUN": "1",
        "NNODES": "2",
        "NODE_RANK": "1",
        "NPROC_PER_NODE": "8",
        "MASTER_ADDR": "10.0.0.1",
        "MASTER_PORT": "29555",
    }


def test_multi_node_without_port_agrees_on_a_fixed_one() -> None:
    _, env = build_command(CFG, LaunchOptions(nnodes=2, master_addr="node0"), gpu_count=0, base_path=BIN)
    assert env["MASTER_PORT"] == "29500"
    assert env["NPROC_PER_NODE"] == "1"  # no GPU: one CPU process, never torchrun's 0


def test_torchrun_cannot_take_a_config_path_with_spaces() -> None:
    with pytest.raises(UsageError, match="whitespace"):
        build_command(Path("/my runs/cfg.yaml"), LaunchOptions(nproc_per_node=2), gpu_count=2)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (LaunchOptions(nnodes=2), "needs --master-addr"),
        (LaunchOptions(nnodes=2, node_rank=2, master_addr="a"), "--node-rank 2"),
        (LaunchOptions(nproc_per_node=0), "at least 1"),
        (LaunchOptions(nnodes=0), "at least 1"),
        (LaunchOptions(master_addr="bad host;rm"), "not a hostname"),
        (LaunchOptions(master_port=80), "between 1024 and 65535"),
    ],
)
def test_bad_launch_options(options: LaunchOptions, message: str) -> None:
    with pytest.raises(UsageError, match=message):
        options.validate()


def test_a_missing_launcher_is_a_one_line_error(tmp_path: Path) -> None:
    with pytest.raises(LaunchError, match=r"cannot start .*install LLaMA-Factory") as caught:
        launch.run([str(tmp_path / "llamafactory-cli"), "train", "x.yaml"], {})
    # Issue 16 item 18: it said `pip install -e .`, which needs a checkout; the command works from anywhere.
    (command,) = re.findall(r"`([^`]+)`", str(caught.value))
    assert shlex.split(command) == [sys.executable, "-m", "pip", "install", "llamafactory[deepspeed]==0.9.4"]
