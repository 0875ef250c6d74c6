"""A checkpoint knows the data and config it was trained on (issue 22 item 1), proven with the real trainer
on the tiny model: a run stopped after checkpoint-10 whose manifest is then deleted, cut in half or swapped
for another run's is never resumed on other data; it resumes on its own data, and the printed commands
work as printed."""

from __future__ import annotations

import hashlib
import json
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any

from test_resume_epochs import TIMEOUT_S, interrupt

from oda_sft.runs.outdir import checkpoint_is_complete

from conftest import REPO
from realproc import offline_env

RUN = Path("tiny/full/sft-mine/seed-42")


def oda(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "oda_sft", *args], cwd=cwd, env=offline_env(), capture_output=True,
                          text=True, timeout=TIMEOUT_S)  # fmt: skip


def _content(path: Path, answer: str) -> Path:
    records = json.loads((REPO / "data" / "oda_demo.json").read_text(encoding="utf-8"))
    path.write_text(json.dumps([{**r, "output": f"{r['output']} {answer}"} for r in records]), encoding="utf-8")
    return path


def _registered_sha(data_dir: Path) -> str:
    return hashlib.sha256((data_dir / "mine.json").read_bytes()).hexdigest()


def _one_error(err: str) -> str:
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and err.rstrip().endswith(errors[0]), err[-3000:]
    return errors[0]


def _tree(path: Path) -> dict[str, bytes]:
    return {str(p.relative_to(path)): p.read_bytes() for p in sorted(path.rglob("*")) if p.is_file()}


def test_a_resume_without_a_readable_manifest_never_trains_on_other_data(data_dir: Path, tmp_path: Path) -> None:
    f1, f2 = _content(tmp_path / "f1.json", "(one)"), _content(tmp_path / "f2.json", "(two)")
    add = ["data", "add", "mine", "--dataset-dir", str(data_dir)]
    assert oda(*add[:3], str(f1), *add[3:], cwd=tmp_path).returncode == 0
    on_f1 = _registered_sha(data_dir)
    root = tmp_path / "saves"
    run = root / RUN
    train = [sys.executable, "-m", "oda_sft", "train", "--model", "tiny", "--dataset", "mine", "--mode", "standard",
             "--dataset-dir", str(data_dir), "--output-root", str(root), "--resumable", "--save-steps", "5",
             "--", "logging_steps=1"]  # fmt: skip
    ckpt = run / "checkpoint-10"
    rc, err = interrupt(train, tmp_path, run, lambda: ckpt.is_dir() and checkpoint_is_complete(ckpt))
    assert rc == 143, err[-3000:]
    # The trainer stamped each checkpoint with its data and config, before the checkpoint was complete.
    stamp: dict[str, Any] = json.loads((ckpt / "oda_sft_checkpoint.json").read_text())
    assert stamp["dataset"] == {"name": "mine", "sha256": on_f1, "revision": None}
    assert stamp["config"]["dataset"] == "mine" and stamp["config"]["save_steps"] == 5
    assert "ODA_SFT_CHECKPOINT_IDENTITY" not in json.loads((run / "oda_sft_run.json").read_text())["launch"]["env"]

    manifest = (run / "oda_sft_run.json").read_bytes()
    other = json.loads(manifest)
    other["seed"], other["dataset"] = 7, {**other["dataset"], "sha256": "0" * 64}
    assert oda(*add[:3], str(f2), *add[3:], "--force", cwd=tmp_path).returncode == 0
    refusals = []
    for harm, written in [("deleted", None), ("another run's", json.dumps(other).encode()),
                          ("cut in half", manifest[: len(manifest) // 2])]:  # fmt: skip
        (run / "oda_sft_run.json").unlink(missing_ok=True)
        if written is not None:
            (run / "oda_sft_run.json").write_bytes(written)
        before = _tree(tmp_path)
        refused = subprocess.run(
            train, cwd=tmp_path, env=offline_env(), capture_output=True, text=True, timeout=TIMEOUT_S
        )
        assert refused.returncode == 3, (harm, refused.stderr[-3000:])
        error = _one_error(refused.stderr)
        assert f"checkpoint-10 was trained on other content of dataset mine (sha256 {on_f1[:12]})" in error, harm
        assert "mixed data" in error and _tree(tmp_path) == before, harm  # nothing written, nothing started
        refusals.append(error)

    # The first command printed, with the content the run started on as SOURCE: the data is put back ...
    register_again, start_over = shlex.split(refusals[-1].split("`")[1]), shlex.split(refusals[-1].split("`")[3])
    assert "--force" in start_over and "--resumable" in start_over  # run as printed in tests/cli/test_run_data_identity
    assert register_again[:4] == ["oda-sft", "data", "add", "mine"] and "SOURCE" in register_again
    put_back = oda(*[str(f1) if a == "SOURCE" else a for a in register_again[1:]], cwd=tmp_path)
    assert put_back.returncode == 0 and _registered_sha(data_dir) == on_f1, put_back.stderr
    # ... and the same command resumes from checkpoint-10 on it. The half manifest is kept aside, named corrupt.
    resumed = subprocess.run(train, cwd=tmp_path, env=offline_env(), capture_output=True, text=True, timeout=TIMEOUT_S)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "continues from checkpoint-10" in resumed.stderr
    assert "oda_sft_run.json is corrupt (not valid JSON: cut short or overwritten): moved it to " in resumed.stderr
    record = json.loads((run / "oda_sft_run.json").read_text())
    assert [(a["dataset_sha256"], a.get("resumed_from")) for a in record["attempts"]] == [(on_f1, "checkpoint-10")]
    assert "was unusable" in record["attempts"][0]["note"] and record["status"] == "finished"
    assert len(list(run.glob("oda_sft_run.json.unusable-*"))) == 1
