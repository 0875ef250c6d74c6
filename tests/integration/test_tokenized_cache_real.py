"""Replacing a dataset while a real run preprocesses it does not poison the tokenized cache (real
llamafactory-cli on the tiny model): the copy tokenized from other content is not kept, the manifest
says the file changed, and a later run with the old content tokenizes it again instead of "hitting"."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

from oda_sft import tiny_model

from realproc import manifest, oda_sft, offline_env

RUN = Path("tiny/full/sft-oda_demo")


def test_replacing_the_data_while_a_run_preprocesses_never_stores_its_tokens_under_the_old_key(
    data_dir: Path, tmp_path: Path
) -> None:
    home = tmp_path / "home"  # an empty tokenized cache, and the session's tiny model
    shutil.copytree(tiny_model.ensure_model(), home / "models" / tiny_model.model_dir().name)
    original = tmp_path / "original.json"
    shutil.copy(data_dir / "oda_demo.json", original)
    records = json.loads(original.read_text())
    other = tmp_path / "other.json"  # the same fields (so the same entry), other content
    other.write_text(json.dumps([{**r, "output": r["output"][::-1]} for r in records]))
    train = ["train", "--model", "tiny", "--dataset", "oda_demo", "--dataset-dir", str(data_dir),
             "--output-root", "saves"]  # fmt: skip
    quick = ["--", "max_steps=2"]

    # Registered by `data add`, as the replacement will be: the entry stays the same, only the content moves.
    added = oda_sft("data", "add", "oda_demo", str(original), "--dataset-dir", str(data_dir), "--force",
                cwd=tmp_path, ODA_SFT_HOME=str(home))  # fmt: skip
    assert added.returncode == 0, added.stderr
    log = tmp_path / "run1.log"
    with log.open("wb") as out:
        run = subprocess.Popen([sys.executable, "-m", "oda_sft", *train, "--seed", "1", *quick], cwd=tmp_path,
                               env=offline_env(ODA_SFT_HOME=str(home)), stdout=out,
                               stderr=subprocess.STDOUT)  # fmt: skip
    try:
        deadline = time.monotonic() + 300
        while b"config kept at" not in log.read_bytes():  # printed just before the trainer starts
            assert run.poll() is None and time.monotonic() < deadline, log.read_text()[-3000:]
            time.sleep(0.05)
        # As in the hostile test: the dataset is replaced while the trainer loads and tokenizes it.
        replaced = oda_sft("data", "add", "oda_demo", str(other), "--dataset-dir", str(data_dir), "--force",
                       cwd=tmp_path, ODA_SFT_HOME=str(home))  # fmt: skip
        assert replaced.returncode == 0, replaced.stderr
        assert run.wait(900) == 0, log.read_text()[-3000:]
    finally:
        if run.poll() is None:
            run.kill()
    said = log.read_text()
    assert "tokenized cache" in said and "miss, tokenizing once" in said
    assert "changed while the run preprocessed it" in said and "saved for later runs" not in said
    first = manifest(tmp_path / "saves" / RUN / "seed-1")
    assert first["dataset"]["changed_during_run"] is True
    assert "changed while the run preprocessed it" in first["tokenized_cache"]["discarded"]
    key = first["tokenized_cache"]["key"]
    assert not (home / "tokenized" / key).exists() and not list((home / "tokenized").glob("*staging*"))

    # The old content again: the same key as the first run, and a miss, not a hit on the other content.
    restored = oda_sft("data", "add", "oda_demo", str(original), "--dataset-dir", str(data_dir), "--force",
                   cwd=tmp_path, ODA_SFT_HOME=str(home))  # fmt: skip
    assert restored.returncode == 0, restored.stderr
    second = oda_sft(*train, "--seed", "2", *quick, cwd=tmp_path, ODA_SFT_HOME=str(home))
    assert second.returncode == 0, second.stderr[-3000:]
    assert f"tokenized cache {key}: miss, tokenizing once" in second.stderr
    assert f"tokenized cache {key} saved for later runs" in second.stderr
    assert "changed_during_run" not in manifest(tmp_path / "saves" / RUN / "seed-2")["dataset"]
    third = oda_sft(*train, "--seed", "3", *quick, cwd=tmp_path, ODA_SFT_HOME=str(home))
    assert third.returncode == 0 and f"tokenized cache {key}: hit, preprocessing skipped" in third.stderr
