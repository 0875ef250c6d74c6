"""The sbatch script `oda-sft slurm` renders: every variable and flag, and the inputs it refuses."""

from __future__ import annotations

import importlib
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from oda_sft.cluster.slurm import JobSpec, SlurmOptions, render_script
from oda_sft.presets import PRESETS
from oda_sft.runs.space import GIB

import sbatch_lines
from conftest import Cli, snapshot

# The package binds the name `slurm` to the command function, so reach the module itself.
slurm_cli = importlib.import_module("oda_sft.cli.slurm")
ODA_SFT = str(Path(sys.executable).parent / "oda-sft")
TRAIN = ["train", "--model", "tiny", "--dataset", "oda_demo"]


def _sbatch(script: str) -> list[str]:
    return [line for line in script.splitlines() if line.startswith("#SBATCH")]


def _render(cli: Cli, tmp_path: Path, data_dir: Path, *slurm_args: str, train: list[str] | None = None) -> str:
    where = ["--dataset-dir", str(data_dir), "--output-root", str(tmp_path / "saves")]
    train = train or TRAIN
    r = cli("slurm", *slurm_args, "--", *train[:5], *where, *train[5:])
    assert r.code == 0, r.err
    return r.out


def test_one_node_cpu(cli: Cli, tmp_path: Path, data_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    out = _render(cli, tmp_path, data_dir, "--nodes", "1", "--gpus-per-node", "0")
    assert out.startswith("#!/bin/bash\n")
    assert _sbatch(out) == [
        "#SBATCH --job-name=oda-sft-tiny-oda_demo",
        "#SBATCH --nodes=1",
        "#SBATCH --ntasks-per-node=1",
        "#SBATCH --signal=B:TERM@300",
        f"#SBATCH --chdir={tmp_path}",
        f"#SBATCH --output={tmp_path}/slurm-%j.out",
    ]
    run_dir = tmp_path / "saves/tiny/full/sft-oda_demo/seed-42"
    assert f"ODA_SFT={ODA_SFT}\n" in out
    assert "NNODES=1\n" in out and "GPUS_PER_NODE=0\n" in out
    assert 'MASTER_ADDR=$(scontrol show hostnames "$SLURM_JOB_NODELIST" | head -n 1)\n' in out
    assert "MASTER_PORT=$(( 15000 + SLURM_JOB_ID % 15000 ))\n" in out
    assert f'LOG_DIR={run_dir}/slurm-logs/"$SLURM_JOB_ID"\n' in out
    assert "export TOKENIZERS_PARALLELISM=false\n" in out
    assert 'export HF_DATASETS_CACHE="${TMPDIR:-/tmp}/oda-sft-hf-datasets-$(id -u)"' in out
    assert "--cpus-per-task" not in out  # not asked for: the cluster's default applies
    # CPU only: one process per node, no GPU request.
    assert '--master-port "$MASTER_PORT" --nproc-per-node 1 "$@"' in out
    assert "--gpus-per-node=" not in out
    # The user's arguments, quoted, after the node script.
    assert out.rstrip("\n").endswith(
        "oda-sft-node \\\n  "
        + shlex.join([*TRAIN[1:], "--dataset-dir", str(data_dir), "--output-root", str(tmp_path / "saves")])
    )


def test_four_nodes_every_flag(cli: Cli, tmp_path: Path, data_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    out = _render(
        cli,
        tmp_path,
        data_dir,
        *("--nodes", "4", "--gpus-per-node", "8", "--partition", "gpu", "--time", "2-00:00:00"),
        *("--account", "oda", "--qos", "high", "--constraint", "a100&hbm80g", "--exclusive"),
        *("--job-name", "sweep-a", "--cpus-per-task", "96", "--mem", "0", "--requeue", "--term-before", "600"),
        *("--sbatch-option", "--reservation=big run", "--sbatch-option", "--mail-type=END"),
        train=[*TRAIN, "--seed", "7", "--", "logging_steps=5"],
    )
    assert _sbatch(out) == [
        "#SBATCH --job-name=sweep-a",
        "#SBATCH --nodes=4",
        "#SBATCH --ntasks-per-node=1",
        "#SBATCH --gpus-per-node=8",
        "#SBATCH --cpus-per-task=96",
        "#SBATCH --mem=0",
        "#SBATCH --partition=gpu",
        "#SBATCH --time=2-00:00:00",
        "#SBATCH --account=oda",
        "#SBATCH --qos=high",
        "#SBATCH --constraint='a100&hbm80g'",
        "#SBATCH --exclusive",
        "#SBATCH --requeue",
        "#SBATCH --signal=B:TERM@600",
        f"#SBATCH --chdir={tmp_path}",
        f"#SBATCH --output={tmp_path}/slurm-%j.out",
        "#SBATCH --reservation='big run'",
        "#SBATCH --mail-type=END",
    ]
    assert "NNODES=4\n" in out and "GPUS_PER_NODE=8\n" in out
    assert f'LOG_DIR={tmp_path}/saves/tiny/full/sft-oda_demo/seed-7/slurm-logs/"$SLURM_JOB_ID"\n' in out
    srun = out[out.index("exec srun") : out.index("bash -c")]
    for flag in (
        '--nodes="$NNODES"',
        "--ntasks-per-node=1",
        "--kill-on-bad-exit=1",
        '--cpus-per-task="$SLURM_CPUS_PER_TASK"',
        '--output="$LOG_DIR/node-%n.log"',
        "--open-mode=append",
    ):
        assert flag in srun
    node = out[out.index("bash -c '") : out.index("' oda-sft-node")]
    assert (
        '"$ODA_SFT" preflight --gpus-per-node "$GPUS_PER_NODE" --node-rank "$SLURM_NODEID" \\\n'
        '        --master-addr "$MASTER_ADDR" --path "$LOG_DIR" -- train "$@" || exit $?'
    ) in node
    assert (
        'exec "$ODA_SFT" train --nnodes "$NNODES" --node-rank "$SLURM_NODEID" \\\n'
        '        --master-addr "$MASTER_ADDR" --master-port "$MASTER_PORT" --nproc-per-node "$GPUS_PER_NODE" "$@"'
    ) in node
    assert out.rstrip("\n").endswith(f"--output-root {tmp_path}/saves --seed 7 -- logging_steps=5")


def test_script_is_valid_bash(cli: Cli, tmp_path: Path, data_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    out = _render(
        cli, tmp_path, data_dir, "--nodes", "2", "--gpus-per-node", "8", train=[*TRAIN, "--", "run_name=a b'c"]
    )
    script = tmp_path / "job.sh"
    script.write_text(out)
    subprocess.run(["bash", "-n", str(script)], check=True)
    # The quoted override reaches the node script as one argument, unchanged.
    assert out.rstrip("\n").endswith("-- 'run_name=a b'\"'\"'c'")


def test_user_values_are_quoted() -> None:
    spec = JobSpec(
        options=SlurmOptions(nodes=1, gpus_per_node=1, partition="a b", account="$(rm -rf /)"),
        oda_sft=Path("/opt/venv with space/bin/oda-sft"),
        subcommand="sweep",
        args=("--output-root", "/data/my runs", "--name", "$HOME;ls"),
        workdir=Path("/w d"),
        log_root=Path("/data/my runs/slurm-logs"),
        job_name="oda-sft-sweep",
    )
    out = render_script(spec)
    assert "#SBATCH --partition='a b'" in out
    assert "#SBATCH --account='$(rm -rf /)'" in out
    assert "ODA_SFT='/opt/venv with space/bin/oda-sft'" in out
    assert "LOG_DIR='/data/my runs/slurm-logs'/\"$SLURM_JOB_ID\"" in out
    assert "--output-root '/data/my runs' --name '$HOME;ls'" in out
    assert '-- sweep "$@"' in out and 'exec "$ODA_SFT" sweep --nnodes' in out


def _spec(args: tuple[str, ...] = (), command: tuple[str, ...] = (), **options: Any) -> JobSpec:
    return JobSpec(
        options=SlurmOptions(nodes=2, gpus_per_node=8, **options),
        oda_sft=Path("/opt/venv/bin/oda-sft"),
        subcommand="train",
        args=args,
        workdir=Path("/w"),
        log_root=Path("/data/runs/slurm-logs"),
        job_name="oda-sft-train",
        command=command,
    )


def test_no_value_leaves_its_line() -> None:
    """A newline (or a CR, a form feed, Unicode's line separators) in any argument is written as bash's
    $'...' escapes: the script has the same lines as with harmless values, each one printable."""
    breaks = "a\nb\rc\x0bd\x0ce\x85f\u2028g\u2029h"
    plain = render_script(_spec(("--output-root", "/x"), ("slurm", "--", "train", "--output-root", "/x")))
    hostile = render_script(_spec(("--output-root", breaks), ("slurm", "--", "train", "--output-root", breaks)))
    assert len(hostile.split("\n")) == len(plain.split("\n"))
    assert all(line.isprintable() for line in hostile.split("\n"))
    quoted = "$'a\\x0ab\\x0dc\\x0bd\\x0ce\\xc2\\x85f\\xe2\\x80\\xa8g\\xe2\\x80\\xa9h'"
    assert f"# Generated by: oda-sft slurm -- train --output-root {quoted}\n" in hostile
    assert hostile.rstrip("\n").endswith(f"oda-sft-node \\\n  --output-root {quoted}")


def test_sbatch_reads_each_value_as_given() -> None:
    """#SBATCH values are quoted as sbatch parses them (a backslash escapes even inside single quotes)."""
    values: dict[str, Any] = {"partition": "a b", "account": "a\\b'c\"d #e $(f)", "qos": "`q`;x"}
    values["constraint"] = "a100&hbm80g"
    comment = 'it\'s \\ "here" # not a comment'
    out = render_script(_spec(**values, extra=(f"--comment={comment}", "--mail-type=END")))
    read = sbatch_lines.options(out)
    assert {k: read[f"--{k}"] for k in values} == values
    assert read["--comment"] == comment and read["--mail-type"] == "END" and read["--chdir"] == "/w"
    assert sbatch_lines.header_lines(out) == [line for line in out.splitlines() if line.startswith("#SBATCH")]


@pytest.mark.parametrize(
    ("cwd", "train", "message"),
    [
        ("w\ntouch x", TRAIN, "the current directory '"),
        ("w%j", TRAIN, "the current directory '"),
        ("w", [*TRAIN, "--output-root", "saves%n"], "the job's log dir '"),
        ("w", [*TRAIN, "--output-root", "sa\\ves"], "choose another --output-root"),
    ],
)
def test_what_slurm_cannot_carry_is_refused(
    cli: Cli, tmp_path: Path, data_dir: Path, monkeypatch: pytest.MonkeyPatch, cwd: str, train: list[str], message: str
) -> None:
    (tmp_path / cwd).mkdir()
    monkeypatch.chdir(tmp_path / cwd)
    before = snapshot(tmp_path)
    r = cli("slurm", "--nodes", "2", "--gpus-per-node", "8", "-o", "job.sh", "--", *train, "--dataset-dir",
            str(data_dir))  # fmt: skip
    assert r.code == 2 and r.out == "", r.err
    errors = [line for line in r.err.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and message in errors[0] and "which Slurm's file names cannot carry" in errors[0]
    assert snapshot(tmp_path) == before


@pytest.mark.parametrize(
    ("slurm_args", "train", "message"),
    [
        (["--nodes", "0", "--gpus-per-node", "8"], TRAIN, "error: --nodes 0 must be at least 1"),
        (["--nodes", "2", "--gpus-per-node", "-1"], TRAIN, "--gpus-per-node -1 must be 0"),
        (["--nodes", "2", "--gpus-per-node", "8", "--time", "soon"], TRAIN, "--time 'soon' is not a Slurm time"),
        (["--nodes", "2", "--gpus-per-node", "8", "--mem", "lots"], TRAIN, "--mem 'lots' is not a Slurm size"),
        (["--nodes", "2", "--gpus-per-node", "8", "--job-name", "a b"], TRAIN, "--job-name 'a b'"),
        (["--nodes", "2", "--gpus-per-node", "8", "--partition", "a\nb"], TRAIN, "must be one printable line"),
        (["--nodes", "2", "--gpus-per-node", "8", "--sbatch-option", "--nodes=3"], TRAIN, "is set by oda-sft"),
        (["--nodes", "2", "--gpus-per-node", "8", "--sbatch-option", "--a'b=1"], TRAIN, "one long sbatch option"),
        (["--nodes", "2", "--gpus-per-node", "8", "--sbatch-option", "--x=a\rb"], TRAIN, "one printable line"),
        (["--nodes", "2", "--gpus-per-node", "8"], ["fly", "--model", "tiny"], "unknown subcommand 'fly'"),
        (["--nodes", "2", "--gpus-per-node", "8"], [], "needs the command to run after `--`"),
        (["--nodes", "2", "--gpus-per-node", "8"], [*TRAIN, "--node-rank", "1"], "--node-rank is set by the script"),
        (["--nodes", "2", "--gpus-per-node", "8"], [*TRAIN, "--master-port=1234"], "--master-port is set by"),
        (["--nodes", "2", "--gpus-per-node", "8"], [*TRAIN, "--force"], "--force after `--`"),
        (["--nodes", "2", "--gpus-per-node", "8"], [*TRAIN, "--dry-run"], "--dry-run after `--`"),
        (["--nodes", "2", "--gpus-per-node", "8"], [*TRAIN, "--sed", "1"], "No such option"),
        (
            ["--nodes", "2", "--gpus-per-node", "8"],
            ["train", "--model", "tiny", "--dataset", "nope"],
            "unknown dataset",
        ),
    ],
)
def test_bad_input_is_one_line_and_writes_nothing(
    cli: Cli,
    tmp_path: Path,
    data_dir: Path,
    monkeypatch: pytest.MonkeyPatch,
    slurm_args: list[str],
    train: list[str],
    message: str,
) -> None:
    monkeypatch.chdir(tmp_path)
    before = snapshot(tmp_path)
    tail = [*train[:5], "--dataset-dir", str(data_dir), *train[5:]] if train else []
    r = cli("slurm", *slurm_args, "-o", str(tmp_path / "job.sh"), "--submit", "--", *tail)
    assert r.code == 2, (r.out, r.err)
    errors = [line for line in r.err.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and message in errors[0], r.err
    assert r.out == ""
    assert snapshot(tmp_path) == before


def test_output_file(cli: Cli, tmp_path: Path, data_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    target = tmp_path / "jobs" / "tiny.sbatch"
    printed = _render(cli, tmp_path, data_dir, "--nodes", "2", "--gpus-per-node", "0")
    r = cli(
        "slurm", "--nodes", "2", "--gpus-per-node", "0", "-o", str(target), "--",
        *TRAIN, "--dataset-dir", str(data_dir), "--output-root", str(tmp_path / "saves"),
    )  # fmt: skip
    assert r.code == 0, r.err
    assert r.out == ""
    assert target.read_text() == printed
    assert f"script written to {target}" in r.err


def test_submit_calls_sbatch_at_the_seam(
    cli: Cli, tmp_path: Path, data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The argv handed to the one subprocess seam; the real sbatch runs in test_slurm_cluster.py."""
    monkeypatch.chdir(tmp_path)
    calls: list[list[str]] = []

    def fake_run(argv: list[str]) -> int:
        calls.append(argv)
        return 0

    monkeypatch.setattr(slurm_cli.shutil, "which", lambda name: f"/usr/bin/{name}")
    monkeypatch.setattr(slurm_cli.subproc, "run_inherited", fake_run)
    target = tmp_path / "job.sbatch"
    r = cli(
        "slurm", "--nodes", "2", "--gpus-per-node", "0", "-o", str(target), "--submit", "--",
        *TRAIN, "--dataset-dir", str(data_dir), "--output-root", str(tmp_path / "saves"),
    )  # fmt: skip
    assert r.code == 0, r.err
    assert calls == [["/usr/bin/sbatch", "--parsable", str(target)]]
    assert target.is_file()


def test_submit_without_sbatch(cli: Cli, tmp_path: Path, data_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    before = snapshot(tmp_path)
    r = cli("slurm", "--nodes", "1", "--gpus-per-node", "0", "--submit", "--", *TRAIN, "--dataset-dir", str(data_dir))
    assert r.code == 2
    assert r.err.strip().splitlines()[-1].startswith("error: sbatch is not on PATH")
    assert snapshot(tmp_path) == before


def test_two_submissions_in_one_second_write_two_scripts(
    cli: Cli, tmp_path: Path, data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(slurm_cli.shutil, "which", lambda name: f"/usr/bin/{name}")
    submitted: list[str] = []
    monkeypatch.setattr(slurm_cli.subproc, "run_inherited", lambda argv: submitted.append(argv[-1]) or 0)
    args = ["slurm", "--nodes", "1", "--gpus-per-node", "0", "--submit", "--", *TRAIN, "--dataset-dir", str(data_dir),
            "--output-root", str(tmp_path / "saves")]  # fmt: skip
    for _ in range(3):
        r = cli(*args)
        assert r.code == 0, r.err
    assert len(set(submitted)) == 3 and all(Path(p).is_file() for p in submitted)


@pytest.mark.parametrize(
    ("tail", "message"),
    [
        (["--dataset", "DeepMath-103K"], "is not registered"),
        (["--dataset", "oda_demo", "--", "learning_rate=nan"], "is not a finite number"),
        (["--dataset", "oda_demo", "--", "resume_from_checkpoint=/x"], "resume_from_checkpoint= is not allowed"),
    ],
)
def test_slurm_refuses_what_train_would_refuse_and_writes_nothing(
    cli: Cli, tmp_path: Path, data_dir: Path, monkeypatch: pytest.MonkeyPatch, tail: list[str], message: str
) -> None:
    monkeypatch.chdir(tmp_path)
    before = snapshot(tmp_path)
    where = ["--dataset-dir", str(data_dir), "--output-root", str(tmp_path / "saves")]
    *options, sep, override = tail if "--" in tail else [*tail, "", ""]
    train = ["train", "--model", "llama", *options, *where, *([sep, override] if sep else [])]
    r = cli("slurm", "--nodes", "2", "--gpus-per-node", "8", "-o", str(tmp_path / "job.sbatch"), "--", *train)
    assert r.code == 2 and message in r.err.strip().splitlines()[-1], r.err
    assert snapshot(tmp_path) == before


def test_a_job_that_cannot_resume_says_so(
    cli: Cli, tmp_path: Path, data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without --resumable a stopped run cannot resume: one line says so with --resumable's disk cost, and
    the script's comment does not promise a resume; with --resumable (as the line advises) both change."""
    monkeypatch.chdir(tmp_path)
    where = ["--dataset-dir", str(data_dir), "--output-root", str(tmp_path / "saves")]
    argv = ["slurm", "--nodes", "2", "--gpus-per-node", "8", "--", "train", "--model", "llama", "--dataset", "oda_demo"]
    r = cli(*argv, *where)
    assert r.code == 0, r.err
    notes = [line for line in r.err.splitlines() if "not --resumable" in line]
    assert len(notes) == 1
    assert "add --resumable after `-- train`: full checkpoints every 500 steps, newest 2 kept" in notes[0]
    # runs/space.py's reckoning for llama's 8.03B parameters in bf16: the final weights (2 bytes a parameter)
    # and, while the newest is written, 3 full checkpoints (2 + 12 bytes) or 2 weights-only ones (2 bytes).
    params = PRESETS["llama"].shape.params
    assert params == 8_030_261_248
    assert f"about {params * (2 + 3 * 14) / GIB:.0f} GiB of disk per run at peak" in notes[0]
    assert f"for llama (8.03B parameters) instead of {params * (2 + 2 * 2) / GIB:.0f} GiB" in notes[0]
    assert "running the job again starts it over, or after its first epoch is refused" in r.out
    assert "resumes from its last checkpoint" not in r.out and "can resume" not in r.out

    resumable = cli(*argv, *where, "--resumable")
    assert resumable.code == 0, resumable.err
    assert "not --resumable" not in resumable.err + resumable.out
    assert "the run resumes from its last checkpoint when the job runs again" in resumable.out
    assert resumable.out.rstrip("\n").endswith("--resumable")
