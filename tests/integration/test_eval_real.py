"""The embedded tiny model, trained and then evaluated by a real OpenCompass (the .venv-opencompass that
scripts/dev.sh setup builds, or $ODA_SFT_OPENCOMPASS) on oda-sft's arithmetic benchmark, on the CPU:
recorded, skipped when asked again, the base model beside it, and an interrupted eval that leaves nothing
behind and resumes. Without OpenCompass the tests skip, saying why; under CI=true they fail."""

from __future__ import annotations

import json
import os
import shutil
import signal
import sys
import time
from pathlib import Path

import pytest

from oda_sft.eval.template import default_template

from conftest import REPO, snapshot
from realproc import kill_tree, manifest, marked, oda_sft, opencompass_program, start, tail

RUN = Path("saves/tiny/full/sft-oda_demo/seed-42")


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Path:
    opencompass_program()
    root = tmp_path_factory.mktemp("eval")
    demo = REPO / "data"
    done = oda_sft(
        "train", "-m", "tiny", "-d", "oda_demo", "--dataset-dir", str(demo), "--output-root", "saves", cwd=root
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return root


def test_trained_tiny_model_is_evaluated_recorded_and_skipped(trained: Path) -> None:
    oc = str(opencompass_program())
    run = trained / RUN
    # The template LLaMA-Factory saved is its `default` one, which oda-sft renders for base models.
    assert (run / "chat_template.jinja").read_text() == default_template("<|end_of_text|>")
    checkpoint = {k: v for k, v in snapshot(run).items() if not k.startswith("eval/") and k != "oda_sft_run.json"}

    first = oda_sft("eval", "-m", "tiny", "-d", "oda_demo", "--output-root", "saves", "--opencompass", oc, cwd=trained)
    assert first.returncode == 0, first.stdout[-3000:] + first.stderr[-3000:]
    assert not (trained / ".cache").exists()  # OpenCompass runs in the eval's work dir, not the user's
    (record,) = manifest(run)["evals"]
    assert record["status"] == "finished" and record["opencompass"]["version"] == "0.5.4"
    assert set(record["scores"]) == {"arithmetic"} and 0 <= record["scores"]["arithmetic"] <= 100
    assert record["domains"] == {"math": record["scores"]["arithmetic"]}
    assert record["overall"] == record["scores"]["arithmetic"]
    work = Path(record["work_dir"])
    assert work.is_relative_to(run / "eval") and list(work.glob("*/summary/summary_*.csv"))
    # The checkpoint is untouched: the template went into the eval's own view of it.
    assert {k: v for k, v in snapshot(run).items() if not k.startswith("eval/") and k != "oda_sft_run.json"} == (
        checkpoint
    )
    assert (run / "eval" / record["id"] / "model" / "model.safetensors").is_symlink()

    again = oda_sft("eval", "--run", str(run), "--opencompass", oc, cwd=trained)
    assert again.returncode == 0 and "skipped:" in again.stderr, again.stderr
    assert f"`oda-sft eval --run {run} --opencompass {oc} --force`" in again.stderr

    base = oda_sft("eval", "-m", "tiny", "--base", "--output-root", "saves", "--opencompass", oc, cwd=trained)
    assert base.returncode == 0, base.stderr[-3000:]
    base_manifest = manifest(trained / "saves" / "tiny" / "base")
    assert base_manifest["base"] is True and base_manifest["evals"][0]["status"] == "finished"


def test_an_interrupted_eval_leaves_nothing_and_resumes(trained: Path, tmp_path: Path) -> None:
    oc = str(opencompass_program())
    run = trained / RUN
    marker = f"eval-{os.getpid()}-{time.monotonic_ns()}"
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "ODA_SFT_TEST_MARK": marker}
    # other settings than the first test's (--suite math): --force evaluates them beside those
    args = [
        sys.executable,
        "-m",
        "oda_sft",
        "eval",
        "--run",
        str(run),
        "--opencompass",
        oc,
        "--suite",
        "math",
        "--force",
    ]
    log = tmp_path / "eval.log"
    proc = start(args, env, log, cwd=trained)
    try:
        deadline = time.monotonic() + 120
        while "launch OpenICLInfer" not in log.read_text(errors="replace"):
            assert proc.poll() is None and time.monotonic() < deadline, tail(log)
            time.sleep(0.2)
        proc.send_signal(signal.SIGINT)
        assert proc.wait(60) == 130, tail(log)
    finally:
        kill_tree(proc)
    assert marked(marker) == set(), "OpenCompass processes outlived oda-sft"
    records = {r["settings"]["suite"]: r for r in manifest(run)["evals"]}
    assert records["math"]["status"] == "interrupted"
    assert "interrupted:" in log.read_text()
    stamp = records["math"]["stamp"]  # interrupted during inference: the same folder is resumed, never tmp/

    resumed = oda_sft("eval", "--run", str(run), "--opencompass", oc, "--suite", "math", "--force", cwd=trained)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "resuming the eval" in resumed.stderr and " -r" in resumed.stderr
    records = {r["settings"]["suite"]: r for r in manifest(run)["evals"]}
    assert records["math"]["status"] == "finished" and records["math"]["stamp"] == stamp
    assert f" -r {stamp} " in resumed.stderr
    assert Path(records["math"]["summary_csv"]).parent == Path(records["math"]["work_dir"]) / stamp / "summary"


