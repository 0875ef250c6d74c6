"""`oda-sft slurm --submit` on a real Slurm: Debian's slurm-wlm, one node, started for this module.

The test changes nothing on the machine: .ci/run installs slurm-wlm and munge (CI runs it as root on a
clean machine). tests/integration/slurm/start_slurm.sh starts a private munged, slurmctld and slurmd
whose keys, sockets, state and logs live in a temporary directory; stop_slurm.sh stops them by their
pid files. Without Slurm, or without root, the tests skip with the reason; with CI=true they fail.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from realproc import ODA_SFT, env_without_venv, free_port, system_missing, tail

HERE = Path(__file__).resolve().parent / "slurm"
TOOLS = ("slurmd", "slurmctld", "munged", "munge", "unmunge", "sbatch", "scontrol", "sinfo", "scancel")
TERMINAL = {"COMPLETED", "FAILED", "CANCELLED", "TIMEOUT", "NODE_FAIL", "PREEMPTED", "OUT_OF_MEMORY", "BOOT_FAIL"}


@pytest.fixture(scope="module")
def slurm_conf(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    missing = [tool for tool in TOOLS if shutil.which(tool) is None]
    if missing:
        system_missing(f"Slurm is not installed ({', '.join(missing)} missing): .ci/run installs slurm-wlm and munge")
    if os.geteuid() != 0:
        system_missing(f"a real Slurm needs root to start slurmd (this test runs as uid {os.geteuid()})")
    state = tmp_path_factory.mktemp("slurm")
    # Ports of our own: another test session on this machine may be running its Slurm right now.
    ports = {"SLURMCTLD_PORT": str(free_port()), "SLURMD_PORT": str(free_port())}
    started = subprocess.run(
        ["bash", str(HERE / "start_slurm.sh"), str(state)], env={**os.environ, **ports}, capture_output=True, text=True
    )
    try:
        if started.returncode != 0:
            pytest.fail(f"cannot start Slurm on this machine:\n{started.stderr}{started.stdout}")
        yield state / "slurm.conf"
    finally:
        stopped = subprocess.run(["bash", str(HERE / "stop_slurm.sh"), str(state)], capture_output=True, text=True)
        assert stopped.returncode == 0, stopped.stderr


def _env(conf: Path, tmp_path: Path, **extra: str) -> dict[str, str]:
    node_tmp = tmp_path / "node-tmp"  # the node's "local disk": HF_DATASETS_CACHE goes under it
    node_tmp.mkdir(exist_ok=True)
    settings = {"SLURM_CONF": str(conf), "TMPDIR": str(node_tmp), "ODA_SFT_GPU_COUNT": "0", "CUDA_VISIBLE_DEVICES": ""}
    return env_without_venv(**{**settings, **extra})


def _submit(conf: Path, tmp_path: Path, data_dir: Path, *train: str, **env: str) -> tuple[str, Path]:
    argv = [
        str(ODA_SFT), "slurm", "--nodes", "1", "--gpus-per-node", "0", "--time", "15", "--submit", "--",
        "train", "--model", "tiny", "--dataset", "oda_demo", "--dataset-dir", str(data_dir),
        "--output-root", str(tmp_path / "saves"), *train,
    ]  # fmt: skip
    done = subprocess.run(argv, env=_env(conf, tmp_path, **env), cwd=tmp_path, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    job = done.stdout.strip()
    assert re.fullmatch(r"\d+", job), f"sbatch --parsable printed {done.stdout!r}"
    return job, tmp_path / "saves" / "tiny" / "full" / "sft-oda_demo" / "seed-42"


def _job_state(conf: Path, job: str) -> dict[str, str]:
    out = subprocess.run(
        ["scontrol", "-o", "show", "job", job], env={**os.environ, "SLURM_CONF": str(conf)}, capture_output=True,
        text=True, check=True,
    ).stdout  # fmt: skip
    return dict(field.split("=", 1) for field in out.split() if "=" in field)


def _wait(conf: Path, job: str, timeout_s: float) -> dict[str, str]:
    deadline = time.monotonic() + timeout_s
    while True:
        state = _job_state(conf, job)
        if state["JobState"] in TERMINAL:
            return state
        if time.monotonic() > deadline:
            subprocess.run(["scancel", job], env={**os.environ, "SLURM_CONF": str(conf)}, check=False)
            pytest.fail(f"job {job} still {state['JobState']} after {timeout_s} s")
        time.sleep(1)


def test_submit_trains_on_slurm(slurm_conf: Path, tmp_path: Path, data_dir: Path) -> None:
    began = time.monotonic()
    job, run_dir = _submit(slurm_conf, tmp_path, data_dir)
    state = _wait(slurm_conf, job, 300)
    node_log = run_dir / "slurm-logs" / job / "node-0.log"
    batch_log = tmp_path / f"slurm-{job}.out"
    assert (state["JobState"], state["ExitCode"]) == ("COMPLETED", "0:0"), f"{tail(batch_log)}\n{tail(node_log)}"
    print(f"1-node Slurm job {job}: {time.monotonic() - began:.1f} s")

    host = state["NodeList"]
    assert f"oda-sft: job {job} on {host}; rank 0 at {host}:{15000 + int(job) % 15000}" in batch_log.read_text()
    log = node_log.read_text()
    assert f"oda-sft preflight: node 0 ({os.uname().nodename}): passed" in log
    assert f"can read {run_dir / 'slurm-logs' / job}" in log
    assert f"the trainer's output: {run_dir / 'logs' / 'train-1.log'}" in log
    assert "Training completed" in (run_dir / "logs" / "train-1.log").read_text()
    for name in ("all_results.json", "model.safetensors", "trainer_log.jsonl", "oda_sft_config.yaml"):
        assert (run_dir / name).is_file(), name
    # The script oda-sft submitted is kept for review beside the logs.
    assert len(list((run_dir / "slurm-logs").glob("oda-sft-tiny-oda_demo-*.sbatch"))) == 1
    # The datasets cache went to the node's local disk, not to shared storage; unless LLaMA-Factory
    # never needed it, because the data came from oda-sft's tokenized cache (one node, same content).
    run_record = json.loads((run_dir / "oda_sft_run.json").read_text())
    assert run_record["status"] == "finished"
    if not (run_record["tokenized_cache"] or {}).get("hit"):
        assert list((tmp_path / "node-tmp").glob("oda-sft-hf-datasets-*"))


def test_failed_preflight_ends_the_job_fast(slurm_conf: Path, tmp_path: Path, data_dir: Path) -> None:
    began = time.monotonic()
    # The node "sees" 2 GPUs where the job asked for 0: preflight must stop it before training.
    job, run_dir = _submit(slurm_conf, tmp_path, data_dir, ODA_SFT_GPU_COUNT="2")
    state = _wait(slurm_conf, job, 60)
    elapsed = time.monotonic() - began
    assert state["JobState"] == "FAILED" and state["ExitCode"] == "5:0", state
    log = (run_dir / "slurm-logs" / job / "node-0.log").read_text()
    assert (
        f"error: preflight failed on node 0 ({os.uname().nodename}): 2 GPU(s) visible, expected 0 (--gpus-per-node)"
        in log
    )
    assert "Process rank" not in log and not (run_dir / "oda_sft_config.yaml").exists()
    assert elapsed < 30, f"the failed job took {elapsed:.1f} s to end"
    print(f"failed preflight ended job {job} in {elapsed:.1f} s")


def test_sigterm_reaches_the_trainer(slurm_conf: Path, tmp_path: Path, data_dir: Path) -> None:
    """What --signal=B:TERM does before the time limit: the batch shell (exec'd srun) gets SIGTERM."""
    # Long enough that only the signal can end it: ~1 s per epoch here.
    job, run_dir = _submit(slurm_conf, tmp_path, data_dir, "--", "num_train_epochs=400")
    env = {**os.environ, "SLURM_CONF": str(slurm_conf)}
    deadline = time.monotonic() + 240
    while not list(run_dir.glob("checkpoint-*")):  # a checkpoint to resume from exists
        if time.monotonic() > deadline or _job_state(slurm_conf, job)["JobState"] in TERMINAL:
            subprocess.run(["scancel", job], env=env, check=False)
            pytest.fail(f"job {job} saved no checkpoint:\n{tail(run_dir / 'slurm-logs' / job / 'node-0.log')}")
        time.sleep(0.5)
    signalled = time.monotonic()
    subprocess.run(["scancel", "--batch", "--signal=TERM", job], env=env, check=True)
    state = _wait(slurm_conf, job, 60)
    elapsed = time.monotonic() - signalled
    log = (run_dir / "slurm-logs" / job / "node-0.log").read_text()
    assert state["JobState"] == "FAILED", state
    assert elapsed < 30, f"the job took {elapsed:.1f} s to stop after SIGTERM"
    assert "Training completed" not in (run_dir / "logs" / "train-1.log").read_text()
    assert not (run_dir / "all_results.json").exists(), log[-3000:]
    # Nothing of the run is left running, and what it leaves can be resumed.
    left = subprocess.run(["pgrep", "-f", str(run_dir)], capture_output=True, text=True).stdout
    assert left == "", f"processes left running: {left}"
    assert list(run_dir.glob("checkpoint-*"))
    print(f"SIGTERM ended job {job} in {elapsed:.1f} s")
