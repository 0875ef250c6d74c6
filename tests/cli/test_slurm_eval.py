"""Eval jobs: `oda-sft slurm -- eval ...` (one node, the GPUs the eval needs) and `--eval -- train|sweep`
(one eval job per trained run, submitted with a dependency on the training job). Planned on the login node
with eval's own refusals: one line, non-zero, nothing written."""

from __future__ import annotations

import importlib
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from oda_sft.eval.benchmarks import PRESETS
from oda_sft.util.subproc import Captured

from conftest import Cli, snapshot
from ocstub import RUN, cache_judges, eval_workspace, finished_run, stub_opencompass

slurm_cli = importlib.import_module("oda_sft.cli.slurm")
ODA_SFT = str(Path(sys.executable).parent / "oda-sft")
LLAMA_CONFIGS = [PRESETS["llama"].config(b) for b in PRESETS["llama"].benchmarks]
TINY_ENGINES = ("transformers", "torch")


@pytest.fixture
def where(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    return eval_workspace(tmp_path, monkeypatch, gpus=0)  # a login node: no GPU, and the job is still written


def _sbatch(script: str) -> list[str]:
    return [line for line in script.splitlines() if line.startswith("#SBATCH")]


def _refused(cli: Cli, root: Path, *args: str, code: int = 2) -> str:
    before = snapshot(root)
    r = cli("slurm", *args)
    assert r.code == code, (r.code, r.out, r.err)
    errors = [line for line in r.err.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, r.err
    assert r.out == "" and snapshot(root) == before
    return errors[0]


def test_an_eval_job_runs_eval_on_one_node_with_one_gpu(cli: Cli, where: Path) -> None:
    finished_run(where)
    oc = stub_opencompass(where / "oc", LLAMA_CONFIGS, ("vllm", "lmdeploy"))
    cache_judges(where / "hf")
    before = snapshot(where)
    eval_args = ["-m", "llama", "-d", "d1", "--suite", "math", "--opencompass", str(oc)]
    r = cli("slurm", "--partition", "gpu", "--time", "12:00:00", "--requeue", "--", "eval", *eval_args)
    assert r.code == 0, r.err
    assert snapshot(where) == before  # printed, not written
    assert _sbatch(r.out) == [
        "#SBATCH --job-name=oda-sft-eval-llama-d1",
        "#SBATCH --nodes=1",
        "#SBATCH --ntasks-per-node=1",
        "#SBATCH --gpus-per-node=1",
        "#SBATCH --partition=gpu",
        "#SBATCH --time=12:00:00",
        "#SBATCH --requeue",
        "#SBATCH --signal=B:TERM@300",
        f"#SBATCH --chdir={where}",
        f"#SBATCH --output={where}/slurm-%j.out",
    ]
    assert f"ODA_SFT={ODA_SFT}\n" in r.out
    assert f'LOG_DIR={where / RUN}/slurm-logs/"$SLURM_JOB_ID"\n' in r.out
    assert 'exec srun --nodes=1 --ntasks=1 --kill-on-bad-exit=1 \\\n  --output="$LOG_DIR/eval.log"' in r.out
    assert r.out.rstrip("\n").endswith("oda-sft-eval \\\n  " + shlex.join(eval_args))
    assert subprocess.run(["bash", "-n"], input=r.out, text=True).returncode == 0


def test_an_eval_job_passes_its_cpus_to_srun(cli: Cli, where: Path) -> None:
    # srun no longer inherits --cpus-per-task from sbatch (Slurm 22.05+): the eval's srun line names it.
    finished_run(where)
    oc = stub_opencompass(where / "oc", LLAMA_CONFIGS, ("vllm", "lmdeploy"))
    cache_judges(where / "hf")
    r = cli("slurm", "--cpus-per-task", "16", "--", "eval", "-m", "llama", "-d", "d1", "--opencompass", str(oc))
    assert r.code == 0, r.err
    assert "#SBATCH --cpus-per-task=16" in _sbatch(r.out)
    assert (
        'exec srun --nodes=1 --ntasks=1 --kill-on-bad-exit=1 \\\n  --cpus-per-task="$SLURM_CPUS_PER_TASK" \\\n'
        '  --output="$LOG_DIR/eval.log" --open-mode=append \\\n'
    ) in r.out


def test_the_opencompass_checked_here_is_the_one_the_job_runs(
    cli: Cli, where: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    run = finished_run(where, preset="tiny")
    oc = stub_opencompass(where / "oc", [], TINY_ENGINES)
    monkeypatch.setenv("ODA_SFT_OPENCOMPASS", str(oc))
    r = cli("slurm", "--", "eval", "--run", str(run))
    assert r.code == 0, r.err
    assert "--gpus-per-node" not in r.out  # the tiny eval runs on the CPU
    assert r.out.rstrip("\n").endswith(shlex.join(["--run", str(run), "--opencompass", str(oc / "bin/opencompass")]))


@pytest.mark.parametrize(
    ("args", "message", "code"),
    [
        (["--", "eval", "-m", "llama", "-d", "nothere"], "`oda-sft train --model llama --dataset nothere", 2),
        (["--", "eval", "-m", "llama", "-d", "d1", "--opencompass", "nowhere"], "OpenCompass not found", 2),
        (["--", "eval", "-m", "llama", "-d", "d1", "--opencompass", "oc-pypi"], "exist only in ODA's fork", 2),
        (["--", "eval", "-m", "llama", "-d", "d1", "--opencompass", "oc-bare"], "has no lmdeploy, vllm", 2),
        (["--", "eval", "-m", "llama", "-d", "d1", "--benchmarks", "gsm8"], "did you mean gsm8k", 2),
        (["--", "eval", "-m", "llama", "-d", "d1", "--dry-run"], "--dry-run after `-- eval`", 2),
        (["--", "eval", "--model", "llama", "--dataset", "d1", "--bogus"], "No such option", 2),
        (["--nodes", "2", "--", "eval", "-m", "llama", "-d", "d1"], "--nodes 2: an eval runs on one node", 2),
        (["--gpus-per-node", "0", "--", "eval", "-m", "llama", "-d", "d1", "--opencompass", "oc"], "needs 1 GPU", 2),
        (["--time", "soon", "--", "eval", "-m", "llama", "-d", "d1"], "--time 'soon' is not a Slurm time", 2),
        (["--eval", "--", "eval", "-m", "llama", "-d", "d1"], "--eval evaluates after `-- train`", 2),
        (["--eval-suite", "math", "--nodes", "1", "--gpus-per-node", "0", "--", "train"], "add --eval", 2),
        (["--eval", "--nodes", "1", "--gpus-per-node", "0", "-o", "x", "--", "train"], "leave out -o", 2),
        (["--", "train", "--model", "tiny", "--dataset", "oda_demo"], "needs --nodes N and --gpus-per-node G", 2),
    ],
)
def test_bad_eval_jobs_are_one_line_and_write_nothing(
    cli: Cli, where: Path, args: list[str], message: str, code: int
) -> None:
    finished_run(where)
    stub_opencompass(where / "oc", LLAMA_CONFIGS, ("vllm", "lmdeploy"))
    stub_opencompass(where / "oc-pypi", [c for c in LLAMA_CONFIGS if "ver_" not in c], ("vllm", "lmdeploy"))
    stub_opencompass(where / "oc-bare", LLAMA_CONFIGS)
    cache_judges(where / "hf")
    assert message in _refused(cli, where, *args, code=code)


def test_an_unfinished_run_is_refused_without_a_training_job(cli: Cli, where: Path) -> None:
    finished_run(where, status="running")
    (where / RUN / "model.safetensors").unlink()
    line = _refused(cli, where, "--", "eval", "-m", "llama", "-d", "d1", code=3)
    assert "is not a finished training run (status running)" in line


def _train(data_dir: Path, where: Path, sub: str = "train") -> list[str]:
    pick = ["--dataset", "oda_demo"] if sub == "train" else ["--datasets", "oda_demo", "--seeds", "1,2"]
    return [sub, "--model", "tiny", *pick, "--dataset-dir", str(data_dir), "--output-root", str(where / "saves")]


def _eval_scripts(where: Path) -> list[Path]:
    return sorted(where.glob("saves/tiny/full/sft-oda_demo/seed-*/slurm-logs/oda-sft-eval-*.sbatch"))


def test_eval_after_training_writes_both_scripts_and_prints_the_command_that_submits_them(
    cli: Cli, where: Path, data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    oc = stub_opencompass(where / "oc", [], TINY_ENGINES)
    argv = ["--nodes", "1", "--gpus-per-node", "0", "--eval", "--eval-opencompass", str(oc), "--eval-time", "1:00:00",
            "--", *_train(data_dir, where)]  # fmt: skip
    monkeypatch.setattr(sys, "argv", ["oda-sft", "slurm", *argv])  # the command line the advice repeats
    r = cli("slurm", *argv)
    assert r.code == 0, r.err
    assert r.out == ""
    run = where / "saves/tiny/full/sft-oda_demo/seed-42"
    (train_script,) = run.glob("slurm-logs/oda-sft-tiny-oda_demo-*.sbatch")
    (eval_script,) = _eval_scripts(where)
    text = eval_script.read_text()
    assert "#SBATCH --time=1:00:00" in text and "#SBATCH --gpus-per-node" not in text
    assert text.rstrip("\n").endswith(shlex.join(["--run", str(run), "--opencompass", str(oc)]))
    assert "#SBATCH --time" not in train_script.read_text()
    for script in (train_script, eval_script):  # each names the guide this install has
        guide = script.read_text().split("`sbatch <this file>`. ", 1)[1].split(" explains", 1)[0]
        assert Path(guide).is_file(), guide
    advice = r.err.strip().splitlines()[-1]
    assert "--dependency=afterok:<training job id>" in advice
    assert advice.endswith(f"`{shlex.join(['oda-sft', 'slurm', '--submit', *argv])}`")


def test_submit_eval_after_training_chains_the_jobs(
    cli: Cli, where: Path, data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    oc = stub_opencompass(where / "oc", [], TINY_ENGINES)
    monkeypatch.setattr(slurm_cli.shutil, "which", lambda name: f"/usr/bin/{name}")
    calls: list[list[str]] = []

    def sbatch(argv: list[str]) -> Captured:
        calls.append(argv)
        return Captured(0, f"{100 + len(calls)};cluster\n", "")

    monkeypatch.setattr(slurm_cli, "run_sbatch", sbatch)
    r = cli("slurm", "--nodes", "1", "--gpus-per-node", "0", "--submit", "--eval", "--eval-opencompass", str(oc),
            "--", *_train(data_dir, where, "sweep"))  # fmt: skip
    assert r.code == 0, r.err
    assert r.out.split() == ["101", "102", "103"]  # the training job's id, then each eval job's
    scripts = _eval_scripts(where)
    assert len(scripts) == 2
    assert calls[0][:2] == ["/usr/bin/sbatch", "--parsable"] and calls[0][2].endswith(".sbatch")
    # A sweep exits 1 when one of its runs failed: its evals wait for it to end in any state.
    dep = ["/usr/bin/sbatch", "--parsable", "--dependency=afterany:101", "--kill-on-invalid-dep=yes"]
    assert calls[1:] == [[*dep, str(scripts[0])], [*dep, str(scripts[1])]]


def test_sbatch_failing_for_the_training_job_submits_no_eval(
    cli: Cli, where: Path, data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    oc = stub_opencompass(where / "oc", [], TINY_ENGINES)
    monkeypatch.setattr(slurm_cli.shutil, "which", lambda name: f"/usr/bin/{name}")
    calls: list[list[str]] = []
    monkeypatch.setattr(slurm_cli, "run_sbatch", lambda argv: calls.append(argv) or Captured(1, "", "no\n"))
    r = cli("slurm", "--nodes", "1", "--gpus-per-node", "0", "--submit", "--eval", "--eval-opencompass", str(oc),
            "--", *_train(data_dir, where))  # fmt: skip
    assert r.code != 0 and len(calls) == 1
    assert r.err.strip().splitlines()[-1].startswith("error: sbatch exited with status 1 (no)")


@pytest.mark.parametrize(
    ("eval_args", "message"),
    [
        (["--eval-opencompass", "nowhere"], "OpenCompass not found"),
        (["--eval-benchmarks", "gsm8k"], "benchmark 'gsm8k' is not in the tiny evaluation"),
        (["--eval-suite", "maths"], "unknown --suite 'maths'"),
        (["--eval-time", "soon"], "--time 'soon' is not a Slurm time"),
    ],
)
def test_eval_after_training_refuses_what_eval_would_refuse_and_writes_nothing(
    cli: Cli, where: Path, data_dir: Path, monkeypatch: pytest.MonkeyPatch, eval_args: list[str], message: str
) -> None:
    monkeypatch.setenv("ODA_SFT_OPENCOMPASS", str(stub_opencompass(where / "oc", [], TINY_ENGINES)))
    line = _refused(cli, where, "--nodes", "1", "--gpus-per-node", "0", "--eval", *eval_args, "--",
                    *_train(data_dir, where))  # fmt: skip
    assert message in line


def test_missing_benchmark_data_is_refused_on_the_login_node(
    cli: Cli, where: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    finished_run(where)
    oc = stub_opencompass(where / "oc", LLAMA_CONFIGS, ("vllm", "lmdeploy"))
    cache_judges(where / "hf")
    monkeypatch.setenv("COMPASS_DATA_CACHE", str(where / "empty"))
    line = _refused(cli, where, "--", "eval", "-m", "llama", "-d", "d1", "--suite", "code", "--opencompass", str(oc))
    assert "benchmark data not found for humaneval (opencompass/humaneval)" in line
