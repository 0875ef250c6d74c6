"""`oda-sft data add <catalog name>` against a local stand-in for the Hub (tests/hubstub.py), through the real
huggingface_hub calls: the revision is pinned and recorded, every catalog dataset fetches and converts as
declared, a cut-off download resumes, an unreachable Hub fails fast in one line, HF_HUB_OFFLINE uses the cache,
and the advice `train` prints for an unregistered catalog dataset works as printed."""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from oda_sft.datasets_catalog import DATASETS

from catalog_fixtures import files, load
from conftest import REPO, Cli, snapshot
from hubstub import Hub, Repo, online

SHA = "0123456789abcdef0123456789abcdef01234567"
OPENR1 = "data/train-00000-of-00010.parquet"  # the published name of the fixture's shard
OLD = "fedcba9876543210fedcba9876543210fedcba98"


def _repos() -> dict[str, Repo]:
    """Every catalog repo, holding its fixture at the declared path, plus files the fetch must not touch."""
    repos: dict[str, Repo] = {}
    for name, d in DATASETS.items():
        repo = repos.setdefault(d.hf_id, Repo(SHA, {"README.md": b"---\nlicense: x\n---\n"}, refs={"v1": SHA}))
        repo.files.update(files(name))
    repos["open-r1/OpenR1-Math-220k"].files["extended/train-00000-of-00001.parquet"] = b"not read"
    return repos


