"""The embedded tiny model, trained and then evaluated by a real OpenCompass (the .venv-opencompass that
`oda-sft setup-eval` builds, or $ODA_SFT_OPENCOMPASS) on oda-sft's arithmetic benchmark, and its base model on
ODA's DROP config from a test data cache, on the CPU: recorded, skipped when asked again, and an interrupted
eval that leaves nothing behind and resumes. Without OpenCompass the tests skip, saying why; under CI=true they
fail."""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from oda_sft.eval.template import default_template

from conftest import REPO, snapshot
from hubstub import Hub, serve
from realproc import kill_tree, manifest, marked, oda_sft, offline_env, opencompass_program, start, tail
from tracker_readers import need, tensorboard_scalars

RUN = Path("saves/tiny/full/sft-oda_demo/seed-42")
DATA_CACHE = REPO / "tests" / "fixtures" / "opencompass_data"  # DROP in its real layout (its README says whence)


def _unevaluated_copy(source: Path, target: Path) -> Path:
    """A copy of a trained run that is a run of its own, not evaluated (its eval records and folders left out)."""
    shutil.copytree(source, target, ignore=shutil.ignore_patterns("eval"))
    copied = manifest(target)
    copied.pop("evals", None)
    copied.pop("evals_replaced", None)
    (target / "oda_sft_run.json").write_text(json.dumps(copied))
    return target


def _stop_when(proc: subprocess.Popen[bytes], log: Path, marker: str, ready: Callable[[], bool], sig: int,
               code: int, within_s: float) -> None:  # fmt: skip
    """Send `sig` once `ready()`, then expect oda-sft to exit `code` leaving no OpenCompass process behind."""
    try:
        deadline = time.monotonic() + within_s
        while not ready():
            assert proc.poll() is None and time.monotonic() < deadline, tail(log)
            time.sleep(0.05)
        proc.send_signal(sig)
        assert proc.wait(60) == code, tail(log)
    finally:
        kill_tree(proc)
    assert marked(marker) == set(), "OpenCompass processes outlived oda-sft"


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Path:
    opencompass_program()
    root = tmp_path_factory.mktemp("eval")
    demo = REPO / "data"
    done = oda_sft(
        "train", "-m", "tiny", "-d", "oda_demo", "--dataset-dir", str(demo), "--output-root", "saves", cwd=root
    )
    assert done.returncode == 0, done.stderr[-3000:]
    (root / "train-said.txt").write_text(done.stdout + done.stderr)  # what the person read (the first test counts it)
    return root


