"""`oda-sft train` and `list-datasets` through the CLI: exit codes, messages, nothing written."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from oda_sft.datasets_catalog import DATASETS
from oda_sft.util.paths import demo_dataset_dir

from conftest import Cli, snapshot


def test_dry_run_prints_the_long_recipe_for_a_catalog_dataset(cli: Cli, data_dir: Path, tmp_path: Path) -> None:
    saves = tmp_path / "saves"
    r = cli("train", "--model", "llama", "--dataset", "OpenR1-Math-220k", "--dry-run",
            "--dataset-dir", str(data_dir), "--output-root", str(saves), "--seed", "43")  # fmt: skip
    assert r.code == 0, r.err
    config = yaml.safe_load(r.out)  # stdout is YAML; command and env are comments
    assert config["cutoff_len"] == 32768 and config["packing"] is True and config["learning_rate"] == 3.0e-5
    assert config["seed"] == 43 and config["dataset"] == "OpenR1-Math-220k"
    assert config["output_dir"] == str(saves / "llama3.1-8b/full/sft-OpenR1-Math-220k/seed-43")
    assert "# command: " in r.out and "llamafactory-cli train" in r.out
    assert "mode: long (OpenR1-Math-220k is one of the recipe's 17 long-CoT datasets)" in r.err
    assert "not registered" in r.err  # a dry run warns; a real run refuses
    assert not saves.exists()


def test_dry_run_shows_the_multi_node_environment(cli: Cli, data_dir: Path, tmp_path: Path) -> None:
    r = cli("train", "-m", "qwen", "-d", "oda_demo", "--dry-run", "--dataset-dir", str(data_dir),
            "--output-root", str(tmp_path), "--nnodes", "2", "--node-rank", "1", "--nproc-per-node", "8",
            "--master-addr", "10.1.2.3", "--master-port", "29600")  # fmt: skip
    assert r.code == 0, r.err
    for line in ("FORCE_TORCHRUN=1", "NNODES=2", "NODE_RANK=1", "NPROC_PER_NODE=8", "MASTER_ADDR=10.1.2.3",
                 "MASTER_PORT=29600"):  # fmt: skip
        assert f"# env: {line}" in r.out
    assert "mode: standard (every sample of the demo" in r.err


def test_unknown_length_defaults_to_standard_and_says_so(cli: Cli, data_dir: Path, tmp_path: Path) -> None:
    info = json.loads((data_dir / "dataset_info.json").read_text())
    info["plain"] = {"file_name": "not_downloaded_yet.json"}  # no file: nothing to measure, so the default decides
    (data_dir / "dataset_info.json").write_text(json.dumps(info))
    r = cli("train", "-m", "llama", "-d", "plain", "--dry-run", "--dataset-dir", str(data_dir),
            "--output-root", str(tmp_path))  # fmt: skip
    assert yaml.safe_load(r.out)["cutoff_len"] == 4096
    assert "length of plain is unknown (no data file), so standard is assumed" in r.err
    # The dry run shows the config, and fails as the real run would: the registered file is missing (item 15).
    assert r.code == 2 and "registered with file" in r.err and "which does not exist" in r.err
    assert not (tmp_path / "llama3.1-8b").exists()


def test_overrides_land_in_the_config_and_are_flagged(cli: Cli, data_dir: Path, tmp_path: Path) -> None:
    r = cli("train", "-m", "tiny", "-d", "oda_demo", "--dry-run", "--dataset-dir", str(data_dir),
            "--output-root", str(tmp_path), "--", "logging_steps=1", "report_to=none", "max_grad_norm=0.5")  # fmt: skip
    assert r.code == 0, r.err
    config = yaml.safe_load(r.out)
    assert (config["logging_steps"], config["report_to"], config["max_grad_norm"]) == (1, "none", 0.5)
    assert "overrides (not the recipe)" in r.err


def test_standard_mode_on_long_data_warns(cli: Cli, data_dir: Path, tmp_path: Path) -> None:
    r = cli("train", "-m", "qwen", "-d", "OpenThoughts-114k", "--mode", "standard", "--dry-run",
            "--dataset-dir", str(data_dir), "--output-root", str(tmp_path))  # fmt: skip
    assert r.code == 0
    assert "truncates every sample at 4096" in r.err


BAD_INPUTS = [
    (["-m", "lama", "-d", "oda_demo"], 2, "unknown model 'lama' (did you mean llama?)"),
    (["-m", "llama", "-d", "OpenR1-Math"], 2, "unknown dataset 'OpenR1-Math' (did you mean OpenR1-Math-220k"),
    (["-m", "llama", "-d", "../etc"], 2, "invalid dataset name '../etc'"),
    (["-m", "llama", "-d", "a/b"], 2, "invalid dataset name 'a/b'"),
    (["-m", "llama", "-d", "x: y"], 2, "invalid dataset name 'x: y'"),
    (["-m", "llama", "-d", "$(rm -rf ~)"], 2, "invalid dataset name"),
    (["-m", "llama", "-d", "a;b"], 2, "invalid dataset name"),
    (["-m", "llama", "-d", "oda_demo", "--seed", "abc"], 2, "'abc' is not a valid integer"),
    (["-m", "llama", "-d", "oda_demo", "--seed", "-1"], 2, "--seed -1 must be an integer from 0 to 4294967295"),
    (["-m", "llama", "-d", "oda_demo", "--seed", "4294967296"], 2, "--seed 4294967296 must be an integer from 0"),
    (["-m", "llama", "-d", "oda_demo", "--model-path", "/no/ckpt"], 2, "--model-path /no/ckpt does not exist"),
    (["-m", "llama", "-d", "oda_demo", "--", "lr"], 2, "malformed override 'lr'"),
    (["-m", "llama", "-d", "oda_demo", "--", "bad key=1"], 2, "malformed override 'bad key=1'"),
    (["-m", "llama", "-d", "oda_demo", "--", "seed=3"], 2, "override seed= is not allowed: use --seed"),
    (["-m", "llama", "-d", "oda_demo", "--", "overwrite_output_dir=true"], 2, "use --force"),
    (["-m", "llama", "-d", "oda_demo", "--nnodes", "2"], 2, "--nnodes 2 needs --master-addr"),
    (["-m", "llama", "-d", "oda_demo", "--mode", "medium"], 2, "Invalid value for '--mode'"),
    (["-m", "qwen3", "-d", "oda_demo", "--mode", "standard"], 2, "has only the long config"),
]  # fmt: skip


@pytest.mark.parametrize(("args", "code", "message"), BAD_INPUTS)
@pytest.mark.parametrize("dry_run", [False, True])
def test_bad_input(
    cli: Cli, data_dir: Path, tmp_path: Path, args: list[str], code: int, message: str, dry_run: bool
) -> None:
    saves = tmp_path / "saves"
    before = snapshot(data_dir)
    extra = ["--dry-run"] if dry_run else []
    split = args.index("--") if "--" in args else len(args)
    r = cli("train", *args[:split], "--dataset-dir", str(data_dir), "--output-root", str(saves), *extra, *args[split:])
    assert r.code == code, (r.out, r.err)
    assert message in r.err
    assert r.err.startswith("error: ") and r.err.count("\n") == 1, "one line, no traceback"
    assert not saves.exists() and snapshot(data_dir) == before


def test_missing_dataset_dir(cli: Cli, tmp_path: Path) -> None:
    r = cli("train", "-m", "tiny", "-d", "oda_demo", "--dataset-dir", str(tmp_path / "nope"),
            "--output-root", str(tmp_path / "saves"))  # fmt: skip
    assert r.code == 2 and "dataset dir" in r.err and "does not exist" in r.err
    assert not (tmp_path / "saves").exists()


def test_a_dir_without_dataset_info_is_an_empty_registry(cli: Cli, tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    r = cli("train", "-m", "tiny", "-d", "my_data", "--dataset-dir", str(tmp_path / "empty"),
            "--output-root", str(tmp_path / "saves"))  # fmt: skip
    assert r.code == 2 and f"unknown dataset 'my_data': register it in {tmp_path / 'empty'}/dataset_info.json" in r.err
    # The printed command names the same dataset dir, so it registers where this run looks.
    assert f"`oda-sft data add my_data SOURCE --dataset-dir {tmp_path / 'empty'}`" in r.err
    assert not (tmp_path / "saves").exists() and not list((tmp_path / "empty").iterdir())
    # The demo ships inside the package: it resolves there whatever the dataset dir holds.
    r = cli("train", "-m", "tiny", "-d", "oda_demo", "--dataset-dir", str(tmp_path / "empty"), "--dry-run")
    assert r.code == 0 and f"dataset_dir: {demo_dataset_dir()}" in r.out


def test_malformed_dataset_info(cli: Cli, tmp_path: Path) -> None:
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "dataset_info.json").write_text('{"a": {"file_name": "x.json",}}')
    r = cli("list-datasets", "--dataset-dir", str(tmp_path / "d"))
    assert r.code == 2 and "not valid JSON (line 1, column" in r.err


def test_catalog_dataset_must_be_registered_to_train(cli: Cli, data_dir: Path, tmp_path: Path) -> None:
    before = snapshot(data_dir)
    r = cli("train", "-m", "llama", "-d", "DeepMath-103K", "--dataset-dir", str(data_dir),
            "--output-root", str(tmp_path / "saves"))  # fmt: skip
    assert r.code == 2 and "is not registered" in r.err
    assert not (tmp_path / "saves").exists() and snapshot(data_dir) == before


def test_debug_shows_the_traceback(cli: Cli, data_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ODA_SFT_DEBUG", "1")
    r = cli("train", "-m", "lama", "-d", "oda_demo", "--dataset-dir", str(data_dir), "--dry-run")
    assert r.code != 0 and r.exception is not None and "unknown model" in str(r.exception)


def test_list_datasets_table_and_json(cli: Cli, data_dir: Path) -> None:
    r = cli("list-datasets", "--dataset-dir", str(data_dir))
    assert r.code == 0
    lines = r.out.splitlines()
    assert lines[0].split()[:4] == ["NAME", "AFFILIATION", "HF_ID", "MODE"]
    assert len(lines) == 1 + len(DATASETS) + 1  # header, the 17, the demo
    assert any(line.startswith("oda_demo ") and " standard " in line for line in lines)
    rows = json.loads(cli("list-datasets", "--json", "--dataset-dir", str(data_dir)).out)
    assert len([r for r in rows if r["source"] == "catalog"]) == 17
    assert {"name": "AM-Thinking-v1-Distilled-code", "mode": "long"}.items() <= rows[11].items()
    demo = next(r for r in rows if r["name"] == "oda_demo")
    assert demo == {"name": "oda_demo", "affiliation": "", "hf_id": "", "mode": "standard",
                    "source": "registered", "registered": True}  # fmt: skip


def test_version_and_help(cli: Cli) -> None:
    assert cli("--version").out.startswith("oda-sft ")
    r = cli("train", "--help")
    assert r.code == 0 and "--nproc-per-node" in r.out and "--dry-run" in r.out


def test_an_unwritable_output_root_is_one_line(cli: Cli, data_dir: Path) -> None:
    r = cli("train", "-m", "tiny", "-d", "oda_demo", "--dataset-dir", str(data_dir), "--output-root", "/proc/oda")
    assert r.code == 6, r.err
    errors = [line for line in r.err.splitlines() if not line.startswith("oda-sft: ")]
    assert len(errors) == 1 and errors[0].startswith("error: ") and "/proc/oda" in errors[0], r.err
    assert "Traceback" not in r.err


@pytest.mark.parametrize("args", [[], ["data"]])
def test_no_arguments_shows_the_help_not_an_error(cli: Cli, args: list[str]) -> None:
    r = cli(*args)
    assert r.code == 2 and not r.err.startswith("error:")
    assert "Usage: oda-sft" in r.err and "Commands:" in r.err.splitlines()