@pytest.fixture
def hub(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[Hub]:
    with online(Hub(_repos()), monkeypatch, tmp_path / "hf-cache") as stub:
        yield stub


def _entry(ddir: Path, name: str) -> dict:  # type: ignore[type-arg]
    return json.loads((ddir / "dataset_info.json").read_text())[name]


def test_add_by_name_pins_the_revision_previews_and_registers(cli: Cli, hub: Hub, tmp_path: Path) -> None:
    ddir = tmp_path / "d"
    ddir.mkdir()
    r = cli("data", "add", "OpenR1-Math-220k", "--dataset-dir", str(ddir))
    assert r.code == 0, r.err
    # What will happen, before anything is written: source and revision, conversion, count, one record.
    assert f"source      open-r1/OpenR1-Math-220k at commit {SHA} (main)" in r.out
    assert f"files       {OPENR1}" in r.out
    assert "output <- generations; the first candidate with correctness_math_verify or correctness_llama" in r.out
    assert "records     3 of 4 rows; left out: 1 x no generations candidate with correctness_math_verify or " in r.out
    assert "; kept and counted: 1 x no qualifying candidate has is_reasoning_complete true: first used; 1 x " in r.out
    assert "ODA         93,733 records (OpenDataArena/OpenDataArena.github.io gh-pages 0437f13" in r.out
    assert "unverified" not in r.out, "every column OpenR1's conversion reads is in its published card"
    assert 'preview     {"instruction": "What is 2+2?"' in r.out
    assert "added OpenR1-Math-220k: 3 records" in r.out
    entry = _entry(ddir, "OpenR1-Math-220k")
    source = entry["oda_sft"]["source"]
    assert source["type"] == "hub" and source["id"] == "open-r1/OpenR1-Math-220k"
    assert source["revision"] == SHA and source["requested"] == "main"
    assert source["files"] == [OPENR1]
    assert source["conversion"]["catalog"] == "OpenR1-Math-220k" and source["kept"] == 3 and source["rows"] == 4
    assert json.loads((ddir / entry["file_name"]).read_text()) == load("OpenR1-Math-220k")["expected"]
    # Only the declared files were downloaded.
    assert not [p for m, p, _ in hub.requests if "extended/" in p or "README" in p]

    # Again: same commit, same conversion -> nothing to do, nothing downloaded or rewritten.
    def downloads() -> int:
        return sum(1 for m, p, _ in hub.requests if m == "GET" and "/resolve/" in p)

    before, gets = snapshot(ddir), downloads()
    r = cli("data", "add", "OpenR1-Math-220k", "--dataset-dir", str(ddir))
    assert r.code == 0 and "already registered from this commit with this conversion" in r.out
    assert snapshot(ddir) == before
    assert downloads() == gets, "the cached file is not downloaded again"


def test_dry_run_shows_everything_and_writes_nothing(cli: Cli, hub: Hub, tmp_path: Path) -> None:
    ddir = tmp_path / "d"
    ddir.mkdir()
    r = cli("data", "add", "Raiden-DeepSeek-R1", "--dataset-dir", str(ddir), "--dry-run")
    assert r.code == 0, r.err
    # ODA kept all 62,925 rows: the cut-off trace is counted, not dropped; the guessed columns are named.
    assert "records     2 of 2 rows; kept and counted: 1 x reasoning trace cut off (<think> never closed)" in r.out
    assert "unverified  column prompt, column response: no public source shows these (docs/data.md)" in r.out
    assert "ODA         62,925 records" in r.out
    assert r.out.rstrip().endswith("dry run: nothing written")
    assert snapshot(ddir) == {}


def test_revision_is_chosen_with_revision(cli: Cli, hub: Hub, tmp_path: Path) -> None:
    ddir = tmp_path / "d"
    ddir.mkdir()
    r = cli("data", "add", "DeepMath-103K", "--dataset-dir", str(ddir), "--revision", "v1")
    assert r.code == 0, r.err
    source = _entry(ddir, "DeepMath-103K")["oda_sft"]["source"]
    assert source["requested"] == "v1" and source["revision"] == SHA
    before = snapshot(ddir)
    hub.repos["zwhe99/DeepMath-103K"].sha = OLD  # main moves on upstream
    r = cli("data", "add", "DeepMath-103K", "--dataset-dir", str(ddir))
    assert r.code == 2 and r.err.splitlines()[-1].startswith("error: DeepMath-103K is already registered")
    assert f"from commit {SHA[:12]}, not {OLD[:12]}: pass --force" in r.err
    assert not [p for m, p, _ in hub.requests if m == "GET" and OLD in p], "refused before downloading"
    assert snapshot(ddir) == before
    r = cli("data", "add", "DeepMath-103K", "--dataset-dir", str(ddir), "--revision", "nope")
    assert r.code == 2 and r.err.count("\n") == 1
    assert "zwhe99/DeepMath-103K has no revision 'nope': give a branch, tag or commit" in r.err
    assert snapshot(ddir) == before


@pytest.mark.parametrize("name", sorted(DATASETS))
def test_every_catalog_dataset_fetches_and_converts_as_declared(name: str, cli: Cli, hub: Hub, tmp_path: Path) -> None:
    ddir = tmp_path / "d"
    ddir.mkdir()
    r = cli("data", "add", name, "--dataset-dir", str(ddir))
    assert r.code == 0, r.err
    entry = _entry(ddir, name)
    assert entry["oda_sft"]["source"]["revision"] == SHA
    written = json.loads((ddir / entry["file_name"]).read_text())
    assert written == load(name)["expected"]
    assert entry["oda_sft"]["source"]["files"] == sorted(load(name)["files"]), "every published file declared"


def test_records_per_row_and_both_light_r1_files_are_shown(cli: Cli, hub: Hub, tmp_path: Path) -> None:
    r = cli("data", "add", "DeepMath-103K", "--dataset-dir", str(tmp_path), "--dry-run")
    assert r.code == 0, r.err
    assert "output <- r1_solution_1, r1_solution_2, r1_solution_3 (one record each)" in r.out
    assert "records     5 records from 2 rows (3 per row); left out: 1 x empty response" in r.out
    assert "ODA         309,066 records" in r.out
    r = cli("data", "add", "Light-R1-SFTData", "--dataset-dir", str(tmp_path), "--dry-run")
    assert r.code == 0, r.err
    assert "files       stage1-76k.json, stage2-3k.json" in r.out and "ODA         79,439 records" in r.out


def test_an_interrupted_download_resumes_on_the_next_run(
    cli: Cli, hub: Hub, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import huggingface_hub.constants

    # huggingface_hub writes what it received in 10 MiB chunks; smaller chunks let a small file be cut mid-way.
    monkeypatch.setattr(huggingface_hub.constants, "DOWNLOAD_CHUNK_SIZE", 512)
    ddir = tmp_path / "d"
    ddir.mkdir()
    path = OPENR1
    size = len(hub.repos["open-r1/OpenR1-Math-220k"].files[path])
    hub.cut_once.add(path)
    r = cli("data", "add", "OpenR1-Math-220k", "--dataset-dir", str(ddir))
    errors = [line for line in r.err.splitlines() if line.startswith("error:")]
    assert r.code == 2 and len(errors) == 1 and r.err.splitlines()[-1] == errors[0], r.err
    assert f"the download of {path} from open-r1/OpenR1-Math-220k was interrupted" in r.err
    assert "run the same command again; it resumes from the partial file" in r.err
    assert snapshot(ddir) == {}, "nothing is registered from a partial download"
    partial = list((tmp_path / "hf-cache").rglob("*.incomplete"))
    assert len(partial) == 1 and 0 < partial[0].stat().st_size < size
    kept = partial[0].stat().st_size

    r = cli("data", "add", "OpenR1-Math-220k", "--dataset-dir", str(ddir))
    assert r.code == 0, r.err
    ranges = [rng for m, p, rng in hub.requests if m == "GET" and p.endswith(path) and rng]
    assert ranges == [f"bytes={kept}-"], "the second run asked only for the missing bytes"
    entry = _entry(ddir, "OpenR1-Math-220k")
    assert json.loads((ddir / entry["file_name"]).read_text()) == load("OpenR1-Math-220k")["expected"]


def test_offline_uses_the_cached_copy_and_refuses_a_missing_one(
    cli: Cli, hub: Hub, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    first, second = tmp_path / "a", tmp_path / "b"
    first.mkdir()
    second.mkdir()
    assert cli("data", "add", "QwQ-LongCoT-130K", "--dataset-dir", str(first)).code == 0
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")  # nothing may be asked of the network now
    r = cli("data", "add", "QwQ-LongCoT-130K", "--dataset-dir", str(second))
    assert r.code == 0, r.err
    assert _entry(second, "QwQ-LongCoT-130K")["oda_sft"]["source"]["revision"] == SHA
    assert (first / "QwQ-LongCoT-130K.json").read_bytes() == (second / "QwQ-LongCoT-130K.json").read_bytes()

    r = cli("data", "add", "DeepMath-103K", "--dataset-dir", str(second))
    assert r.code == 2 and r.err.count("\n") == 1
    assert "HF_HUB_OFFLINE is set and zwhe99/DeepMath-103K at 'main' is not in the Hugging Face cache" in r.err
    assert "`oda-sft data add DeepMath-103K PATH`" in r.err


def test_a_local_copy_is_converted_the_same_way(cli: Cli, tmp_path: Path) -> None:
    copy = tmp_path / "copy"
    fixture = load("QwQ-LongCoT-130K-2")
    (copy / "data").mkdir(parents=True)
    for path, data in files("QwQ-LongCoT-130K-2").items():
        (copy / path).write_bytes(data)
    ddir = tmp_path / "d"
    ddir.mkdir()
    r = cli("data", "add", "QwQ-LongCoT-130K-2", str(copy), "--dataset-dir", str(ddir))
    assert r.code == 0, r.err
    assert f"local copy {copy}" in r.out
    entry = _entry(ddir, "QwQ-LongCoT-130K-2")
    assert entry["oda_sft"]["source"]["type"] == "local"
    assert json.loads((ddir / entry["file_name"]).read_text()) == fixture["expected"]


def test_a_local_file_must_be_a_declared_file(cli: Cli, tmp_path: Path) -> None:
    wrong = tmp_path / "math.jsonl"
    wrong.write_text("{}\n")
    r = cli("data", "add", "AM-Thinking-v1-Distilled-code", str(wrong), "--dataset-dir", str(tmp_path))
    assert r.code == 2 and r.err.count("\n") == 1
    assert "math.jsonl is not one of AM-Thinking-v1-Distilled-code's declared files (code.jsonl)" in r.err


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["OpenR1-Math-220k", "--map", "instruction=a,output=b"], "its files and conversion are declared"),
        (["OpenR1-Math-220k", "someone/else"], "leave SOURCE out to fetch open-r1/OpenR1-Math-220k"),
        (["my_data"], "it needs a SOURCE: `oda-sft data add my_data SOURCE --dataset-dir "),
        (["my_data", "x.jsonl", "--revision", "main"], "--revision and --dry-run apply to catalog datasets"),
    ],
)
def test_bad_catalog_requests_are_one_line(cli: Cli, tmp_path: Path, args: list[str], message: str) -> None:
    r = cli("data", "add", *args, "--dataset-dir", str(tmp_path))
    assert r.code == 2 and message in r.err and r.err.count("\n") == 1, r.err


