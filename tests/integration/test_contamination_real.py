"""`data contamination` through the real path: the arithmetic benchmark read by OpenCompass's own loader
in .venv-opencompass, planted copies found, the result stored, reused, and redone when either side changes."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from oda_sft.eval import render

from conftest import Cli
from realproc import opencompass_program

QUESTIONS = [json.loads(line)["question"] for line in render.CUSTOM_DATA["arithmetic"].read_text().splitlines()]


def _write(path: Path, planted: dict[int, str]) -> None:
    records = [{"instruction": f"Tell me one fact about the number {i}.", "output": "ok"} for i in range(200)]
    for at, question in planted.items():
        records[at] = {"instruction": question, "output": "42"}
    path.write_text(json.dumps(records, indent=1))  # a pretty-printed list: the streamed path


def test_arithmetic_overlap_end_to_end(
    cli: Cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    oc = str(opencompass_program())
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


def test_a_benchmark_config_read_by_its_own_loader_from_the_data_cache(
    cli: Cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """DROP (drop_gen_a2697c: the same file in PyPI's OpenCompass and ODA's fork), through mmengine's config and
    DropOpenAIDataset, from $COMPASS_DATA_CACHE. Without its data: nothing is downloaded, and one line says where
    OpenCompass looks and what to fetch. With it: its prompts, quoted in a training prompt, are found."""
    monkeypatch.setenv("ODA_SFT_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("HOME", str(tmp_path))  # no ~/.cache/opencompass
    cache = tmp_path / "oc-cache"
    monkeypatch.setenv("COMPASS_DATA_CACHE", str(cache))
    ddir = tmp_path / "data"
    ddir.mkdir()
    _write(
        ddir / "d.json", {9: "Read this: hoping to rebound from their loss to the Patriots, the Raiders stayed home"}
    )
    assert cli("data", "add", "d", str(ddir / "d.json"), "--dataset-dir", str(ddir)).code == 0
    check = ["data", "contamination", "d", "--dataset-dir", str(ddir), "--benchmarks", "drop",
             "--opencompass", str(opencompass_program()), "--json"]  # fmt: skip

    missing = cli(*check)
    assert missing.code != 0
    lines = [line for line in missing.err.splitlines() if line.startswith("error")]
    assert len(lines) == 1 and "download http" in lines[0] and "drop_simple_eval" in lines[0], missing.err
    assert not cache.exists() and not (tmp_path / ".cache" / "opencompass").exists()

    (cache / "data" / "drop_simple_eval").mkdir(parents=True)
    passages = [
        "Hoping to rebound from their loss to the Patriots, the Raiders stayed at home for a Week 16 duel with the "
        "Houston Texans. How many field goals did Kris Brown kick?",
        "The city had a population of 45,000 in 1900 and grew through the following decades. How many lived there?",
    ]
    with (cache / "data" / "drop_simple_eval" / "dev.jsonl").open("w") as f:
        f.writelines(json.dumps({"context": p, "ref_text": "2"}) + "\n" for p in passages)
    done = cli(*check)
    assert done.code == 0, done.err
    [row] = json.loads(done.out)["benchmarks"]
    assert (row["name"], row["items"], row["samples"]) == ("drop", 2, [9])
