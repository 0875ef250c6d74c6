"""`oda-sft train --dataset <catalog name> --fetch`, as a real process against the local Hub stand-in: the
dataset is fetched, converted and registered first, the tiny model really trains on it, and the run's
manifest records the commit the data came from."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from catalog_fixtures import encode
from hubstub import Hub, Repo, serve

SHA = "89abcdef0123456789abcdef0123456789abcdef"


def _deepmath_rows(n: int) -> list[dict[str, object]]:
    rows: list[dict[str, object]] = []
    for i in range(n):
        solution = f"<think>\nAdd {i} and {i}: that is {2 * i}.\n</think>\n\nThe answer is $\\boxed{{{2 * i}}}$."
        rows.append({"question": f"What is {i} + {i}?", "final_answer": str(2 * i), "difficulty": 1.0,
                     "topic": "Mathematics -> Arithmetic", "r1_solution_1": solution,
                     "r1_solution_2": solution, "r1_solution_3": solution})  # fmt: skip
    rows.append({**rows[0], "r1_solution_1": "<think>\nand so on, and so on"})  # cut off: counted, kept as ODA
    return rows


def test_train_fetch_fetches_once_trains_and_records_the_revision(tmp_path: Path) -> None:
    path = "data/train-00000-of-00001.parquet"
    repo = Repo(SHA, {path: encode(path, _deepmath_rows(32)), "README.md": b"# DeepMath\n"})
    ddir = tmp_path / "datasets"
    ddir.mkdir()
    with serve(Hub({"zwhe99/DeepMath-103K": repo})) as hub:
        env = {k: v for k, v in os.environ.items() if k not in ("HF_HUB_OFFLINE",)}
        env.update(HF_ENDPOINT=hub.url, HF_HUB_CACHE=str(tmp_path / "hf"), HF_DATASETS_OFFLINE="1")
        args = ["--model", "tiny", "--dataset", "DeepMath-103K", "--dataset-dir", str(ddir), "--output-root", "saves"]
        # The long config packs to cutoff_len 32768: far too slow for a CPU; the tiny model packs to 1024 here.
        short = ["--", "cutoff_len=1024"]
        proc = subprocess.run(
            [sys.executable, "-m", "oda_sft", "train", *args, "--fetch", *short],
            cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600,
        )  # fmt: skip
        assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
        assert "--fetch: DeepMath-103K is not registered; fetching it" in proc.stderr
        # One record per R1 solution, as ODA's 309,066 = 3 x 103,022; the cut-off trace is counted, not dropped.
        assert "records     99 records from 33 rows (3 per row); kept and counted: 1 x reasoning trace cut off" in (
            proc.stderr
        )
        infos = [p for m, p, _ in hub.requests if p.startswith("/api/")]
        assert len(infos) == 1

        run = tmp_path / "saves" / "tiny" / "full" / "sft-DeepMath-103K" / "seed-42"
        manifest = json.loads((run / "oda_sft_run.json").read_text())
        assert manifest["status"] == "finished"
        assert manifest["dataset"]["revision"] == SHA
        assert manifest["mode"]["mode"] == "long" and manifest["mode"]["source"] == "catalog"
        assert json.loads((run / "all_results.json").read_text())["epoch"] == 3.0

        # Registered now: --fetch asks nothing of the Hub again, and the run is skipped as finished.
        again = subprocess.run(
            [sys.executable, "-m", "oda_sft", "train", *args, "--fetch", *short],
            cwd=tmp_path, env=env, capture_output=True, text=True, timeout=900,
        )  # fmt: skip
        assert again.returncode == 0 and "skipped:" in again.stderr
        assert len([p for m, p, _ in hub.requests if p.startswith("/api/")]) == 1


def test_an_oda_subset_with_its_scores_trains(tmp_path: Path) -> None:
    """`data add oda:SUBSET --keep-scores`, then train on oda-SUBSET: the score structs stay in the Alpaca file
    and LLaMA-Factory's loader ignores them; --mode auto measures the data (short: standard)."""
    import io

    import pyarrow as pa
    import pyarrow.parquet as pq

    rows = [
        {"instruction": f"What is {i} + {i}?", "output": f"It is {2 * i}.",
         "Q_scores": {"Clarity": 7, "Deita_Complexity": None if i < 20 else 2.5},
         "QA_scores": {"IFD": float("nan") if i == 3 else 0.5, "Fail_Rate": None}}
        for i in range(32)
    ]  # fmt: skip
    shard = io.BytesIO()
    pq.write_table(pa.Table.from_pylist(rows), shard)
    repo = Repo(SHA, {"alpaca_gpt4/train-00000-of-00001.parquet": shard.getvalue(), "README.md": b"# ODA\n"})
    ddir = tmp_path / "datasets"
    ddir.mkdir()
    with serve(Hub({"OpenDataArena/OpenDataArena-scored-data": repo})) as hub:
        env = {k: v for k, v in os.environ.items() if k not in ("HF_HUB_OFFLINE",)}
        env.update(HF_ENDPOINT=hub.url, HF_HUB_CACHE=str(tmp_path / "hf"), HF_DATASETS_OFFLINE="1")
        add = [sys.executable, "-m", "oda_sft", "data", "add", "oda:alpaca_gpt4", "--keep-scores"]
        proc = subprocess.run([*add, "--dataset-dir", str(ddir)], env=env, capture_output=True, text=True, timeout=120)
        assert proc.returncode == 0, proc.stderr[-3000:]
        records = json.loads((ddir / "oda-alpaca_gpt4.json").read_text())
        assert records[3]["QA_scores"] == {"IFD": None, "Fail_Rate": None} and "Q_scores" in records[0]
        args = ["--model", "tiny", "--dataset", "oda-alpaca_gpt4", "--dataset-dir", str(ddir), "--output-root", "saves"]
        proc = subprocess.run(
            [sys.executable, "-m", "oda_sft", "train", *args, "--mode", "auto"],
            cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600,
        )  # fmt: skip
        assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    runs = list((tmp_path / "saves" / "tiny").rglob("oda_sft_run.json"))
    assert len(runs) == 1
    manifest = json.loads(runs[0].read_text())
    assert manifest["status"] == "finished" and manifest["dataset"]["revision"] == SHA
    assert manifest["mode"]["mode"] == "standard"