def test_train_names_the_fix_and_the_printed_command_works(cli: Cli, hub: Hub, tmp_path: Path) -> None:
    ddir = tmp_path / "my data"
    ddir.mkdir()
    r = cli("train", "-m", "tiny", "-d", "DeepMath-103K", "--dataset-dir", str(ddir), "--output-root", str(tmp_path))
    error = r.err.splitlines()[-1]
    assert r.code == 2 and error.startswith("error: dataset DeepMath-103K is not registered in"), r.err
    command = error.split("`")[1]
    assert command == f"oda-sft data add DeepMath-103K --dataset-dir '{ddir}'"
    assert "or pass --fetch" in r.err
    argv = shlex.split(command)
    assert cli(*argv[1:]).code == 0
    r = cli("train", "-m", "tiny", "-d", "DeepMath-103K", "--dataset-dir", str(ddir), "--dry-run")
    assert r.code == 0 and "is in the catalog but not registered" not in r.err


def test_fetch_runs_once_on_the_login_node_and_not_on_the_nodes(cli: Cli, hub: Hub, tmp_path: Path) -> None:
    ddir = tmp_path / "d"
    ddir.mkdir()
    script = tmp_path / "job.sbatch"
    r = cli("slurm", "--nodes", "2", "--gpus-per-node", "0", "-o", str(script), "--",
            "sweep", "--model", "tiny", "--datasets", "DeepMath-103K,OpenO1-SFT", "--seeds", "1,2", "--fetch",
            "--dataset-dir", str(ddir), "--output-root", str(tmp_path / "saves"))  # fmt: skip
    assert r.code == 0, r.err
    info = json.loads((ddir / "dataset_info.json").read_text())
    assert {"DeepMath-103K", "OpenO1-SFT"} <= set(info)
    infos = [p for m, p, _ in hub.requests if p.startswith("/api/datasets/")]
    assert len(infos) == 2, "each dataset resolved once, for the whole grid"
    text = script.read_text()
    assert "--fetch" not in text and "DeepMath-103K,OpenO1-SFT" in text


