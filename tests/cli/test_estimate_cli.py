"""`oda-sft estimate` and the `sweep --dry-run` total, through the real entry point."""

from __future__ import annotations

import json
import re
import shlex
import shutil
from pathlib import Path

import pytest

from conftest import Cli


def estimate(cli: Cli, data_dir: Path, *args: str) -> tuple[int, str, str]:
    r = cli("estimate", "--model", "tiny", "--dataset", "oda_demo", "--dataset-dir", str(data_dir), *args)
    return r.code, r.out, r.err


def test_estimate_prints_both_profiles_and_what_it_rests_on(
    cli: Cli, data_dir: Path, oda_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A home of its own, so the demo's token stats are not cached yet (whatever ran before); its tiny model
    # is the shared one.
    from oda_sft import tiny_model

    tiny_model.ensure_model()
    home = tmp_path / "home"
    home.mkdir()
    (home / "models").symlink_to(oda_home / "models")
    monkeypatch.setenv("ODA_SFT_HOME", str(home))
    code, out, err = estimate(cli, data_dir, "--gpus", "1", "--gpu", "H200")
    assert code == 0, err
    assert "measuring oda_demo with the tiny tokenizer" in err
    for label in ("micro-batch x accumulation", "optimizer steps", "step time", "wall-clock", "GPU-hours"):
        assert re.search(rf"^{label}\s+\S.*\S\s+\S", out, re.M), label
    assert "tiny on oda_demo: 1 x H200" in out and "data: 128 samples" in out and "(exact;" in out
    assert "fast turns gradient checkpointing off on H200: yes" in out
    assert out.count("rests on:") == 2 and "NVIDIA H200" in out and "issue 13" in out
    assert "caveat: measured on another shape (qwen2.5-0.5b)" in out  # the table has no tiny measurement


def test_estimate_json_counts_steps_as_the_trainer_does(cli: Cli, data_dir: Path) -> None:
    code, out, err = estimate(cli, data_dir, "--gpus", "1", "--gpu", "H100-80GB", "--json")
    assert code == 0, err
    got = json.loads(out)
    assert (got["samples"], got["gpus"], got["gpu"], got["mode"]) == (128, 1, "H100-80GB", "standard")
    default, fast = got["profiles"]["default"], got["profiles"]["fast"]
    # 128 samples, 16 a step, 3 epochs: 24 steps, whatever the split (the CPU math test trains exactly these).
    assert default["optimizer_steps"] == fast["optimizer_steps"] == 24
    assert (default["micro_batch"], default["gradient_accumulation_steps"]) == (4, 4)
    assert (fast["micro_batch"], fast["gradient_accumulation_steps"], fast["checkpointing"]) == (1, 16, "off")
    assert fast["padding_fraction"] < default["padding_fraction"] / 2  # only the rounding to 8 is left
    assert fast["step_time_s"] < default["step_time_s"]
    assert default["gpu_hours"] == pytest.approx(default["wall_clock_s"] / 3600, rel=1e-3)
    assert got["fast_turns_checkpointing_off"] is True


def test_on_8_gpus_without_a_sample_count_fast_keeps_the_split_and_says_why(cli: Cli, data_dir: Path) -> None:
    info = json.loads((data_dir / "dataset_info.json").read_text())
    del info["oda_demo"]["oda_sft"]["records"]  # a dataset registered by hand: its record count is unknown
    (data_dir / "dataset_info.json").write_text(json.dumps(info))
    code, out, err = estimate(cli, data_dir, "--gpus", "8", "--json")
    assert code == 0, err
    got = json.loads(out)
    assert got["profiles"]["fast"]["micro_batch"] == 4
    assert any("sample count, which is unknown" in n for n in got["fast_decision"])
    assert got["profiles"]["default"]["optimizer_steps"] == 3  # 128 samples, 4 x 4 x 8 a step
    assert got["profiles"]["fast"]["overlap_comm"] is False  # a CPU-only tiny config has no DeepSpeed


def test_the_shipped_demos_sample_count_is_known(cli: Cli, data_dir: Path) -> None:
    # Issue 16 item 16: on 8 GPUs the demo's count was "unknown", with advice that cannot help (it is read only).
    code, out, err = estimate(cli, data_dir, "--gpus", "8", "--json")
    assert code == 0, err
    got = json.loads(out)
    assert (got["profiles"]["fast"]["micro_batch"], got["profiles"]["fast"]["gradient_accumulation_steps"]) == (1, 16)
    assert not any("unknown" in n for n in got["fast_decision"])
    assert any("128 samples on 8 ranks" in n for n in got["fast_decision"])
    from oda_sft.data.registry.dataset_dir import DatasetDir
    from oda_sft.train.profile import known_sample_count
    from oda_sft.util.paths import demo_dataset_dir

    shipped = DatasetDir.load(demo_dataset_dir()).resolve("oda_demo")  # the package's own copy
    assert known_sample_count(shipped.meta, shipped.sha256) == 128


def test_each_caveat_is_printed_once(cli: Cli, data_dir: Path) -> None:
    code, out, err = estimate(cli, data_dir, "--gpus", "8", "--gpu", "H100-80GB")
    assert code == 0, err
    caveats = [line.split(": ", 1)[1] for line in out.splitlines() if line.lstrip().startswith("caveat")]
    assert caveats and all(out.count(c) == 1 for c in caveats), out
    assert "caveat (fast): measured with micro-batch 4, not 1" in out  # one profile's own is labelled so
    assert out.count("flash-attn") <= 1 and out.count("79.1 GiB free") == 1, out


def test_an_estimate_on_next_to_nothing_says_so(cli: Cli, data_dir: Path) -> None:
    # The demo is 24 optimizer steps: the times are marked rough and say why.
    code, out, err = estimate(cli, data_dir, "--gpus", "1")
    assert code == 0, err
    assert "rough (~): the run is 24 optimizer steps" in out
    assert re.search(r"^GPU-hours\s+<0\.1\s+<0\.1$", out, re.M)
    assert re.search(r"^step time\s+~\S+ s\s+~\S+ s$", out, re.M)
    # One sample: the lengths rest on one measurement too.
    (data_dir / "one.json").write_text(json.dumps(json.loads((data_dir / "oda_demo.json").read_text())[:1]))
    info = json.loads((data_dir / "dataset_info.json").read_text())
    info["one"] = {"file_name": "one.json", "oda_sft": {"mode": "standard", "reason": "test"}}
    (data_dir / "dataset_info.json").write_text(json.dumps(info))
    r = cli("estimate", "--model", "tiny", "--dataset", "one", "--dataset-dir", str(data_dir), "--gpus", "1", "--json")
    assert r.code == 0, r.err
    rough = json.loads(r.out)["rough"]
    assert len(rough) == 2 and "come from 1 sample," in rough[0] and "the run is 3 optimizer steps" in rough[1]


def test_more_gpus_than_samples_is_refused_with_the_most_that_work(cli: Cli, data_dir: Path) -> None:
    # Issue 16 item 16: 1.4 million GPU-hours for a 1-sample dataset on 10^9 GPUs.
    code, out, err = estimate(cli, data_dir, "--gpus", "1000000000")
    assert code == 2 and out == "" and len(err.strip().splitlines()) == 1
    assert "--gpus 1,000,000,000 is more GPUs than dataset 'oda_demo' has samples (128)" in err
    advised = re.search(r"pass (--gpus [\d,]+) or fewer", err)
    assert advised is not None
    assert estimate(cli, data_dir, *advised.group(1).replace(",", "").split())[0] == 0


@pytest.fixture
def llama_tokenizer(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The llama preset's tokenizer as the Hugging Face cache holds it (no network here): the tiny one stands in."""
    from oda_sft import tiny_model

    snapshot = tmp_path / "hf" / "models--meta-llama--Llama-3.1-8B" / "snapshots" / ("0" * 40)
    snapshot.mkdir(parents=True)
    (snapshot.parents[1] / "refs").mkdir()
    (snapshot.parents[1] / "refs" / "main").write_text("0" * 40)
    shutil.copy(tiny_model.ensure_model() / "tokenizer.json", snapshot / "tokenizer.json")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    # Token stats of its own: the session's cache must not gain llama counts other tests assume absent.
    monkeypatch.setenv("ODA_SFT_HOME", str(tmp_path / "home"))


def test_a_run_that_cannot_fit_gets_no_step_time_but_what_would_fit(
    cli: Cli, data_dir: Path, llama_tokenizer: None
) -> None:
    # Issue 16 item 16: an 8B model on one GPU got a step time though its own memory line said it cannot fit.
    r = cli("estimate", "--model", "llama", "--dataset", "oda_demo", "--dataset-dir", str(data_dir), "--gpus", "1")
    errors = [line for line in r.err.splitlines() if not line.startswith("oda-sft: measuring")]
    assert r.code == 2 and r.out == "" and len(errors) == 1, r.err
    assert errors[0].startswith("error: llama does not fit on 1 x H100-80GB under either profile: a rank needs")
    advised = re.search(r"it fits with --gpus (\d+) or more", r.err)
    assert advised is not None, r.err
    fits = cli("estimate", "--model", "llama", "--dataset", "oda_demo", "--dataset-dir", str(data_dir),
               "--gpus", advised.group(1), "--json")  # fmt: skip
    assert fits.code == 0, fits.err
    assert json.loads(fits.out)["profiles"]["default"]["fits"] is True
    on_h200 = cli("estimate", "--model", "llama", "--dataset", "oda_demo", "--dataset-dir", str(data_dir),
                  "--gpus", "2", "--gpu", "A100-80GB")  # fmt: skip
    assert on_h200.code == 2 and "or --gpu H200" in on_h200.err


def test_an_unregistered_catalog_dataset_gets_the_add_command_it_needs(cli: Cli, data_dir: Path) -> None:
    # Issue 16 item 18: the advice was `oda-sft data add OpenR1-Math-220k SOURCE`; a catalog dataset needs no source.
    r = cli("estimate", "--model", "tiny", "--dataset", "OpenR1-Math-220k", "--dataset-dir", str(data_dir))
    assert r.code == 2 and r.out == "" and "measuring" not in r.err and "SOURCE" not in r.err, r.err
    advice = re.search(r"`(oda-sft data add [^`]+)`", r.err)
    assert advice is not None, r.err
    argv = shlex.split(advice.group(1))
    assert argv == ["oda-sft", "data", "add", "OpenR1-Math-220k", "--dataset-dir", str(data_dir)]
    from oda_sft.cli.app import _command

    add = _command().commands["data"].commands["add"]  # type: ignore[attr-defined]
    ctx = add.make_context("add", argv[3:])  # the data add parser accepts it as printed
    assert ctx.params["name"] == "OpenR1-Math-220k" and ctx.params["source"] is None


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--gpu", "V100"), "unknown GPU 'V100': use one of H100-80GB, H200, A100-80GB"),
        (("--gpus", "0"), "--gpus 0 must be at least 1"),
    ],
)
def test_bad_input_is_one_line(cli: Cli, data_dir: Path, args: tuple[str, ...], message: str) -> None:
    code, out, err = estimate(cli, data_dir, *args)
    assert code == 2 and message in err and out == ""
    assert len(err.strip().splitlines()) == 1


