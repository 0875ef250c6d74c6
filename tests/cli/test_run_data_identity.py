"""A run is trained on one content of its dataset: a dataset registered again with other content since
the run started is never resumed on (issue 16 item 7), and a finished run trained on other content says
so when it is skipped (item 8). The printed commands are run as printed."""

from __future__ import annotations

import json
import shlex
from pathlib import Path
from typing import Any

import pytest

from oda_sft.runs import space, stamp
from oda_sft.train import launcher

from conftest import Cli, snapshot, write_torch_file


def _jsonl(path: Path, answer: str) -> Path:
    records = [{"instruction": f"What is {i} + {i}?", "output": f"{2 * i} {answer}"} for i in range(20)]
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    return path


def _stand_in_trainer(monkeypatch: pytest.MonkeyPatch, finish: bool, stamps: bool = True) -> list[Path]:
    """llamafactory-cli's stand-in: saves a full checkpoint, then is stopped by SIGTERM (exit 143) or
    finishes (all_results.json). Returns the configs it was launched with. With `stamps`, it stamps the
    checkpoint as the checkpoint_stamp patch does, from the environment oda-sft gives the trainer; without,
    it is an older oda-sft's trainer."""
    launched: list[Path] = []

    def trainer(argv: list[str], env: dict[str, str], *_: Any, **__: Any) -> int:
        config = Path(argv[2])
        launched.append(config)
        checkpoint = config.parent / "checkpoint-3"
        checkpoint.mkdir(exist_ok=True)
        for name in ("optimizer.pt", "scheduler.pt"):
            write_torch_file(checkpoint / name)
        (checkpoint / "model.safetensors").write_bytes((2).to_bytes(8, "little") + b"{}")
        if stamps:
            stamp.write(checkpoint, env[stamp.ENV])
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