def test_train_fetch_dry_run_fetches_nothing(cli: Cli, hub: Hub, tmp_path: Path) -> None:
    ddir = tmp_path / "d"
    ddir.mkdir()
    r = cli("train", "-m", "llama", "-d", "OpenO1-SFT", "--fetch", "--dry-run", "--dataset-dir", str(ddir))
    assert r.code == 0, r.err
    assert "--fetch: OpenO1-SFT is not registered; the real run fetches it first" in r.err
    assert hub.requests == [] and snapshot(ddir) == {}


def test_an_unreachable_hub_fails_in_one_line_within_seconds(tmp_path: Path) -> None:
    import socket

    with socket.socket() as sock:  # a port nothing listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    env = {k: v for k, v in os.environ.items() if not k.startswith("HF_")}
    env.update(HF_ENDPOINT=f"http://127.0.0.1:{port}", HF_HUB_CACHE=str(tmp_path / "hf"), PYTHONPATH=str(REPO / "src"))
    start = time.monotonic()
    proc = subprocess.run(
        [sys.executable, "-m", "oda_sft", "data", "add", "OpenR1-Math-220k", "--dataset-dir", str(tmp_path)],
        capture_output=True, text=True, env=env, timeout=60,
    )  # fmt: skip
    elapsed = time.monotonic() - start
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1, proc.stderr
    assert proc.stderr.startswith("error: cannot reach the Hugging Face Hub at http://127.0.0.1:")
    assert "set HF_HUB_OFFLINE=1 to use a copy already in the Hugging Face cache" in proc.stderr
    assert "`oda-sft data add OpenR1-Math-220k PATH`" in proc.stderr
    assert elapsed < 5, f"took {elapsed:.1f} s"