def test_trained_tiny_model_is_evaluated_recorded_and_skipped(trained: Path) -> None:
    oc = str(opencompass_program())
    run = trained / RUN
    # The template LLaMA-Factory saved is its `default` one, which oda-sft renders for base models.
    assert (run / "chat_template.jinja").read_text() == default_template("<|end_of_text|>")
    checkpoint = {k: v for k, v in snapshot(run).items() if not k.startswith("eval/") and k != "oda_sft_run.json"}

    # The command train printed as what to run next, run as printed (OpenCompass found as a user's would be).
    trained_said = (trained / "train-said.txt").read_text()
    (printed,) = re.findall(r"next, evaluate it: `([^`]+)`", trained_said)
    assert shlex.split(printed)[1:] == ["eval", "--run", str(run)]
    first = subprocess.run(
        shlex.split(printed), cwd=trained, capture_output=True, text=True, timeout=900,
        env=offline_env(ODA_SFT_OPENCOMPASS=oc),
    )  # fmt: skip
    assert first.returncode == 0, first.stdout[-3000:] + first.stderr[-3000:]
    assert "scores about 0" in first.stderr  # the demo says what its number means, next to it
    ranked = oda_sft("rank", "--model", "tiny", "--output-root", "saves", cwd=trained)
    assert ranked.returncode == 0, ranked.stderr[-3000:]
    # Training to leaderboard, as the demo runs it, reads in under 60 lines: the tools' own output is in logs.
    said = trained_said + first.stdout + first.stderr + ranked.stdout + ranked.stderr
    assert len(said.splitlines()) < 60, said
    (opencompass_log,) = run.glob("eval/*/logs/opencompass-1.log")
    assert f"OpenCompass's output: {opencompass_log}" in first.stderr
    assert "launch OpenICLInfer" in opencompass_log.read_text(errors="replace")
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

    # The base model on ODA's own DROP config (drop_gen_a2697c, the same file in the fork and on PyPI): the data is
    # looked for before anything starts, then read by the real loader and scored by the real DropOpenAIEvaluator.
    base_args = ("eval", "-m", "tiny", "--base", "--benchmarks", "drop", "--output-root", "saves", "--opencompass", oc)
    refused = oda_sft(*base_args, cwd=trained, COMPASS_DATA_CACHE=str(trained / "no-data"))
    assert refused.returncode == 2 and "benchmark data not found for drop" in refused.stderr, refused.stderr
    assert "`oda-sft eval-data fetch --model tiny --benchmarks drop --cache " in refused.stderr
    assert not (trained / "saves" / "tiny" / "base" / "eval").exists()
    base = oda_sft(*base_args, cwd=trained, COMPASS_DATA_CACHE=str(DATA_CACHE))
    assert base.returncode == 0, base.stderr[-3000:]
    base_manifest = manifest(trained / "saves" / "tiny" / "base")
    (drop,) = base_manifest["evals"]
    assert base_manifest["base"] is True and drop["status"] == "finished"
    assert set(drop["scores"]) == {"drop"} and drop["domains"] == {"general": drop["scores"]["drop"]}
    (result,) = Path(drop["work_dir"]).glob("*/results/tiny-base/drop.json")
    scored = json.loads(result.read_text())  # DropOpenAIEvaluator.score's own output, over the fixture's answers
    expected = [json.loads(line)["ref_text"] for line in (DATA_CACHE / "data/drop_simple_eval/dev.jsonl").open()]
    assert [d["answer"] for d in scored["details"]] == [[a] for a in expected]
    assert drop["scores"]["drop"] == scored["accuracy"]


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
        "--verbose",  # OpenCompass's own output streams into this log, as it is written
    ]
    log = tmp_path / "eval.log"
    proc = start(args, env, log, cwd=trained)
    _stop_when(proc, log, marker, lambda: "launch OpenICLInfer" in log.read_text(errors="replace"), signal.SIGINT, 130,
               120)  # fmt: skip
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
    run = _unevaluated_copy(trained / RUN, trained / "saves" / "scoring-copy")
    marker = f"eval-{os.getpid()}-{time.monotonic_ns()}"
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "ODA_SFT_TEST_MARK": marker}
    log = tmp_path / "eval.log"
    proc = start([sys.executable, "-m", "oda_sft", "eval", "--run", str(run), "--opencompass", oc], env, log, trained)
    predicted = "eval/*/work/*/predictions/*/*.json"
    _stop_when(proc, log, marker, lambda: any(not p.name.startswith("tmp_") for p in run.glob(predicted)),
               signal.SIGTERM, 143, 300)  # fmt: skip
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
    # OpenCompass's output, in this attempt's own log (the interrupted attempt's is kept beside it): no inference
    # task ran again, and the tasks it did run are there.
    logs = sorted(run.glob("eval/*/logs/opencompass-*.log"))
    assert [p.name for p in logs] == ["opencompass-1.log", "opencompass-2.log"]
    assert f"OpenCompass's output: {logs[1]}" in resumed.stderr
    said = logs[1].read_text(errors="replace")
    assert "launch OpenICLEval" in said and "launch OpenICLInfer" not in said, said[-3000:]
    assert _files(attempt / "predictions") == predictions  # the same files, neither rewritten nor added to
    assert [d.name for d in work.iterdir() if d.name[0].isdigit()] == [attempt.name]  # no new attempt folder
    assert not list(work.glob("tmp/**/summary*.csv")) and not (work / "tmp" / "predictions").exists()
    (record,) = manifest(run)["evals"]
    assert record["status"] == "finished" and Path(record["summary_csv"]).parent == attempt / "summary"
    assert set(record["scores"]) == {"arithmetic"}


def test_a_trained_and_evaluated_run_is_pushed_with_its_card(trained: Path) -> None:
    """`oda-sft push` of the really trained run, as a process of its own, to the stand-in Hub: the card holds
    the real eval's score, its reproduce command works as printed (as a dry run), the files land whole, and
    the token is in no file and no output."""
    oc, run, token = str(opencompass_program()), trained / RUN, "hf_integrationTokenNeverWritten42"
    assert oda_sft("eval", "--run", str(run), "--opencompass", oc, cwd=trained).returncode == 0  # skipped if done
    score = manifest(run)["evals"][0]["scores"]["arithmetic"]
    dry = oda_sft("push", str(run), "--repo-id", "me/tiny-demo", "--dry-run", cwd=trained)
    assert dry.returncode == 0, dry.stderr
    card = (run / "model_card.md").read_text()
    assert f"| arithmetic | {score:.2f} |" in card and "| domain: math |" in card
    train_line = next(line for line in card.splitlines() if line.startswith("oda-sft train "))
    again = oda_sft(*train_line.split()[1:], "--dry-run", cwd=trained / "saves")
    assert again.returncode == 0, again.stderr[-2000:]
    with serve(Hub()) as hub:
        done = oda_sft("push", str(run), "--repo-id", "me/tiny-demo", cwd=trained, HF_ENDPOINT=hub.url,
                       HF_TOKEN=token, HF_HUB_OFFLINE="0")  # fmt: skip
        assert done.returncode == 0, done.stderr[-3000:]
        files = hub.models["me/tiny-demo"].files
    assert files["model.safetensors"] == (run / "model.safetensors").read_bytes()
    assert files["README.md"] == (run / "model_card.md").read_bytes()
    assert {"tokenizer.json", "config.json", "chat_template.jinja"} <= set(files)
    assert token not in done.stdout + done.stderr + dry.stdout + dry.stderr
    assert not [name for name, data in snapshot(trained).items() if token.encode() in data]


