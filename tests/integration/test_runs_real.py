"""Runs you can trust, proven with real llamafactory-cli training of the tiny model (no mocks):
manifests, SIGTERM, resume equivalence, the tokenized cache, sweeps, and `runs`."""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from realproc import manifest, oda_sft, offline_env

RUN = Path("tiny/full/sft-oda_demo")
QUICK = ["--model", "tiny", "--resumable", "--save-steps", "2", "--", "logging_steps=1"]


SECRET = {"HF_TOKEN": "hf_secret_do_not_log"}  # in the environment of the runs below; never in what they write


def losses(run_dir: Path) -> dict[int, float]:
    """step -> loss; a resumed run's log repeats steps, and the later entry is the one that counts."""
    out: dict[int, float] = {}
    for line in (run_dir / "trainer_log.jsonl").read_text().splitlines():
        entry = json.loads(line)
        if "loss" in entry:
            out[entry["current_steps"]] = entry["loss"]
    return out


def summary(stdout: str) -> list[list[str]]:
    """The sweep's closing table (the trainer's own output streams to stdout before it)."""
    lines = stdout.splitlines()
    start = max(i for i, line in enumerate(lines) if line.startswith("DATASET "))
    header = lines[start]
    starts = [header.index(h) for h in ("DATASET", "SEED", "MODE", "OUTCOME", "EXIT", "OUTPUT")]
    bounds = [*starts[1:], None]
    return [[line[a:b].strip() for a, b in zip(starts, bounds, strict=True)] for line in lines[start + 1 :]]


