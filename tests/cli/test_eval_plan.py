"""One plan per eval (issue 23, items 1 and 7): `oda-sft eval` and `oda-sft slurm -- eval` read eval's arguments in
one place and plan through one function, so they plan the same eval; and a dry run previews an eval before its
run is trained or its base model downloaded, saying what is missing with the command that makes it."""

from __future__ import annotations

import importlib
import inspect
import re
import shlex
from argparse import ArgumentParser
from pathlib import Path
from typing import Any

import pytest
from huggingface_hub.commands.download import DownloadCommand

from oda_sft.cli.results.eval import eval_args, eval_command
from oda_sft.eval.benchmarks import PRESETS

from conftest import Cli, snapshot
from ocstub import cache_judges, eval_workspace, finished_run, stub_opencompass

plan_module = importlib.import_module("oda_sft.eval.plans.plan")
batch_module = importlib.import_module("oda_sft.eval.plans.batch")
LLAMA_CONFIGS = [PRESETS["llama"].config(b) for b in PRESETS["llama"].benchmarks]


@pytest.fixture
def where(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    return eval_workspace(tmp_path, monkeypatch, gpus=1)


def test_every_eval_option_is_read_where_eval_reads_its_arguments() -> None:
    # `oda-sft slurm -- eval` parses with eval's own options and reads them with eval_args: an option eval_args
    # did not take (--recipe) made every eval job a TypeError.
    # --verbose is how the eval shows its output, not what it evaluates: a job passes it on as given.
    shown = [p for p in inspect.signature(eval_command).parameters if p != "verbose"]
    assert shown == list(inspect.signature(eval_args).parameters)


def test_eval_and_its_slurm_job_plan_the_same_eval(cli: Cli, where: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    finished_run(where)
    oc = stub_opencompass(where / "oc", LLAMA_CONFIGS, ("vllm", "lmdeploy"))
    cache_judges(where / "hf")
    planned: list[Any] = []
    real = plan_module.plan_eval

    def spy(*args: Any, **kwargs: Any) -> Any:
        planned.append(real(*args, **kwargs))
        return planned[-1]

    monkeypatch.setattr(plan_module, "plan_eval", spy)
    monkeypatch.setattr(batch_module, "plan_eval", spy)
    args = ["-m", "llama", "-d", "d1", "--suite", "math", "--recipe", "2026", "--opencompass", str(oc)]
    job = cli("slurm", "--", "eval", *args)
    assert job.code == 0, job.err
    evaluated = cli("eval", *args)
    assert evaluated.code == 99, evaluated.err  # the stand-in OpenCompass ran, and exited 99
    first, second = planned
    assert first == second
    assert first.eval.suite == "math" and {b.domain for b in first.eval.chosen} == {"math"}
    assert first.rerun == f"oda-sft eval --run {where / 'saves/llama3.1-8b/full/sft-d1/seed-42'} --suite math " \
        f"--opencompass {oc}"  # fmt: skip


def test_an_eval_job_takes_the_recipe_era(cli: Cli, where: Path) -> None:
    oc = stub_opencompass(where / "oc", [], ("transformers", "torch"))
    r = cli("slurm", "--", "eval", "-m", "tiny", "--base", "--recipe", "2025", "--opencompass", str(oc))
    assert r.code == 0, r.err
    assert r.out.rstrip("\n").endswith(
        shlex.join(["-m", "tiny", "--base", "--recipe", "2025", "--opencompass", str(oc)])
    )


def _warnings(err: str) -> list[str]:
    return [line for line in err.splitlines() if "warning: a real eval would stop: " in line]


def test_a_dry_run_before_the_run_is_trained_shows_the_eval_and_the_train_command(cli: Cli, where: Path) -> None:
    oc = stub_opencompass(where / "oc", LLAMA_CONFIGS, ("vllm", "lmdeploy"))
    cache_judges(where / "hf")
    before = snapshot(where)
    r = cli("eval", "-m", "llama", "-d", "nothere", "--suite", "math", "--opencompass", str(oc), "--dry-run")
    assert r.code == 0, r.err
    assert snapshot(where) == before
    assert "from opencompass.models import VLLMwithChatTemplate" in r.out
    assert re.search(r"# settings \w+ \(provisional: [^)]*\): .*math500", r.out)  # no tokenizer here: the id may change
    command = next(line for line in r.out.splitlines() if line.startswith("# command: "))
    assert str(oc / "bin" / "opencompass") in command and str(where / "saves/llama3.1-8b/full/sft-nothere") in command
    (warning,) = _warnings(r.err)
    assert warning.endswith("no run at saves/llama3.1-8b/full/sft-nothere/seed-42 (`oda-sft train --model llama "
                            "--dataset nothere --seed 42 --output-root saves` trains it)")  # fmt: skip


def test_a_dry_run_of_a_run_not_finished_says_how_to_finish_it(cli: Cli, where: Path) -> None:
    run = finished_run(where, status="interrupted")
    (run / "model.safetensors").unlink()
    before = snapshot(where)
    r = cli("eval", "--run", str(run), "--opencompass", str(where / "none"), "--dry-run")
    assert r.code == 0, r.err
    assert snapshot(where) == before and "# command: " in r.out
    assert any("is not a finished training run (status interrupted): finish it first" in w for w in _warnings(r.err))


def test_a_dry_run_of_a_missing_run_dir_without_its_preset_is_one_line(cli: Cli, where: Path) -> None:
    r = cli("eval", "--run", str(where / "nowhere"), "--dry-run")
    assert r.code == 2
    (line,) = [x for x in r.err.splitlines() if x.startswith("error:")]
    assert f"no run at {where / 'nowhere'}" in line and "name its preset (--model M)" in line


def test_a_dry_run_before_the_base_model_is_downloaded_names_the_download(cli: Cli, where: Path) -> None:
    before = snapshot(where)
    r = cli("eval", "-m", "qwen", "--base", "--opencompass", str(where / "none"), "--dry-run")
    assert r.code == 0, r.err
    assert snapshot(where) == before
    assert "'max_out_len'" in r.out and "# command: " in r.out
    found = [re.search(r"`(huggingface-cli download [^`]+)`", w) for w in _warnings(r.err)]
    command = next(m.group(1) for m in found if m)
    # The advice as printed, read by huggingface_hub's own parser for that command (offline: it downloads nothing).
    parser = ArgumentParser("huggingface-cli")
    DownloadCommand.register_subcommand(parser.add_subparsers())
    given = parser.parse_args(shlex.split(command)[1:])
    assert given.repo_id == "Qwen/Qwen2.5-7B" and given.func
