"""Many evals at once (issue 23, item 8): `eval --datasets a,b --seeds 1,2` and `eval --all` in one process, the
OpenCompass environment checked once, each eval recorded as it ends, a stop leaving the finished ones recorded,
a table at the end; `oda-sft slurm -- eval --all` makes one job per run.

OpenCompass here is a stand-in program that scores (ocstub.SCORING_PROGRAM); the real one evaluates two runs with
--all, stopped and resumed, in tests/integration/test_eval_real.py."""

from __future__ import annotations

import importlib
import json
import shlex
from pathlib import Path
from typing import Any

import pytest

from oda_sft.util.subproc import Captured

from conftest import Cli, snapshot
from ocstub import finished_run, scoring_opencompass

opencompass = importlib.import_module("oda_sft.eval.opencompass")
slurm_cli = importlib.import_module("oda_sft.cli.slurm")


@pytest.fixture
def where(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("ODA_SFT_OPENCOMPASS", raising=False)
    monkeypatch.setenv("STUB_ARGV", str(tmp_path / "argv.jsonl"))
    monkeypatch.setenv("STUB_SCORE", "40.0")
    monkeypatch.setenv("ODA_SFT_GPU_COUNT", "0")
    return tmp_path


def _run(where: Path, dataset: str, seed: int = 1, status: str = "finished") -> Path:
    return finished_run(where, status=status, preset="tiny", rel=f"saves/tiny/full/sft-{dataset}/seed-{seed}")


def _evals(run: Path) -> list[dict[str, Any]]:
    return json.loads((run / "oda_sft_run.json").read_text()).get("evals", [])  # type: ignore[no-any-return]


def _table(out: str) -> dict[str, list[str]]:
    """The table's rows by run: [outcome, overall, rest]."""
    lines = out.strip().splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("RUN "))
    return {line.split()[0]: line.split(None, 3)[1:] for line in lines[start + 1 :]}


def _count_probes(monkeypatch: pytest.MonkeyPatch) -> list[Path]:
    probes: list[Path] = []
    real = opencompass.describe

    def counted(program: Path) -> Any:
        probes.append(program)
        return real(program)

    monkeypatch.setattr(opencompass, "describe", counted)
    return probes