def _files(folder: Path) -> dict[str, tuple[int, int, bytes]]:
    """Every file under folder: its inode, mtime and bytes (a file written again changes at least one)."""
    return {
        str(p.relative_to(folder)): (p.stat().st_ino, p.stat().st_mtime_ns, p.read_bytes())
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def test_an_eval_interrupted_while_scoring_resumes_its_own_predictions(trained: Path, tmp_path: Path) -> None:
    """SIGTERM once OpenCompass wrote its predictions (while it scores them): the same command resumes in that
    attempt's folder, scores those very prediction files and runs no inference again (issue 22, item 4: a bare
    `-r` picked OpenCompass's tmp/, which sorts after every stamp, and inferred everything again there)."""
    oc = str(opencompass_program())
    run = trained / "saves" / "scoring-copy"
    shutil.copytree(trained / RUN, run, ignore=shutil.ignore_patterns("eval"))  # a run of its own, not evaluated
    copied = manifest(run)
    copied.pop("evals", None)
    copied.pop("evals_replaced", None)
    (run / "oda_sft_run.json").write_text(json.dumps(copied))
    marker = f"eval-{os.getpid()}-{time.monotonic_ns()}"
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "ODA_SFT_TEST_MARK": marker}
    log = tmp_path / "eval.log"
    proc = start([sys.executable, "-m", "oda_sft", "eval", "--run", str(run), "--opencompass", oc], env, log, trained)
    try:
        deadline = time.monotonic() + 300
        while not [p for p in run.glob("eval/*/work/*/predictions/*/*.json") if not p.name.startswith("tmp_")]:
            assert proc.poll() is None and time.monotonic() < deadline, tail(log)
            time.sleep(0.05)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(60) == 143, tail(log)
    finally:
        kill_tree(proc)
    assert marked(marker) == set(), "OpenCompass processes outlived oda-sft"
    (record,) = manifest(run)["evals"]
    assert record["status"] == "interrupted", tail(log)
    work = Path(record["work_dir"])
    (attempt,) = [d for d in work.iterdir() if d.name[0].isdigit()]
    assert not list(attempt.glob("summary/*.csv")), "the window was missed: it finished before SIGTERM"
    predictions = _files(attempt / "predictions")
    assert predictions

    resumed = oda_sft("eval", "--run", str(run), "--opencompass", oc, cwd=trained)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert f"resuming the eval in {attempt}" in resumed.stderr and f" -r {attempt.name} " in resumed.stderr
    assert "launch OpenICLInfer" not in resumed.stdout + resumed.stderr  # no inference task ran again
    assert _files(attempt / "predictions") == predictions  # the same files, neither rewritten nor added to
    assert [d.name for d in work.iterdir() if d.name[0].isdigit()] == [attempt.name]  # no new attempt folder
    assert not list(work.glob("tmp/**/summary*.csv")) and not (work / "tmp" / "predictions").exists()
    (record,) = manifest(run)["evals"]
    assert record["status"] == "finished" and Path(record["summary_csv"]).parent == attempt / "summary"
    assert set(record["scores"]) == {"arithmetic"}
