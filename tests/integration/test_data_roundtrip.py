"""Round trip: `data add` of a chat JSONL, then `train --mode auto --model tiny` trains on it for real."""

from __future__ import annotations

import json
from pathlib import Path

from realproc import oda_sft


def test_chat_jsonl_added_then_trained_with_mode_auto(data_dir: Path, tmp_path: Path) -> None:
    chat = tmp_path / "chat.jsonl"
    with chat.open("w", encoding="utf-8") as f:
        for i in range(32):
            turns = [
                {"from": "system", "value": "Answer with the number."},
                {"from": "human", "value": f"What is {i} plus 1?"},
                {"from": "gpt", "value": f"{i + 1}"},
                {"from": "human", "value": "And doubled?"},
                {"from": "gpt", "value": f"{2 * (i + 1)}"},
            ]
            f.write(json.dumps({"conversations": turns}) + "\n")
    added = oda_sft("data", "add", "chat_rt", str(chat), "--dataset-dir", str(data_dir), cwd=tmp_path)
    assert added.returncode == 0, added.stderr
    assert "detected shape: chat (conversations)" in added.stderr

    common = ["--model", "tiny", "--dataset", "chat_rt", "--dataset-dir", str(data_dir), "--output-root", "saves"]
    run = oda_sft("train", *common, "--mode", "auto", cwd=tmp_path)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    assert "mode: standard (fresh analysis with the tiny tokenizer: 0 of 32 samples" in run.stderr
    out = tmp_path / "saves" / "tiny" / "full" / "sft-chat_rt" / "seed-42"
    log = [json.loads(line) for line in (out / "trainer_log.jsonl").read_text().splitlines()]
    assert log and (out / "model.safetensors").is_file()
    assert json.loads((out / "all_results.json").read_text())["epoch"] == 3.0