def test_sigterm_keeps_the_run_and_resuming_matches_an_uninterrupted_run(data_dir: Path, tmp_path: Path) -> None:
    common = ["train", "--dataset", "oda_demo", "--dataset-dir", str(data_dir)]
    whole = oda_sft(*common, "--output-root", "a", *QUICK, cwd=tmp_path, **SECRET)
    assert whole.returncode == 0, whole.stderr[-3000:]
    a = tmp_path / "a" / RUN / "seed-42"

    # The manifest of a finished run.
    m = manifest(a)
    assert m["status"] == "finished" and m["exit_code"] == 0 and m["seed"] == 42
    assert m["versions"]["llamafactory"] == "0.9.4" and m["versions"]["torch"]
    assert m["model"]["preset"] == "tiny" and m["mode"]["mode"] == "standard"
    assert m["dataset"]["name"] == "oda_demo" and len(m["dataset"]["sha256"]) == 64
    assert m["config"]["path"].endswith("oda_sft_config.yaml") and len(m["config"]["sha256"]) == 64
    assert m["world_size"] == 1 and m["gpus"] == {"count": 0, "names": []} and m["host"]
    assert m["results"]["final_loss"] == losses(a)[24] and m["results"]["train_runtime"] > 0
    assert m["results"]["tokens_per_second"] > 0 and m["command_line"][-1] == "logging_steps=1"
    assert "hf_secret_do_not_log" not in (a / "oda_sft_run.json").read_text()

    # The same run, stopped by SIGTERM (as Slurm preemption does) once a full checkpoint exists.
    b = tmp_path / "b" / RUN / "seed-42"
    proc = subprocess.Popen(
        [sys.executable, "-m", "oda_sft", *common, "--output-root", "b", *QUICK],
        cwd=tmp_path,
        env=offline_env(**SECRET),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.time() + 600
    while not (b / "checkpoint-4" / "trainer_state.json").exists():
        assert proc.poll() is None, "the run ended before it could be interrupted"
        assert time.time() < deadline
        time.sleep(0.02)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 128 + signal.SIGTERM, err[-3000:]
    assert "tokenized cache" in err and "hit, preprocessing skipped" in err  # a reuses nothing; b reuses a's
    stopped = manifest(b)
    assert stopped["status"] == "interrupted" and stopped["exit_code"] == 143
    assert (b / "checkpoint-4" / "optimizer.pt").is_file() and (b / "oda_sft_config.yaml").is_file()
    assert not (b / "all_results.json").exists()
    before_resume = losses(b)
    assert before_resume and max(before_resume) < 24

    resumed = oda_sft(*common, "--output-root", "b", *QUICK, cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "resuming:" in resumed.stderr
    m = manifest(b)
    assert m["status"] == "finished" and [x["status"] for x in m["attempts"]] == ["interrupted", "finished"]
    assert m["attempts"][1]["resumed_from"].startswith("checkpoint-")

    # Same seed, same math: every step's loss matches, the cached-data steps and the resumed ones.
    la, lb = losses(a), losses(b)
    assert sorted(la) == sorted(lb) == list(range(1, 25))
    for step in la:
        assert lb[step] == pytest.approx(la[step], abs=1e-4), f"step {step}"
    assert m["results"]["final_loss"] == pytest.approx(manifest(a)["results"]["final_loss"], abs=1e-4)
    # The resumed run reports the run, not its last attempt (issue 16 item 13): LLaMA-Factory's train_loss
    # leaves out the steps before the resume; the manifest's mean is the uninterrupted run's.
    whole_results = manifest(a)["results"]
    assert m["results"]["train_loss"] == pytest.approx(whole_results["train_loss"], abs=1e-3)
    assert m["results"]["llamafactory_last_attempt"]["train_loss"] < whole_results["train_loss"] - 0.1
    assert m["results"]["attempts"] == [1, 2] and whole_results["attempts"] == [1]
    last = m["results"]["llamafactory_last_attempt"]["train_runtime"]
    assert m["results"]["train_runtime"] > last and m["results"]["tokens_per_second"] > 0


def test_sweep_goes_on_past_a_broken_dataset_tokenizes_once_and_skips_finished_runs(
    data_dir: Path, tmp_path: Path, oda_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    home = tmp_path / "home"  # an empty tokenized cache, and the session's tiny model
    (home / "models").mkdir(parents=True)
    for model in (oda_home / "models").glob("tiny-*"):
        shutil.copytree(model, home / "models" / model.name)
    monkeypatch.setenv("ODA_SFT_HOME", str(home))
    (data_dir / "broken.json").write_text('[{"instruction": "a", "output": "b"}, {"instruction": ')
    info = json.loads((data_dir / "dataset_info.json").read_text())
    info["broken"] = {"file_name": "broken.json"}
    (data_dir / "dataset_info.json").write_text(json.dumps(info))

    grid = ["sweep", "--model", "tiny", "--datasets", "oda_demo,broken", "--seeds", "1,2",
            "--dataset-dir", str(data_dir), "--output-root", "saves"]  # fmt: skip
    plan = oda_sft(*grid, "--dry-run", cwd=tmp_path)  # a dry run does not read the data: all four would train
    assert plan.returncode == 0 and plan.stdout.count(" train ") == 4
    first = oda_sft(*grid, cwd=tmp_path)
    assert first.returncode == 1, first.stderr[-3000:]
    assert [row[:4] for row in summary(first.stdout)] == [
        ["oda_demo", "1", "standard", "finished"],
        ["oda_demo", "2", "standard", "finished"],
        ["broken", "1", "", "failed"],
        ["broken", "2", "", "failed"],
    ]
    assert "2 of 4 runs failed" in first.stderr
    runs = tmp_path / "saves" / RUN
    assert manifest(runs / "seed-1")["tokenized_cache"]["hit"] is False
    # The kept config names the cache entry the staging copy became, not the staging copy (gone by now).
    kept = yaml.safe_load((runs / "seed-1" / "oda_sft_config.yaml").read_text())["tokenized_path"]
    assert "staging" not in kept and Path(kept).is_dir() and Path(kept).parent == home / "tokenized"
    assert manifest(runs / "seed-2")["tokenized_cache"]["hit"] is True  # the second seed did not tokenize
    assert "Expecting value: fix the file" in summary(first.stdout)[2][5]  # caught before LLaMA-Factory started
    assert not list((home / "tokenized").glob("*.staging-*")), "a failed run leaves no half-written cache"

    again = oda_sft(*grid, cwd=tmp_path)
    assert again.returncode == 1
    assert [row[3] for row in summary(again.stdout)] == ["skipped", "skipped", "failed", "failed"]

    # A run that LLaMA-Factory itself rejects is recorded as failed, with its exit status. (An unknown
    # template is refused before anything starts now; an eval dataset LLaMA-Factory cannot find is not.)
    crash = oda_sft("train", "--model", "tiny", "--dataset", "oda_demo", "--dataset-dir", str(data_dir),
                    "--output-root", "saves", "--seed", "3", "--", "eval_dataset=nope", cwd=tmp_path)  # fmt: skip
    assert crash.returncode != 0
    crashed = manifest(runs / "seed-3")
    assert crashed["status"] == "failed" and crashed["exit_code"] == crash.returncode

    listed = json.loads(oda_sft("runs", "--output-root", "saves", "--json", cwd=tmp_path).stdout)
    assert [(r["dataset"], r["seed"], r["status"]) for r in listed] == [
        ("oda_demo", 1, "finished"), ("oda_demo", 2, "finished"), ("oda_demo", 3, "failed")
    ]  # fmt: skip
    finished = [r for r in listed if r["status"] == "finished"]
    assert all(r["final_loss"] > 0 and r["train_runtime"] > 0 and r["tokens_per_second"] > 0 for r in finished)
    table = oda_sft("runs", "--output-root", "saves", cwd=tmp_path)
    assert table.returncode == 0 and table.stdout.splitlines()[0].startswith("MODEL")
    plotted = oda_sft("runs", "plot", "--output-root", "saves", "-o", "loss.png", cwd=tmp_path)
    assert plotted.returncode == 0 and "(2 of 3 runs)" in plotted.stdout
    # The path is the one the user named (--output-root saves), not an absolute one.
    assert f"left out {Path('saves/tiny/full/sft-oda_demo/seed-3')}: no loss logged yet" in plotted.stderr
    assert (tmp_path / "loss.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
