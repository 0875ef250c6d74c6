"""`oda-sft preflight`: what each node checks before torchrun, and how a failure reads."""

from __future__ import annotations

import socket
import time
from pathlib import Path

import pytest

from oda_sft.cluster.preflight import PreflightSpec, check_paths, communication_settings, run_preflight, with_deadline

from conftest import Cli

HOST = socket.gethostname()


def _train(data_dir: Path, tmp_path: Path) -> list[str]:
    return ["train", "--model", "tiny", "--dataset", "oda_demo", "--dataset-dir", str(data_dir),
            "--output-root", str(tmp_path / "saves")]  # fmt: skip


def test_passes_and_prints_what_it_checked(
    cli: Cli, tmp_path: Path, data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ODA_SFT_GPU_COUNT", "0")
    monkeypatch.setenv("NCCL_SOCKET_IFNAME", "ib0")
    monkeypatch.setenv("NCCL_DEBUG", "WARN")
    r = cli("preflight", "--gpus-per-node", "0", "--node-rank", "1", "--master-addr", "localhost", "--",
            *_train(data_dir, tmp_path))  # fmt: skip
    assert r.code == 0, r.err
    prefix = f"oda-sft preflight: node 1 ({HOST}): "
    lines = r.out.splitlines()
    assert all(line.startswith(prefix) for line in lines)
    said = [line[len(prefix) :] for line in lines]
    assert said[0] == "GPUs visible: 0 (expected 0)"
    assert said[1].startswith("MASTER_ADDR localhost resolves to ")
    assert f"can read {data_dir / 'dataset_info.json'}" in said
    assert f"can read {data_dir / 'oda_demo.json'}" in said
    assert f"can write in {tmp_path / 'saves'}" in said
    assert "env: NCCL_DEBUG=WARN" in said and "env: NCCL_SOCKET_IFNAME=ib0" in said
    assert said[-1] == "passed"


def test_every_problem_in_one_line(cli: Cli, tmp_path: Path, data_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ODA_SFT_GPU_COUNT", "1")
    (data_dir / "oda_demo.json").unlink()  # the node does not see the data
    r = cli("preflight", "--gpus-per-node", "8", "--node-rank", "2", "--master-addr", "no-such-host.invalid",
            "--path", str(tmp_path / "missing"), "--", *_train(data_dir, tmp_path))  # fmt: skip
    assert r.code == 5
    (error,) = [line for line in r.err.splitlines() if line.startswith("error:")]
    assert error.startswith(f"error: preflight failed on node 2 ({HOST}): 1 GPU(s) visible, expected 8")
    assert "MASTER_ADDR no-such-host.invalid does not resolve on this node" in error
    assert f"cannot read {tmp_path / 'missing'} (" in error
    assert f"dataset oda_demo is registered with file {data_dir / 'oda_demo.json'}, which does not exist" in error


def test_a_run_that_cannot_be_planned_is_this_nodes_problem(
    cli: Cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ODA_SFT_GPU_COUNT", "0")
    r = cli("preflight", "--gpus-per-node", "0", "--node-rank", "0", "--", "train", "--model", "tiny", "--dataset",
            "oda_demo", "--dataset-dir", str(tmp_path / "not-mounted"))  # fmt: skip
    assert r.code == 5
    assert f"preflight failed on node 0 ({HOST}): dataset dir {tmp_path / 'not-mounted'} does not exist" in r.err


def test_path_checks(tmp_path: Path) -> None:
    (tmp_path / "f").write_text("x")
    passed, problems = check_paths((tmp_path / "f", tmp_path / "nope"), (tmp_path / "new" / "out",))
    assert passed == [f"can read {tmp_path / 'f'}", f"can write in {tmp_path / 'new' / 'out'}"]
    assert problems == [
        f"cannot read {tmp_path / 'nope'} ({tmp_path / 'nope'} does not exist): it must be on storage every node mounts"
    ]
    assert not list((tmp_path / "new" / "out").iterdir())  # the write probe cleans up


def test_a_hung_check_fails_instead_of_hanging() -> None:
    began = time.monotonic()
    with pytest.raises(TimeoutError, match=r"stat /dead/nfs did not answer within 0.2 s"):
        with_deadline("stat /dead/nfs", lambda: time.sleep(30), seconds=0.2)
    assert time.monotonic() - began < 2


def test_communication_settings() -> None:
    env = {"NCCL_IB_HCA": "mlx5", "TORCH_NCCL_ASYNC_ERROR_HANDLING": "1", "HOME": "/root", "MASTER_PORT": "1"}
    assert communication_settings(env) == ["MASTER_PORT=1", "NCCL_IB_HCA=mlx5", "TORCH_NCCL_ASYNC_ERROR_HANDLING=1"]
    assert communication_settings({})[-1] == "no NCCL_* variables set: NCCL picks its defaults"


def test_report_collects_problems_given_before() -> None:
    report = run_preflight(PreflightSpec(expected_gpus=0, node="node 0 (h)", problems=("x is wrong",)), 0, {})
    assert not report.ok
    assert str(report.error()) == "preflight failed on node 0 (h): x is wrong"