def test_a_copy_whose_row_count_differs_from_the_catalogs_is_said(cli: Cli, tmp_path: Path) -> None:
    """Issue 22 item 12: a 5-row local copy registered as Fast-Math-R1-SFT (7,900 rows published) without a word."""
    copy = tmp_path / "copy"
    for path, data in files("Fast-Math-R1-SFT").items():
        (copy / path).parent.mkdir(parents=True, exist_ok=True)
        (copy / path).write_bytes(data)
    rows = sum(len(r) for r in load("Fast-Math-R1-SFT")["files"].values())
    ddir = tmp_path / "d"
    ddir.mkdir()
    r = cli("data", "add", "Fast-Math-R1-SFT", str(copy), "--dataset-dir", str(ddir))
    assert r.code == 0, r.err
    assert (f"warning     {rows:,} rows read, where the catalog counts 7,900 in these files (at 67168ba): this copy "
            "differs from the published data (a partial copy, or another revision)") in r.out  # fmt: skip


def test_the_catalogs_count_is_of_the_files_read() -> None:
    from oda_sft.data.registry.fetch import published_rows

    def count(name: str, read: list[str]) -> int | None:
        evidence = DATASETS[name].evidence
        assert evidence is not None
        return published_rows(evidence, read)

    assert count("Fast-Math-R1-SFT", ["data/train-00000.parquet"]) == 7_900
    assert count("Light-R1-SFTData", ["stage1-76k.json", "stage2-3k.json"]) == 75_906 + 3_533
    assert count("Light-R1-SFTData", ["stage2-3k.json"]) == 3_533
    two = ["data/train-00000-of-00002.parquet", "data/train-00001-of-00002.parquet"]
    assert count("QwQ-LongCoT-130K", two) == 133_102 and count("QwQ-LongCoT-130K", ["train-00000-of-00002.parquet"])
    assert count("OpenR1-Math-220k", ["data/train-0.parquet", "extended/train-0.parquet"]) == 93_733 + 131_396
    assert count("Bespoke-Stratos-17k", ["data/train-00000-of-00001.parquet"]) is None  # no count published


def test_a_registered_catalog_file_edited_or_deleted_is_put_back_by_the_add(cli: Cli, hub: Hub, tmp_path: Path) -> None:
    ddir = tmp_path / "d"
    ddir.mkdir()
    assert cli("data", "add", "OpenR1-Math-220k", "--dataset-dir", str(ddir)).code == 0
    data = ddir / _entry(ddir, "OpenR1-Math-220k")["file_name"]
    original = data.read_bytes()
    data.write_bytes(original.replace(b"2+2", b"3+3"))  # edited in place: not "already registered"
    refused = cli("data", "add", "OpenR1-Math-220k", "--dataset-dir", str(ddir))
    assert refused.code == 2 and "was changed after it was registered" in refused.err, refused.out
    assert data.read_bytes() != original
    done = cli("data", "add", "OpenR1-Math-220k", "--dataset-dir", str(ddir), "--force")
    assert done.code == 0 and "restored OpenR1-Math-220k" in done.out and data.read_bytes() == original
    data.unlink()
    done = cli("data", "add", "OpenR1-Math-220k", "--dataset-dir", str(ddir))
    assert done.code == 0 and "restored OpenR1-Math-220k" in done.out and data.read_bytes() == original