def test_datasets_and_seeds_evaluate_each_run_in_one_process(
    cli: Cli, where: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    runs = [_run(where, d, s) for d in ("d1", "d2") for s in (1, 2)]
    program = scoring_opencompass(where / "oc")
    probes = _count_probes(monkeypatch)
    r = cli("eval", "-m", "tiny", "--datasets", "d1,d2,d3", "--seeds", "1,2", "--opencompass", str(program))
    assert r.code == 1, r.err  # d3 was never trained
    assert len(probes) == 1  # the OpenCompass environment, queried once for all of them
    for run in runs:
        (rec,) = _evals(run)
        assert rec["status"] == "finished" and rec["scores"] == {"arithmetic": 40.0}
    table = _table(r.out)
    assert [table[f"saves/tiny/full/sft-{d}/seed-{s}"][:2] for d in ("d1", "d2") for s in (1, 2)] == [
        ["finished", "40.00"]
    ] * 4
    assert table["saves/tiny/full/sft-d3/seed-1"][0] == "error"
    assert "`oda-sft train --model tiny --dataset d3 --seed 2 --output-root saves` trains it" in r.out
    assert "2 of 6 evals did not finish" in r.err

    again = cli("eval", "-m", "tiny", "--datasets", "d1,d2", "--seeds", "1,2", "--opencompass", str(program))
    assert again.code == 0, again.err
    assert {row[0] for row in _table(again.out).values()} == {"skipped"}


def test_a_stop_leaves_the_finished_ones_recorded_and_starts_no_other(
    cli: Cli, where: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    runs = [_run(where, d) for d in ("d1", "d2", "d3")]
    program = scoring_opencompass(where / "oc")
    monkeypatch.setenv("STUB_EXIT", "sft-d2=130")  # OpenCompass ends as after Ctrl-C, while evaluating d2
    args = ["eval", "-m", "tiny", "--datasets", "d1,d2,d3", "--seeds", "1", "--opencompass", str(program)]
    r = cli(*args)
    assert r.code == 130, r.err
    assert [[rec["status"] for rec in _evals(run)] for run in runs] == [["finished"], ["interrupted"], []]
    table = _table(r.out)
    assert [table[f"saves/tiny/full/sft-{d}/seed-1"][0] for d in ("d1", "d2", "d3")] == [
        "finished",
        "interrupted",
        "not",
    ]
    assert "not started" in r.out
    monkeypatch.delenv("STUB_EXIT")
    resumed = cli(*args)  # the same command goes on
    assert resumed.code == 0, resumed.err
    assert [row[0] for row in _table(resumed.out).values()] == ["skipped", "finished", "finished"]
    assert "resuming the eval" in resumed.err


def test_all_evaluates_every_finished_run_not_yet_evaluated(cli: Cli, where: Path) -> None:
    done, todo = _run(where, "d1"), _run(where, "d2")
    _run(where, "d3", status="interrupted")
    aside = _run(where, "d2", seed=7)
    aside.rename(aside.with_name("seed-7.replaced-20250101T000000Z"))
    program = scoring_opencompass(where / "oc")
    assert cli("eval", "--run", str(done), "--opencompass", str(program)).code == 0
    base = where / "saves/tiny/base"  # the base model's evals: not a run
    base.mkdir()
    (base / "oda_sft_run.json").write_text(json.dumps({"base": True, "model": {"preset": "tiny"}, "status": "base"}))
    r = cli("eval", "--all", "--opencompass", str(program))
    assert r.code == 0, r.err
    assert list(_table(r.out)) == ["saves/tiny/full/sft-d2/seed-1"]
    assert [rec["status"] for rec in _evals(todo)] == ["finished"]
    assert "left out: " in r.err and "sft-d3/seed-1 is not a finished training run (status interrupted)" in r.err
    assert "left out 1 run(s) already evaluated with these settings" in r.err
    before = snapshot(where)
    again = cli("eval", "--all", "--opencompass", str(program))
    assert again.code == 0 and again.out == "" and "nothing to evaluate under saves" in again.err
    assert snapshot(where) == before


def test_a_dry_run_of_many_is_a_table_with_what_is_missing(cli: Cli, where: Path) -> None:
    _run(where, "d1", 42)
    program = scoring_opencompass(where / "oc")
    before = snapshot(where)
    r = cli("eval", "-m", "tiny", "--datasets", "d1,d2", "--opencompass", str(program), "--dry-run")
    assert r.code == 0, r.err
    assert snapshot(where) == before
    table = _table(r.out)
    assert table["saves/tiny/full/sft-d1/seed-42"] == ["start"]
    assert table["saves/tiny/full/sft-d2/seed-42"][0] == "missing"
    assert "(`oda-sft train --model tiny --dataset d2 --seed 42 --output-root saves` trains it)" in r.out
    assert r.out.count("# command: ") == 2


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--all", "--run", "x"], "--run and --all each name what to evaluate: give one of them"),
        (["--all", "-d", "d1"], "--all names what to evaluate itself: leave out --dataset"),
        (["--run", "x", "--seeds", "1,2"], "--seed picks a run with --dataset"),
        (["-m", "tiny", "--datasets", "d1,d1"], "--datasets lists an item twice"),
        (["-m", "tiny", "-d", "d1", "--seeds", "1,x"], "--seeds has 'x'"),
        (["--all", "--output-root", "nowhere"], "no runs under nowhere"),
        (["-m", "llam", "--datasets", "d1,d2"], "unknown --model 'llam'"),
        (["-m", "tiny", "--datasets", "d1,../x"], "invalid dataset name '../x'"),
        (["--all", "--suite", "code"], "the tiny evaluation has no code benchmarks"),
    ],
)
def test_bad_selections_are_one_line_and_write_nothing(cli: Cli, where: Path, args: list[str], message: str) -> None:
    _run(where, "d1")
    before = snapshot(where)
    r = cli("eval", *args)
    assert r.code == 2, (r.out, r.err)
    (line,) = [x for x in r.err.splitlines() if x.startswith("error:")]
    assert message in line and snapshot(where) == before


def test_slurm_eval_all_submits_one_job_per_run(cli: Cli, where: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    runs = [_run(where, "d1"), _run(where, "d2")]
    program = scoring_opencompass(where / "oc")
    monkeypatch.setattr(slurm_cli.shutil, "which", lambda name: f"/usr/bin/{name}")
    calls: list[list[str]] = []

    def sbatch(argv: list[str]) -> Captured:
        calls.append(argv)
        return Captured(0, f"{100 + len(calls)}\n", "")

    monkeypatch.setattr(slurm_cli, "run_sbatch", sbatch)
    assert "-o writes one script" in cli("slurm", "-o", "x", "--", "eval", "--all").err
    r = cli("slurm", "--time", "2:00:00", "--submit", "--", "eval", "--all", "--opencompass", str(program))
    assert r.code == 0, r.err
    assert r.out.split() == ["101", "102"]
    scripts = [next(run.glob("slurm-logs/oda-sft-eval-*.sbatch")) for run in runs]
    assert [c[:2] for c in calls] == [["/usr/bin/sbatch", "--parsable"]] * 2
    assert [c[2] for c in calls] == [str(s) for s in scripts]  # no dependency: nothing to wait for
    for run, script in zip(runs, scripts, strict=True):
        text = script.read_text()
        assert "#SBATCH --job-name=oda-sft-eval-tiny-" in text and "#SBATCH --time=2:00:00" in text
        assert "#SBATCH --gpus-per-node" not in text  # the tiny eval runs on the CPU
        assert text.rstrip("\n").endswith(shlex.join(["--run", str(run.absolute()), "--opencompass", str(program)]))
    assert not any(_evals(run) for run in runs)  # planned here, evaluated by the jobs
