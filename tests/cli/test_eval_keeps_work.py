"""`oda-sft eval` keeps its work: each attempt has its own OpenCompass folder (a resume reuses exactly that one,
never OpenCompass's tmp/ nor the newest folder by name), weights that are not all there are refused before
OpenCompass starts, a run held by an eval says so, and an eval replaced with --force records where its files went.

OpenCompass here is a stand-in program that records its argv and writes a summary where a real one would
(<-w>/<-r>/summary/), and a tmp/ where it runs, as OpenCompass's runner does; the real OpenCompass resumes an
interrupted eval in tests/integration/test_eval_real.py."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from oda_sft.runs import lock

from conftest import Cli, snapshot, write_torch_file
from ocstub import EMPTY_SAFETENSORS, finished_run, scoring_opencompass


@pytest.fixture
def where(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("ODA_SFT_OPENCOMPASS", raising=False)
    monkeypatch.setenv("STUB_ARGV", str(tmp_path / "argv.jsonl"))
    monkeypatch.setenv("STUB_SCORE", "40.0")
    return tmp_path


def _oc(where: Path) -> Path:
    return scoring_opencompass(where / "oc")


def _calls(where: Path) -> list[dict[str, object]]:
    path = where / "argv.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def _evals(run: Path, key: str = "evals") -> list[dict[str, object]]:
    return json.loads((run / "oda_sft_run.json").read_text()).get(key, [])  # type: ignore[no-any-return]


def _first_eval(cli: Cli, where: Path) -> tuple[Path, Path, dict[str, object]]:
    run = finished_run(where, preset="tiny")
    program = _oc(where)
    r = cli("eval", "--run", str(run), "--opencompass", str(program))
    assert r.code == 0, r.err
    (rec,) = _evals(run)
    return run, program, rec


@pytest.mark.parametrize("status", ["interrupted", "failed", "running"])
@pytest.mark.parametrize("recorded", [True, False])
def test_a_resumed_eval_works_in_its_own_attempts_folder_and_scores_only_that(
    cli: Cli, where: Path, monkeypatch: pytest.MonkeyPatch, status: str, recorded: bool
) -> None:
    run, program, rec = _first_eval(cli, where)
    (first,) = _calls(where)
    stamp = str(first["stamp"])
    work = Path(str(rec["work_dir"]))
    assert (work / stamp / "summary").is_dir() and (work / "tmp").is_dir()
    assert first["cwd"] == str(work)  # OpenCompass's tmp/ lands beside the stamp folders: sorted last
    # Stopped at any point (record interrupted, failed, or still `running` after its oda-sft died); a record
    # of an older oda-sft has no stamp. Another folder sorts after it, and tmp/ holds a summary of its own.
    data = json.loads((run / "oda_sft_run.json").read_text())
    data["evals"][0].update(status=status, scores={}, overall=None)
    if not recorded:
        data["evals"][0].pop("stamp", None)
    (run / "oda_sft_run.json").write_text(json.dumps(data))
    for other in ("tmp", "29991231_235959"):
        (work / other / "summary").mkdir(parents=True, exist_ok=True)
        (work / other / "summary" / "summary_29991231_235959.csv").write_text(
            "dataset,version,metric,mode,tiny-sft\noda_sft_arithmetic,x,accuracy,gen,99.0\n"
        )
    if not recorded:  # without a record, the newest folder OpenCompass made is the one: not tmp/
        (work / "29991231_235959" / "summary" / "summary_29991231_235959.csv").unlink()
        (work / "29991231_235959").rename(work / "19990101_000000")
    monkeypatch.setenv("STUB_SCORE", "55.0")
    r = cli("eval", "--run", str(run), "--opencompass", str(program))
    assert r.code == 0, r.err
    resumed = _calls(where)[-1]
    assert resumed["stamp"] == stamp  # the attempt's own folder: its predictions and results are reused
    assert f"resuming the eval in {work / stamp}" in r.err
    (done,) = _evals(run)
    assert done["status"] == "finished" and done["stamp"] == stamp
    assert done["scores"] == {"arithmetic": 55.0}  # this attempt's summary, not tmp/'s nor another folder's
    assert Path(str(done["summary_csv"])).parent == work / stamp / "summary"


def test_a_dry_run_names_the_folder_a_resume_would_work_in(cli: Cli, where: Path) -> None:
    run, program, rec = _first_eval(cli, where)
    data = json.loads((run / "oda_sft_run.json").read_text())
    data["evals"][0]["status"] = "interrupted"
    (run / "oda_sft_run.json").write_text(json.dumps(data))
    r = cli("eval", "--run", str(run), "--opencompass", str(program), "--dry-run")
    assert r.code == 0, r.err
    assert f" -r {rec['stamp']} " in r.out


def test_an_eval_replaced_with_force_records_where_its_files_went(cli: Cli, where: Path) -> None:
    run, program, old = _first_eval(cli, where)
    eval_dir = run / "eval" / str(old["id"])
    r = cli("eval", "--run", str(run), "--opencompass", str(program), "--force")
    assert r.code == 0, r.err
    (replaced,) = _evals(run, "evals_replaced")
    (new,) = _evals(run)
    moved = Path(str(replaced["moved_to"]))
    assert moved.parent == eval_dir.parent and moved.name.startswith(f"{old['id']}.replaced-")
    assert f"--force: moved the earlier eval to {moved}" in r.err
    for key in ("work_dir", "summary_csv"):
        was = Path(str(old[key]))
        assert replaced[key] == str(moved / was.relative_to(eval_dir)) and Path(str(replaced[key])).exists()
        assert new[key] != replaced[key] and Path(str(new[key])).is_relative_to(eval_dir)
    assert replaced["scores"] == old["scores"] and replaced["stamp"] == old["stamp"]


def _shards(run: Path, suffix: str, write: object) -> None:
    names = [f"model-0000{i}-of-00002.{suffix}" for i in (1, 2)]
    index = "model.safetensors.index.json" if suffix == "safetensors" else "pytorch_model.bin.index.json"
    if suffix == "bin":
        names = [n.replace("model-", "pytorch_model-") for n in names]
    (run / index).write_text(json.dumps({"metadata": {}, "weight_map": {"a": names[0], "b": names[1]}}))
    for name in names:
        write(run / name)  # type: ignore[operator]


def _safetensors(path: Path) -> None:
    path.write_bytes(EMPTY_SAFETENSORS)


# Every weight format a trained run or a base model holds: each whole (accepted), or not all there (refused).
WEIGHTS = {
    "model.safetensors": (lambda run: _safetensors(run / "model.safetensors"), None),
    "none": (lambda run: None, "holds no model weights (model.safetensors, pytorch_model.bin, or their sharded"),
    "model.safetensors cut short": (
        lambda run: (run / "model.safetensors").write_bytes(EMPTY_SAFETENSORS[:5]),
        "holds a model.safetensors cut short",
    ),
    "sharded safetensors": (lambda run: _shards(run, "safetensors", _safetensors), None),
    "sharded safetensors, one missing": (
        lambda run: (_shards(run, "safetensors", _safetensors), (run / "model-00002-of-00002.safetensors").unlink()),
        "holds no model-00002-of-00002.safetensors (model.safetensors.index.json lists 2 shards)",
    ),
    "pytorch_model.bin": (lambda run: write_torch_file(run / "pytorch_model.bin"), None),
    "pytorch_model.bin cut short": (
        lambda run: (run / "pytorch_model.bin").write_bytes(b"PK\x03"),
        "holds a pytorch_model.bin cut short",
    ),
    "sharded bin": (lambda run: _shards(run, "bin", write_torch_file), None),
    "sharded bin, one missing": (
        lambda run: (_shards(run, "bin", write_torch_file), (run / "pytorch_model-00001-of-00002.bin").unlink()),
        "holds no pytorch_model-00001-of-00002.bin (pytorch_model.bin.index.json lists 2 shards)",
    ),
}


@pytest.mark.parametrize("form", list(WEIGHTS))
def test_weights_not_all_there_are_refused_before_opencompass_starts(cli: Cli, where: Path, form: str) -> None:
    run = finished_run(where, preset="tiny")
    (run / "model.safetensors").unlink()
    write, refusal = WEIGHTS[form]
    write(run)
    program = _oc(where)
    before = snapshot(where)
    r = cli("eval", "--run", str(run), "--opencompass", str(program))
    if refusal is None:
        assert r.code == 0, r.err
        return
    errors = [line for line in r.err.splitlines() if line.startswith("error:")]
    assert r.code == 3 and len(errors) == 1, r.err
    assert f"{run} {refusal}" in errors[0] and "restore the run's weights, or train it again" in errors[0]
    assert _calls(where) == [] and snapshot(where) == before  # OpenCompass never ran; nothing written


def test_the_weights_refusal_names_the_runs_own_command_with_force(cli: Cli, where: Path) -> None:
    run = finished_run(where, preset="tiny")
    data = json.loads((run / "oda_sft_run.json").read_text())
    data["rerun"] = "oda-sft train --model tiny --dataset d1 --seed 42 -- template=default"
    (run / "oda_sft_run.json").write_text(json.dumps(data))
    (run / "model.safetensors").unlink()
    program = _oc(where)
    r = cli("eval", "--run", str(run), "--opencompass", str(program))
    assert r.code == 3
    assert "`oda-sft train --model tiny --dataset d1 --seed 42 --force -- template=default`" in r.err
    # a dry run shows the eval, and the same line as what a real one would stop at (issue 23, item 7)
    r = cli("eval", "--run", str(run), "--opencompass", str(program), "--dry-run")
    assert r.code == 0 and "# command: " in r.out, r.err
    assert "warning: a real eval would stop: " in r.err and "--force -- template=default`" in r.err


@pytest.mark.parametrize("base", [False, True])
def test_a_run_held_by_an_eval_names_that_eval(
    cli: Cli, where: Path, monkeypatch: pytest.MonkeyPatch, base: bool
) -> None:
    """A real `oda-sft eval` holds the run (its OpenCompass sleeps); a second eval is refused naming it."""
    run = finished_run(where, preset="tiny")
    program = _oc(where)
    args = ["-m", "tiny", "--base", "--output-root", "saves"] if base else ["--run", str(run)]
    held = where / "saves" / "tiny" / "base" if base else run
    env = {**os.environ, "STUB_SLEEP": "60"}
    log = (where / "first.log").open("w")
    first = subprocess.Popen(
        [sys.executable, "-m", "oda_sft", "eval", *args, "--opencompass", str(program)],
        env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 120
        while not _calls(where):  # its OpenCompass started: the lock is held and the record written
            assert first.poll() is None and time.monotonic() < deadline, (where / "first.log").read_text()
            time.sleep(0.1)
        recorded = json.loads(lock.lock_path(held).read_text())
        assert recorded["role"] == "eval" and recorded["pid"] == first.pid
        r = cli("eval", *args, "--opencompass", str(program), "--force")
        assert r.code == 3, r.err
        expected = f"{held} is being evaluated right now by oda-sft eval, pid {first.pid} on {socket.gethostname()}"
        assert expected in r.err and "a second eval waits for it to end" in r.err, r.err
        assert f"`kill {first.pid}`" in r.err
        assert "being trained" not in r.err and "unknown host" not in r.err and "a process" not in r.err
        (rec,) = _evals(held)
        assert rec["pid"] == first.pid and rec["host"] == socket.gethostname()
    finally:
        first.send_signal(signal.SIGTERM)
        first.wait(60)
        log.close()
