"""The launch command and environment, and the one function that starts the trainer."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
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


def test_run_returns_the_child_exit_status(tmp_path: Path) -> None:
    assert launch.run([sys.executable, "-c", "raise SystemExit(7)"], {}) == 7
    assert launch.run([sys.executable, "-c", "print('ok')"], {"X": "1"}) == 0


CHILD = textwrap.dedent(
    """
    import os, signal, subprocess, sys, time
    from pathlib import Path
    out = Path(sys.argv[1])
    # A grandchild, like torchrun's workers: it must get the signal too.
    grand = subprocess.Popen([sys.executable, "-c",
        "import signal, sys, time\\n"
        "from pathlib import Path\\n"
        "signal.signal(signal.SIGTERM, lambda *a: (Path(sys.argv[1]).write_text('grandchild'), sys.exit(0)))\\n"
        "Path(sys.argv[1] + '.ready').write_text('1')\\n"
        "time.sleep(60)", str(out) + ".grand"])
    def bye(signum, frame):
        out.write_text(f"child got {signum}")
        grand.wait()
        sys.exit(143)
    signal.signal(signal.SIGTERM, bye)
    Path(str(out) + ".ready").write_text("1")
    time.sleep(60)
    """
)


def test_sigterm_reaches_the_whole_child_process_group(tmp_path: Path) -> None:
    """Run oda_sft.launch.run in a real process, SIGTERM it, and watch child and grandchild."""
    script = tmp_path / "child.py"
    script.write_text(CHILD)
    out = tmp_path / "got"
    runner = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys; from oda_sft.train import launcher as launch; "
            f"sys.exit(launch.run([sys.executable, {str(script)!r}, {str(out)!r}], {{}}))",
        ]
    )
    deadline = time.time() + 30
    while not (Path(f"{out}.ready").exists() and Path(f"{out}.grand.ready").exists()):
        assert time.time() < deadline, "child never started"
        time.sleep(0.05)
    runner.send_signal(signal.SIGTERM)
    assert runner.wait(timeout=30) == 143
    assert out.read_text() == f"child got {int(signal.SIGTERM)}"
    assert Path(f"{out}.grand").read_text() == "grandchild"


def test_a_missing_launcher_is_a_one_line_error(tmp_path: Path) -> None:
    with pytest.raises(LaunchError, match=r"cannot start .*install LLaMA-Factory"):
        launch.run([str(tmp_path / "llamafactory-cli"), "train", "x.yaml"], {})
