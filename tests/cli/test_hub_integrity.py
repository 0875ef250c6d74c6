"""What oda-sft takes from the Hub is whole and is what the Hub advertised, against the local stand-in
(tests/hubstub.py) through the real huggingface_hub calls: an offline partial cache is refused, a file whose
bytes differ from its advertised hash is refused and removed, a file name that leaves the repo is refused, a
failed connection reads as the socket's own words, and a preset's tokenizer comes through the same path."""

from __future__ import annotations

import json
import os
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from oda_sft.data.sources import hub as hub_module

from catalog_fixtures import encode, load
from catalog_fixtures import rows as fixture_rows
from conftest import Cli, snapshot
from hubstub import Hub, Repo, online

NAME, REPO_ID = "OpenR1-Math-220k", "open-r1/OpenR1-Math-220k"
SHARDS = ("data/train-00000-of-00002.parquet", "data/train-00001-of-00002.parquet")
LLAMA = "meta-llama/Llama-3.1-8B"


@pytest.fixture
def sha() -> str:
    # Each test its own commit: oda-sft's records of a commit live in the oda-sft home the tests share.
    return os.urandom(20).hex()


@pytest.fixture
def hub(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, sha: str) -> Iterator[Hub]:
    rows = fixture_rows(NAME)
    shards = {SHARDS[0]: encode(SHARDS[0], rows[:1]), SHARDS[1]: encode(SHARDS[1], rows[1:])}
    with online(
        Hub({REPO_ID: Repo(sha, {"README.md": b"# card\n", **shards})}), monkeypatch, tmp_path / "hf-cache"
    ) as stub:
        yield stub


def _add(cli: Cli, ddir: Path, *extra: str) -> tuple[int, str]:
    r = cli("data", "add", NAME, "--dataset-dir", str(ddir), *extra)
    return r.code, r.err


def _one_error(code: int, err: str) -> str:
    """The one error line, last (after oda-sft's own progress lines, if any)."""
    lines = err.splitlines()
    errors = [line for line in lines if line.startswith("error: ")]
    assert code == 2 and len(errors) == 1 and lines[-1] == errors[0], err
    assert all(line.startswith(("error: ", "oda-sft: ")) for line in lines), err
    return errors[0]


def _gets(stub: Hub, path: str) -> int:
    return sum(1 for m, p, _ in stub.requests if m == "GET" and p.endswith(path))


