"""`data contamination` through the real path: the arithmetic benchmark read by OpenCompass's own loader
in .venv-opencompass, planted copies found, the result stored, reused, and redone when either side changes."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from test_eval_real import _opencompass

from oda_sft.eval import render

from conftest import Cli

QUESTIONS = [json.loads(line)["question"] for line in render.CUSTOM_DATA["arithmetic"].read_text().splitlines()]


def _write(path: Path, planted: dict[int, str]) -> None:
    records = [{"instruction": f"Tell me one fact about the number {i}.", "output": "ok"} for i in range(200)]
    for at, question in planted.items():
        records[at] = {"instruction": question, "output": "42"}
    path.write_text(json.dumps(records, indent=1))  # a pretty-printed list: the streamed path


def test_arithmetic_overlap_end_to_end(
    cli: Cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    oc = str(_opencompass())
    monkeypatch.setenv("ODA_SFT_HOME", str(tmp_path / "home"))  # nothing extracted before
    bench = tmp_path / "oda_sft_arithmetic.jsonl"  # a copy, so the benchmark side can change
    shutil.copy(render.CUSTOM_DATA["arithmetic"], bench)
    shutil.copy(f"{render.CUSTOM_DATA['arithmetic']}.meta.json", f"{bench}.meta.json")
    monkeypatch.setitem(render.CUSTOM_DATA, "arithmetic", bench)
    ddir = tmp_path / "data"
    ddir.mkdir()
    _write(ddir / "d.json", {3: QUESTIONS[0], 150: "  " + QUESTIONS[5].upper().replace(" ", "   ")})
    assert cli("data", "add", "d", str(ddir / "d.json"), "--dataset-dir", str(ddir)).code == 0
    check = ["data", "contamination", "d", "--dataset-dir", str(ddir), "-m", "tiny", "--opencompass", oc, "--json"]

    first = cli(*check)
    assert first.code == 0, first.err
    assert "OpenCompass's loaders" in first.err and "scanning" in first.err
    [row] = json.loads(first.out)["benchmarks"]
    assert (row["name"], row["samples"], row["items"]) == ("arithmetic", [3, 150], 36)
    stored = json.loads((ddir / "dataset_info.json").read_text())["d"]["oda_sft"]["contamination"]
    assert stored["benchmarks"]["arithmetic"]["samples"] == [3, 150]

    again = cli(*check)  # both sides unchanged: neither OpenCompass nor a scan runs
    assert again.code == 0 and "OpenCompass's loaders" not in again.err and "reusing" in again.err
    assert json.loads(again.out)["benchmarks"][0]["samples"] == [3, 150]

    _write(ddir / "d.json", {7: QUESTIONS[1]})  # the training side changes: scanned again, texts reused
    assert cli("data", "add", "d", str(ddir / "d.json"), "--dataset-dir", str(ddir), "--force").code == 0
    third = cli(*check)
    assert "OpenCompass's loaders" not in third.err and "scanning" in third.err
    assert json.loads(third.out)["benchmarks"][0]["samples"] == [7]

    with bench.open("a") as f:  # the benchmark side changes: read again by OpenCompass, scanned again
        f.write(json.dumps({"question": "Tell me one fact about the number 12.", "answer": "12"}) + "\n")
    fourth = cli(*check)
    assert "OpenCompass's loaders" in fourth.err and "scanning" in fourth.err
    [row] = json.loads(fourth.out)["benchmarks"]
    assert (row["samples"], row["items"]) == ([7, 12], 37)

    clean = cli(*check[:-1], "--write-clean", "d-clean")
    assert clean.code == 0, clean.err
    entry = json.loads((ddir / "dataset_info.json").read_text())["d-clean"]
    assert entry["oda_sft"]["decontaminated_from"]["removed"] == [7, 12]
    assert entry["oda_sft"]["records"] == 198


def test_missing_benchmark_data_is_one_line_naming_what_to_fetch(
    cli: Cli, data_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """DROP's config is the same in PyPI's OpenCompass and ODA's fork; with no data cached, nothing is
    downloaded and one line says where OpenCompass looks and what to fetch."""
    monkeypatch.setenv("COMPASS_DATA_CACHE", str(tmp_path / "empty"))
    monkeypatch.setenv("HOME", str(tmp_path))  # no ~/.cache/opencompass either
    done = cli("data", "contamination", "oda_demo", "--dataset-dir", str(data_dir), "--benchmarks", "drop",
               "--opencompass", str(_opencompass()))  # fmt: skip
    assert done.code != 0
    lines = [line for line in done.err.splitlines() if line.startswith("error")]
    assert len(lines) == 1 and "download http" in lines[0] and "drop_simple_eval" in lines[0], done.err
    assert not (tmp_path / "empty").exists() and not (tmp_path / ".cache" / "opencompass").exists()