def _harm_manifest(run: Path, harm: str) -> str:
    """Damage the run's manifest as `harm` says; returns the words the refusal uses for it."""
    path = run / "oda_sft_run.json"
    record = json.loads(path.read_text())
    if harm == "deleted":
        path.unlink()
        return "holds no oda_sft_run.json"
    if harm == "cut in half":
        path.write_text(path.read_text()[: len(path.read_text()) // 2])
        return "oda_sft_run.json is corrupt (not valid JSON"
    if harm == "not an object":
        path.write_text("[]")
        return "not an object"
    if harm == "wrong shape":
        path.write_text(json.dumps({"status": "running", "dataset": "mine"}))
        return "is not a run record oda-sft wrote"
    if harm == "another run's":
        path.write_text(json.dumps({**record, "seed": 7}))
        return "is another run's (model llama, dataset mine, seed 7)"
    assert harm == "an attempt on other data"  # a run an older oda-sft already resumed on other content
    record["attempts"][0]["dataset_sha256"] = "f" * 64
    path.write_text(json.dumps(record))
    return "does not show it trained on this content alone"


MANIFEST_HARMS = ["deleted", "cut in half", "not an object", "wrong shape", "another run's", "an attempt on other data"]


@pytest.mark.parametrize("harm", MANIFEST_HARMS)
def test_a_checkpoint_without_a_stamp_resumes_only_when_its_own_manifest_proves_its_data(
    cli: Cli, data_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, harm: str
) -> None:
    # An older oda-sft's checkpoint carries no stamp: only this run's manifest (and kept config) can prove
    # what it was trained on. Here the data is even the same: unproven is refused all the same.
    source = _jsonl(tmp_path / "old.jsonl", "old")
    assert cli("data", "add", "mine", str(source), "--dataset-dir", str(data_dir)).code == 0
    launched = _stand_in_trainer(monkeypatch, finish=False, stamps=False)
    root = tmp_path / "saves"
    assert cli(*_train(data_dir, root)).code == 143
    run = launched[0].parent
    said = _harm_manifest(run, harm)
    before = snapshot(tmp_path)
    refused = cli(*_train(data_dir, root))
    assert refused.code == 3, refused.err
    errors = [line for line in refused.err.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and refused.err.rstrip().endswith(errors[0]), refused.err
    assert "checkpoint-3 holds no oda_sft_checkpoint.json: it was saved by an older oda-sft" in errors[0]
    assert said in errors[0] and "mixed data" in errors[0] and "put the run's own oda_sft_run.json back" in errors[0]
    assert snapshot(tmp_path) == before and len(launched) == 1
    over = cli(*shlex.split(errors[0].split("`")[1])[1:])  # start over, as printed
    assert over.code == 143 and "--force: moved the earlier run to" in over.err, over.err


def test_a_checkpoint_without_a_stamp_and_without_its_kept_config_is_refused(
    cli: Cli, data_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert cli("data", "add", "mine", str(_jsonl(tmp_path / "a.jsonl", "a")), "--dataset-dir", str(data_dir)).code == 0
    launched = _stand_in_trainer(monkeypatch, finish=False, stamps=False)
    assert cli(*_train(data_dir, tmp_path / "saves")).code == 143
    (launched[0].parent / "oda_sft_config.yaml").unlink()
    refused = cli(*_train(data_dir, tmp_path / "saves"))
    assert refused.code == 3 and "oda_sft_config.yaml, the config it was trained with, is missing" in refused.err


@pytest.mark.parametrize("harm", MANIFEST_HARMS)
def test_a_stamped_checkpoint_resumes_on_its_own_data_whatever_became_of_the_manifest(
    cli: Cli, data_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, harm: str
) -> None:
    assert cli("data", "add", "mine", str(_jsonl(tmp_path / "a.jsonl", "a")), "--dataset-dir", str(data_dir)).code == 0
    launched = _stand_in_trainer(monkeypatch, finish=False)
    assert cli(*_train(data_dir, tmp_path / "saves")).code == 143
    run = launched[0].parent
    trained_on = _sha(run)
    stamped = stamp.read(run / "checkpoint-3")
    assert isinstance(stamped, stamp.Stamp) and (stamped.dataset, stamped.sha256) == ("mine", trained_on)
    said = _harm_manifest(run, harm)
    resumed = cli(*_train(data_dir, tmp_path / "saves"))
    assert resumed.code == 143 and "resuming:" in resumed.err and len(launched) == 2, resumed.err
    record = json.loads((run / "oda_sft_run.json").read_text())
    kept = list(run.glob("oda_sft_run.json.unusable-*"))
    if harm in ("deleted", "an attempt on other data"):
        assert not kept  # a missing manifest is simply started again; a readable one of this run is kept going
    else:  # unusable: kept aside, said so, and the new record notes it
        assert len(kept) == 1 and f"{said}" in resumed.err and f"moved it to {kept[0].name}" in resumed.err
        assert kept[0].name in record["attempts"][0]["note"]
    assert record["attempts"][-1]["dataset_sha256"] == trained_on
    assert record["attempts"][-1]["resumed_from"] == "checkpoint-3"
    if harm == "deleted":
        assert len(record["attempts"]) == 1 and "was missing" in record["attempts"][0]["note"]


@pytest.mark.parametrize("harm", ["deleted", "cut in half", "not a stamp"])
def test_a_damaged_stamp_proves_nothing(
    cli: Cli, data_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, harm: str
) -> None:
    assert cli("data", "add", "mine", str(_jsonl(tmp_path / "a.jsonl", "a")), "--dataset-dir", str(data_dir)).code == 0
    launched = _stand_in_trainer(monkeypatch, finish=False)
    assert cli(*_train(data_dir, tmp_path / "saves")).code == 143
    run = launched[0].parent
    stamped = run / "checkpoint-3" / "oda_sft_checkpoint.json"
    said = {"deleted": "holds no oda_sft_checkpoint.json", "cut in half": "is corrupt (not valid JSON)",
            "not a stamp": "is not a stamp this oda-sft wrote"}[harm]  # fmt: skip
    if harm == "deleted":
        stamped.unlink()
    else:
        stamped.write_text(stamped.read_text()[:20] if harm == "cut in half" else json.dumps({"dataset": "mine"}))
    (run / "oda_sft_run.json").unlink()
    refused = cli(*_train(data_dir, tmp_path / "saves"))
    assert refused.code == 3 and said in refused.err and "holds no oda_sft_run.json" in refused.err, refused.err
    assert len(launched) == 1


def test_a_stamped_checkpoint_knows_its_config_when_the_kept_config_and_manifest_are_gone(
    cli: Cli, data_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert cli("data", "add", "mine", str(_jsonl(tmp_path / "a.jsonl", "a")), "--dataset-dir", str(data_dir)).code == 0
    launched = _stand_in_trainer(monkeypatch, finish=False)
    assert cli(*_train(data_dir, tmp_path / "saves")).code == 143
    run = launched[0].parent
    (run / "oda_sft_config.yaml").unlink()
    (run / "oda_sft_run.json").unlink()
    refused = cli(*_train(data_dir, tmp_path / "saves"), "learning_rate=1e-4")
    assert refused.code == 3 and "trained with a different config (differs in: learning_rate)" in refused.err
    assert len(launched) == 1
