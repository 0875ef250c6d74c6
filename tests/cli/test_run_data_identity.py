"""A run is trained on one content of its dataset: a dataset registered again with other content since
the run started is never resumed on (issue 16 item 7), and a finished run trained on other content says
so when it is skipped (item 8). The printed commands are run as printed."""

from __future__ import annotations

import json
import shlex
from pathlib import Path
from typing import Any

import pytest

from oda_sft.runs import space
from oda_sft.train import launcher

from conftest import Cli, snapshot, write_torch_file


def _jsonl(path: Path, answer: str) -> Path:
    records = [{"instruction": f"What is {i} + {i}?", "output": f"{2 * i} {answer}"} for i in range(20)]
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    return path


def _stand_in_trainer(monkeypatch: pytest.MonkeyPatch, finish: bool) -> list[Path]:
    """llamafactory-cli's stand-in: saves a full checkpoint, then is stopped by SIGTERM (exit 143) or
    finishes (all_results.json). Returns the configs it was launched with."""
    launched: list[Path] = []

    def trainer(argv: list[str], *_: Any, **__: Any) -> int:
        config = Path(argv[2])
        launched.append(config)
        checkpoint = config.parent / "checkpoint-3"
        checkpoint.mkdir(exist_ok=True)
        for name in ("optimizer.pt", "scheduler.pt"):
            write_torch_file(checkpoint / name)
        (checkpoint / "model.safetensors").write_bytes((2).to_bytes(8, "little") + b"{}")
        (checkpoint / "trainer_state.json").write_text("{}")
        if finish:
            (config.parent / "all_results.json").write_text("{}")
            return 0
        return 143

    monkeypatch.setattr(launcher, "run", trainer)
    monkeypatch.setattr(space, "disk_free", lambda _path: 10**15)
    monkeypatch.setenv("ODA_SFT_GPU_COUNT", "0")
    return launched


def _train(data_dir: Path, root: Path) -> list[str]:
    return ["train", "-m", "llama", "-d", "mine", "--mode", "standard", "--dataset-dir", str(data_dir), "--output-root",
            str(root), "--resumable", "--allow-no-gpu", "--", "bf16=false", "deepspeed=null"]  # fmt: skip


def _sha(run: Path) -> str:
    sha: str = json.loads((run / "oda_sft_run.json").read_text())["dataset"]["sha256"]
    return sha