def test_offline_refuses_a_partial_cache_even_without_oda_sfts_file_list(
    cli: Cli, hub: Hub, tmp_path: Path, sha: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    ddir = tmp_path / "d"
    ddir.mkdir()
    code, err = _add(cli, ddir, "--dry-run")  # downloads both shards into the Hugging Face cache
    assert code == 0, err
    cached = tmp_path / "hf-cache" / f"datasets--{REPO_ID.replace('/', '--')}"
    missing = cached / "snapshots" / sha / SHARDS[1]
    missing.resolve().unlink()
    missing.unlink()
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")

    # oda-sft's file list says two shards: the missing one is named.
    err = _one_error(*_add(cli, ddir))
    assert f"HF_HUB_OFFLINE is set and {SHARDS[1]} of {REPO_ID} at {sha[:12]} is not in the Hugging Face cache" in err
    # Without that list (the copy came from another tool, which wrote refs/main), the cache alone is not trusted.
    hub_module._listing_path(REPO_ID, sha).unlink()
    hub_module._refs_path(REPO_ID).unlink()
    (cached / "refs").mkdir(exist_ok=True)
    (cached / "refs" / "main").write_text(sha)
    err = _one_error(*_add(cli, ddir))
    assert f"oda-sft has no record of the Hub's file list for {REPO_ID} at {sha[:12]}" in err
    assert "unset HF_HUB_OFFLINE for one run with the network" in err
    assert snapshot(ddir) == {}

    # The advice works: with the network, only the missing shard is downloaded, and every record registered.
    monkeypatch.delenv("HF_HUB_OFFLINE")
    code, err = _add(cli, ddir)
    assert code == 0, err
    assert (_gets(hub, SHARDS[0]), _gets(hub, SHARDS[1])) == (1, 2)
    entry = json.loads((ddir / "dataset_info.json").read_text())[NAME]
    assert json.loads((ddir / entry["file_name"]).read_text()) == load(NAME)["expected"]


@pytest.mark.parametrize("storage", ["lfs", "git"])
def test_a_file_that_differs_from_its_advertised_hash_is_refused_and_removed(
    cli: Cli, hub: Hub, tmp_path: Path, sha: str, storage: str
) -> None:
    if storage == "git":  # checked against the git blob id instead of the LFS sha256
        hub.repos[REPO_ID].in_git.add(SHARDS[1])
    ddir = tmp_path / "d"
    ddir.mkdir()
    hub.corrupt.add(SHARDS[1])
    err = _one_error(*_add(cli, ddir))
    kind = "sha256" if storage == "lfs" else "git-blob"
    assert f"{SHARDS[1]} of {REPO_ID} at {sha[:12]} is not what the Hub's file list says ({kind} " in err
    assert "it was removed from the Hugging Face cache; run the same command again" in err
    assert snapshot(ddir) == {}
    assert not list((tmp_path / "hf-cache").rglob(SHARDS[1].rsplit("/", 1)[1]))

    hub.corrupt.clear()  # the advice, as printed: the same command again
    code, err = _add(cli, ddir)
    assert code == 0, err
    assert _gets(hub, SHARDS[0]) == 1, "the file that matched is not downloaded again"


def test_a_verified_file_is_not_read_again(cli: Cli, hub: Hub, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    ddir = tmp_path / "d"
    ddir.mkdir()
    assert _add(cli, ddir, "--dry-run")[0] == 0
    read: list[Path] = []
    digest = hub_module._digest
    monkeypatch.setattr(hub_module, "_digest", lambda path, *a: read.append(path) or digest(path, *a))
    assert _add(cli, ddir, "--dry-run")[0] == 0
    assert read == []


@pytest.mark.parametrize("bad", ["data/train-0/../../../../escape.parquet", "/etc/train-0.parquet"])
def test_a_file_name_that_leaves_the_repo_is_one_line(cli: Cli, hub: Hub, tmp_path: Path, bad: str) -> None:
    hub.repos[REPO_ID].files[bad] = b"x"
    ddir = tmp_path / "d"
    ddir.mkdir()
    err = _one_error(*_add(cli, ddir))
    assert f"the Hub lists a file of {REPO_ID} whose name leaves the repository ({bad!r}): nothing was" in err
    assert not [p for m, p, _ in hub.requests if m == "GET" and "/resolve/" in p]
    assert snapshot(ddir) == {} and not (tmp_path / "escape.parquet").exists()


def test_a_failed_connection_reads_as_the_sockets_own_words(
    cli: Cli, hub: Hub, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with socket.socket() as sock:  # a port nothing listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    for host, words in [(f"127.0.0.1:{port}", "(Connection refused)"), ("oda-sft-test.invalid", "does not resolve")]:
        monkeypatch.setenv("HF_ENDPOINT", f"http://{host}")
        err = _one_error(*_add(cli, tmp_path))
        assert f"cannot reach the Hugging Face Hub at http://{host} to fetch {REPO_ID} (" in err
        assert words in err, err
        for noise in ("Request ID", "Errno", "Error(", "'", '"'):
            assert noise not in err.split(": check the network")[0], err


def _tokenizer_json() -> bytes:
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=300, initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tokenizer.train_from_iterator(["Human: What is 2+2?\nAssistant: 4"] * 4, trainer=trainer)
    return tokenizer.to_str().encode()


def test_a_presets_tokenizer_comes_through_the_same_path(
    cli: Cli, hub: Hub, data_dir: Path, sha: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    hub.models[LLAMA] = Repo(sha, {"tokenizer.json": _tokenizer_json(), "config.json": b"{}"})
    inspect = ("data", "inspect", "oda_demo", "--model", "llama", "--dataset-dir", str(data_dir), "--no-cache")
    hub.corrupt.add("tokenizer.json")
    r = cli(*inspect)
    err = _one_error(r.code, r.err)
    assert f"tokenizer.json of {LLAMA} at {sha[:12]} is not what the Hub's file list says (sha256 " in err
    hub.corrupt.clear()
    r = cli(*inspect)
    assert r.code == 0, r.err
    assert [p for m, p, _ in hub.requests if m == "GET"].count(f"/api/models/{LLAMA}/revision/main") == 2
    assert f"/{LLAMA}/resolve/{sha}/tokenizer.json" in [p for m, p, _ in hub.requests if m == "GET"]

    # Found in the cache from now on, without asking the Hub: online, and with HF_HUB_OFFLINE.
    asked = len(hub.requests)
    assert cli(*inspect).code == 0
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert cli(*inspect).code == 0
    assert len(hub.requests) == asked


def test_a_gated_tokenizer_names_the_terms_and_the_way_around(cli: Cli, hub: Hub, data_dir: Path, sha: str) -> None:
    hub.models[LLAMA] = Repo(sha, {"tokenizer.json": _tokenizer_json()})
    hub.gated.add(LLAMA)
    r = cli("data", "inspect", "oda_demo", "--model", "llama", "--dataset-dir", str(data_dir), "--no-cache")
    err = _one_error(r.code, r.err)
    assert f"error: {LLAMA} is gated: accept its terms on the Hub, then log in" in err
    assert "or pass --model-path with a local model directory" in err