def test_many_runs_are_evaluated_at_once_stopped_and_gone_on_with(trained: Path, tmp_path: Path) -> None:
    """Issue 23, items 7 and 8: a dry run before a run is trained names the train command, which works as printed;
    `eval --all` evaluates both runs in one process; SIGINT while the second is evaluated leaves the first recorded
    finished and the second interrupted (a table says so); the same command goes on with the second only."""
    oc = str(opencompass_program())
    root = tmp_path / "many"
    first = _unevaluated_copy(trained / RUN, root / RUN)
    data = {"ODA_SFT_DATASET_DIR": str(REPO / "data")}  # where the printed train command finds oda_demo

    preview = oda_sft("eval", "-m", "tiny", "--datasets", "oda_demo", "--seeds", "42,43", "--opencompass", oc,
                      "--dry-run", cwd=root, **data)  # fmt: skip
    assert preview.returncode == 0, preview.stderr[-3000:]
    (train,) = re.findall(r"\(`(oda-sft train [^`]+)` trains it\)", preview.stdout)
    assert train == "oda-sft train --model tiny --dataset oda_demo --seed 43 --output-root saves"
    done = oda_sft(*shlex.split(train)[1:], cwd=root, **data)  # the advice, as printed
    assert done.returncode == 0, done.stderr[-3000:]
    second = root / "saves/tiny/full/sft-oda_demo/seed-43"

    marker = f"eval-{os.getpid()}-{time.monotonic_ns()}"
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "ODA_SFT_TEST_MARK": marker}
    log = tmp_path / "all.log"
    # --verbose: OpenCompass's own lines (the [2/2] eval's inference) come here, not only to its log file.
    proc = start([sys.executable, "-m", "oda_sft", "eval", "--all", "--verbose", "--opencompass", oc], env, log,
                 cwd=root)  # fmt: skip

    def second_started() -> bool:  # the [2/2] eval's inference
        return "launch OpenICLInfer" in log.read_text(errors="replace").partition("[2/2]")[2]

    _stop_when(proc, log, marker, second_started, signal.SIGINT, 130, 600)
    assert [r["status"] for r in manifest(first)["evals"]] == ["finished"]
    assert [r["status"] for r in manifest(second)["evals"]] == ["interrupted"]
    rows = {line.split()[0]: line.split()[1] for line in log.read_text().splitlines() if line.startswith("saves/")}
    assert rows == {str(RUN): "finished", "saves/tiny/full/sft-oda_demo/seed-43": "interrupted"}, tail(log)

    again = oda_sft("eval", "--all", "--opencompass", oc, cwd=root)
    assert again.returncode == 0, again.stderr[-3000:]
    assert "left out 1 run(s) already evaluated with these settings" in again.stderr
    assert "resuming the eval" in again.stderr
    assert [line.split()[:2] for line in again.stdout.splitlines() if line.startswith("saves/")] == [
        ["saves/tiny/full/sft-oda_demo/seed-43", "finished"]
    ]
    assert [r["status"] for r in manifest(second)["evals"]] == ["finished"]


def test_a_run_trained_with_tensorboard_holds_its_loss_curve_and_its_eval_scores(tmp_path: Path) -> None:
    """--report-to tensorboard: one TensorBoard run (the run dir's tensorboard/ folder) shows the training's loss
    curve and, logged by `eval` at the last step, the scores per benchmark, per domain and overall."""
    need("tensorboard")
    oc = str(opencompass_program())
    demo = REPO / "data"
    train = ("train", "-m", "tiny", "-d", "oda_demo", "--dataset-dir", str(demo), "--output-root", "saves")
    done = oda_sft(*train, "--report-to", "tensorboard", "--", "logging_steps=4", cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    run = tmp_path / RUN
    evaluated = oda_sft("eval", "--run", str(run), "--opencompass", oc, cwd=tmp_path)
    assert evaluated.returncode == 0, evaluated.stderr[-3000:]
    (record,) = manifest(run)["evals"]
    assert f"scores logged to tensorboard run {run / 'tensorboard'} at step 24" in evaluated.stderr
    scalars = tensorboard_scalars(run / "tensorboard")
    assert [step for step, _ in scalars["train/loss"]] == [4, 8, 12, 16, 20, 24]
    score = record["scores"]["arithmetic"]
    for tag in ("eval/arithmetic", "eval/domain/math", "eval/overall"):
        ((step, value),) = scalars[tag]
        assert step == 24 and value == pytest.approx(score, abs=1e-4), tag  # TensorBoard keeps float32