def test_an_unregistered_dataset_is_refused(cli: Cli, data_dir: Path) -> None:
    r = cli("estimate", "--model", "tiny", "--dataset", "nope", "--dataset-dir", str(data_dir))
    assert r.code == 2 and "unknown dataset 'nope'" in r.err


def test_sweep_dry_run_adds_the_grids_total_and_advice_that_works(cli: Cli, data_dir: Path) -> None:
    # Content of its own (token stats are cached by sha256 in the oda-sft home, which ODA_SFT_TEST_HOME may keep
    # from an earlier run): 127 of the demo's samples, the first one marked with this test's own tmp dir.
    samples = json.loads((data_dir / "oda_demo.json").read_text())[:127]
    samples[0]["instruction"] += f" ({data_dir})"
    (data_dir / "demo127.json").write_text(json.dumps(samples))
    info = json.loads((data_dir / "dataset_info.json").read_text())
    info["demo127"] = {"file_name": "demo127.json", "oda_sft": {"mode": "standard", "reason": "test"}}
    (data_dir / "dataset_info.json").write_text(json.dumps(info))
    sweep = ("sweep", "--model", "tiny", "--datasets", "demo127", "--seeds", "1,2,3", "--dataset-dir", str(data_dir))
    first = cli(*sweep, "--dry-run")
    assert first.code == 0, first.err
    # Three rows say train, so three runs are to start; none of them can be costed yet, and it says so.
    assert "3 runs to start" in first.err and "the steps and hours cover 0 of the 3 runs" in first.err
    assert "not counted, no token count yet: demo127" in first.err
    advice = re.search(r"`(oda-sft estimate [^`]+)`", first.err)
    assert advice is not None
    argv = shlex.split(advice.group(1))[1:]
    assert cli(*argv).code == 0  # the advised command works as printed
    second = cli(*sweep, "--dry-run", "--profile", "fast")
    assert second.code == 0, second.err
    total = re.search(r"total \(fast profile, on 1 x (\S+) .*\): 3 runs to start, ([\d,]+) optimizer steps", second.err)
    assert total is not None, second.err
    assert int(total.group(2).replace(",", "")) == 3 * 24  # 127 samples, 16 a step: 8 an epoch, 3 epochs
    assert "default profile:" in second.err
    assert second.out.count("train") == 3  # stdout stays the plan table
    assert "the steps and hours cover" not in second.err  # every run counted


def test_sweep_dry_run_with_llama_counts_the_runs_its_rows_start(cli: Cli, data_dir: Path, tmp_path: Path) -> None:
    # Issue 16 item 15: no token count for llama's tokenizer here, and the total said "0 runs to start".
    r = cli("sweep", "--model", "llama", "--datasets", "oda_demo", "--seeds", "1,2", "--dataset-dir", str(data_dir),
            "--output-root", str(tmp_path / "saves"), "--dry-run")  # fmt: skip
    assert r.code == 0, r.err
    assert [line.split()[3] for line in r.out.splitlines()[1:]] == ["train", "train"]
    assert "2 runs to start" in r.err and "the steps and hours cover 0 of the 2 runs" in r.err
    assert not (tmp_path / "saves").exists()