def test_a_resumable_run_is_never_resumed_on_other_content(
    cli: Cli, data_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    old, new = _jsonl(tmp_path / "old.jsonl", "old"), _jsonl(tmp_path / "new.jsonl", "new")
    assert cli("data", "add", "mine", str(old), "--dataset-dir", str(data_dir)).code == 0
    launched = _stand_in_trainer(monkeypatch, finish=False)
    root = tmp_path / "saves"
    first = cli(*_train(data_dir, root))
    assert first.code == 143, (first.err, first.out, first.exception)
    run = launched[0].parent
    started_on = _sha(run)
    attempts = json.loads((run / "oda_sft_run.json").read_text())["attempts"]
    assert [a["dataset_sha256"] for a in attempts] == [started_on]  # each attempt records its data

    assert cli("data", "add", "mine", str(new), "--dataset-dir", str(data_dir), "--force").code == 0
    before = snapshot(tmp_path)
    refused = cli(*_train(data_dir, root))
    assert refused.code == 3, refused.err
    errors = [line for line in refused.err.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and refused.err.rstrip().endswith(errors[0]), refused.err
    assert f"sha256 {started_on[:12]}" in errors[0] and "mixed data" in errors[0]
    assert snapshot(tmp_path) == before and len(launched) == 1  # nothing written, no trainer, sha kept
    commands = errors[0].split("`")[1::2]
    register_again, start_over = shlex.split(commands[0]), shlex.split(commands[1])
    assert register_again[:4] == ["oda-sft", "data", "add", "mine"] and "SOURCE" in register_again
    assert start_over[-4:] == ["--force", "--", "bf16=false", "deepspeed=null"] and "--resumable" in start_over

    # The first choice, as printed with the run's own source: the run resumes on the content it started on.
    again = [str(old) if arg == "SOURCE" else arg for arg in register_again[1:]]
    assert cli(*again).code == 0
    resumed = cli(*_train(data_dir, root))
    assert resumed.code == 143 and "resuming:" in resumed.err, resumed.err
    attempts = json.loads((run / "oda_sft_run.json").read_text())["attempts"]
    assert [a["dataset_sha256"] for a in attempts] == [started_on, started_on]

    # The second choice, as printed: the old run is moved aside and the new content trained from step 0.
    assert cli("data", "add", "mine", str(new), "--dataset-dir", str(data_dir), "--force").code == 0
    over = cli(*start_over[1:])
    assert over.code == 143 and "--force: moved the earlier run to" in over.err, over.err
    assert _sha(run) != started_on and len(json.loads((run / "oda_sft_run.json").read_text())["attempts"]) == 1


def test_a_finished_run_on_other_content_says_so_when_skipped(
    cli: Cli, data_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    old, new = _jsonl(tmp_path / "old.jsonl", "old"), _jsonl(tmp_path / "new.jsonl", "new")
    assert cli("data", "add", "mine", str(old), "--dataset-dir", str(data_dir)).code == 0
    launched = _stand_in_trainer(monkeypatch, finish=True)
    root = tmp_path / "saves"
    assert cli(*_train(data_dir, root)).code == 0
    run = launched[0].parent
    trained_on = _sha(run)
    same = cli(*_train(data_dir, root))
    assert same.code == 0 and "skipped:" in same.err and "other content" not in same.err

    assert cli("data", "add", "mine", str(new), "--dataset-dir", str(data_dir), "--force").code == 0
    train = _train(data_dir, root)
    sweep = ["sweep", *train[1:3], "--datasets", "mine", "--seeds", "42", "--dry-run", *train[5:]]
    planned = cli(*sweep)  # a sweep's plan says it too
    assert planned.code == 0 and len(launched) == 1, planned.err
    row = next(line for line in planned.out.splitlines() if " skip " in f" {line} ")
    assert f"trained on other content of dataset mine (sha256 {trained_on[:12]})" in row, planned.out
    assert "--force trains the new content" in row
    skipped = cli(*train)
    assert skipped.code == 0 and len(launched) == 1, skipped.err
    line = next((line for line in skipped.err.splitlines() if line.startswith("oda-sft: skipped:")), "")
    assert line, skipped.err
    assert f"trained on other content of dataset mine (sha256 {trained_on[:12]})" in line
    command = shlex.split(line.split("`")[1])
    assert "--force" in command
    trained = cli(*command[1:])  # as printed: trains the new content, the old run moved aside
    assert trained.code == 0 and "--force: moved the earlier run to" in trained.err, trained.err
    assert len(launched) == 2 and _sha(run) != trained_on


def test_a_catalog_run_gets_the_command_that_fetches_its_own_commit_again(data_dir: Path, tmp_path: Path) -> None:
    from oda_sft.cli.app import _command
    from oda_sft.train.outdir_policy import DataChange
    from oda_sft.train.plan import plan_train
    from oda_sft.train.request import TrainRequest

    plan = plan_train(TrainRequest(model="tiny", dataset="OpenR1-Math-220k", dataset_dir=data_dir,
                                   output_root=tmp_path / "saves"))  # fmt: skip
    argv = shlex.split(DataChange("a" * 64, "b" * 64, "0123abcd" * 5).register_again(plan))
    add = _command().commands["data"].commands["add"]  # type: ignore[attr-defined]
    params = add.make_context("add", argv[3:]).params  # the data add parser accepts it as printed
    assert params["name"] == "OpenR1-Math-220k" and params["source"] is None and params["force"]
    assert params["revision"] == "0123abcd" * 5 and Path(params["dataset_dir"]) == data_dir
    # Without a recorded commit, the source is the person's to give.
    assert "SOURCE" in DataChange("a" * 64, "b" * 64, None).register_again(plan)


def test_a_deleted_registered_file_is_put_back_by_the_command_train_prints(
    cli: Cli, data_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    source = _jsonl(tmp_path / "old.jsonl", "old")
    assert cli("data", "add", "mine", str(source), "--dataset-dir", str(data_dir)).code == 0
    registered = data_dir / "mine.json"
    original = registered.read_bytes()
    launched = _stand_in_trainer(monkeypatch, finish=True)
    registered.unlink()
    refused = cli(*_train(data_dir, tmp_path / "saves"))
    assert refused.code == 2 and not launched, refused.err
    errors = [line for line in refused.err.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and f"registered with file {registered}, which does not exist" in errors[0]
    command = shlex.split(errors[0].split("`")[1])
    assert command[:4] == ["oda-sft", "data", "add", "mine"] and str(source.resolve()) in command
    put_back = cli(*command[1:])  # as printed
    assert put_back.code == 0 and put_back.out.startswith("restored mine:"), put_back.err
    assert registered.read_bytes() == original
    assert cli(*_train(data_dir, tmp_path / "saves")).code == 0 and len(launched) == 1
