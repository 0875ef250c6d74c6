"""Pure or fast parts of runs: resuming past a half-written checkpoint, a missing launcher, the cache key,
and `runs plot` leaving files alone when there is nothing to draw."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from oda_sft.data import tokenized_cache
from oda_sft.errors import LaunchError
from oda_sft.train import launcher as launch
from oda_sft.train import outdir_policy
from oda_sft.train import run as runner
from oda_sft.train.plan import TrainPlan, plan_train
from oda_sft.train.request import TrainRequest

from conftest import Cli, snapshot, write_torch_file


def _plan(data_dir: Path, root: Path, **extra: object) -> TrainPlan:
    request = TrainRequest(model="tiny", dataset="oda_demo", dataset_dir=data_dir, output_root=root, **extra)  # type: ignore[arg-type]
    return plan_train(request)


def _full_checkpoint(path: Path) -> None:
    path.mkdir(parents=True)
    for name in ("optimizer.pt", "scheduler.pt"):
        write_torch_file(path / name)
    (path / "model.safetensors").write_bytes((2).to_bytes(8, "little") + b"{}")  # an empty safetensors file
    (path / "trainer_state.json").write_text("{}")


def test_a_checkpoint_cut_short_is_moved_aside_and_the_previous_one_resumes(
    data_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    plan = _plan(data_dir, tmp_path, resumable=True, save_steps=2)
    out = plan.output_dir
    _full_checkpoint(out / "checkpoint-4")
    (out / "checkpoint-6").mkdir()
    (out / "checkpoint-6" / "model.safetensors").write_text("half")  # killed before trainer_state.json
    (out / "oda_sft_config.yaml").write_text(yaml.safe_dump(plan.config))
    assert outdir_policy.set_aside_incomplete(plan, ("checkpoint-4", "checkpoint-6")) == "checkpoint-4"
    moved = [p.name for p in out.iterdir() if p.name.startswith("incomplete.checkpoint-6.")]
    assert len(moved) == 1 and (out / moved[0] / "model.safetensors").read_text() == "half"
    assert not (out / "checkpoint-6").exists() and "cut short" in capsys.readouterr().err


def test_a_missing_launcher_writes_nothing(data_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    plan = _plan(data_dir, tmp_path / "saves")
    monkeypatch.setattr(launch, "launcher_path", lambda: str(tmp_path / "no-venv" / "llamafactory-cli"))
    with pytest.raises(LaunchError, match="is missing: install LLaMA-Factory"):
        runner.start_run(plan)
    assert not (tmp_path / "saves").exists()


def test_the_cache_key_follows_how_llamafactory_reads_the_file(data_dir: Path, tmp_path: Path) -> None:
    config = _plan(data_dir, tmp_path).config
    plain = tokenized_cache.cache_key(config, "abc", {"file_name": "d.json"})
    assert tokenized_cache.cache_key(config, "abc", {"file_name": "d.json", "oda_sft": {"mode": "long"}}) == plain
    with_columns = {"file_name": "d.json", "columns": {"prompt": "q", "response": "a"}}
    assert tokenized_cache.cache_key(config, "abc", with_columns) != plain
    assert tokenized_cache.cache_key(config, "abd", {"file_name": "d.json"}) != plain
    assert tokenized_cache.cache_key({**config, "cutoff_len": 32768}, "abc", {"file_name": "d.json"}) != plain
    assert tokenized_cache.cache_key({**config, "seed": 7}, "abc", {"file_name": "d.json"}) == plain


def test_runs_plot_with_nothing_to_draw_leaves_the_target_alone(cli: Cli, tmp_path: Path) -> None:
    (tmp_path / "saves").mkdir()
    (tmp_path / "keep.png").write_bytes(b"mine")
    before = snapshot(tmp_path)
    r = cli("runs", "plot", "--output-root", str(tmp_path / "saves"), "-o", str(tmp_path / "keep.png"))
    assert r.code == 2 and "nothing to plot" in r.err
    assert snapshot(tmp_path) == before
