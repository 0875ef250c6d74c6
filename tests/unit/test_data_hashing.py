"""A data file's identity comes from its content: the sha256 cache never trusts metadata alone."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

import pytest

from oda_sft.data.registry import hashing
from oda_sft.errors import DatasetError

from conftest import Cli


@pytest.fixture(autouse=True)
def _fresh_cache(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(hashing, "_cache", None)


def _big(path: Path, fill: bytes = b"a") -> Path:
    path.write_bytes(fill * (hashing.SMALL * 8))
    return path


def _cached(path: Path) -> list[Any]:
    entry = hashing._the_cache().entries[str(path.resolve())]
    return entry


def test_a_same_size_edit_with_the_old_mtime_restored_is_seen(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(hashing, "RACY_NS", 0)  # trust the cache at once, as if the file were old
    f = _big(tmp_path / "d.json")
    first = hashing.file_sha256(f)
    _cached(f)[6] = "0" * 64
    assert hashing.file_sha256(f) == "0" * 64  # nothing changed: the remembered hash is used

    st = f.stat()
    data = bytearray(f.read_bytes())
    data[hashing.SAMPLE_BLOCK + 10] = ord("b")  # the same size, a byte no sampled block covers
    f.write_bytes(bytes(data))
    os.utime(f, ns=(st.st_atime_ns, st.st_mtime_ns))  # mtime put back, as `cp -p` or `touch -r` would
    assert f.stat().st_size == st.st_size and f.stat().st_mtime_ns == st.st_mtime_ns
    now = hashing.file_sha256(f)
    assert now == hashlib.sha256(bytes(data)).hexdigest() != first


def test_a_listing_trusts_only_the_exact_stamp_it_hashed_under(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """list-datasets looks a hash up by stat alone (hashing.listed): size, mtime, ctime, inode, device. An edit
    that keeps the size and puts the mtime back still moves ctime, which no tool can set back."""
    monkeypatch.setattr(hashing, "RACY_NS", 0)
    f = _big(tmp_path / "d.json")
    sha = hashing.file_sha256(f)
    assert hashing.listed(f) == sha
    st = f.stat()
    data = bytearray(f.read_bytes())
    data[hashing.SAMPLE_BLOCK + 10] = ord("b")
    f.write_bytes(bytes(data))
    os.utime(f, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert hashing.listed(f) is None  # not trusted: the caller hashes it (identify), which sees the new content
    assert hashing.file_sha256(f) == hashlib.sha256(bytes(data)).hexdigest()
    assert hashing.listed(tmp_path / "missing.json") is None


def test_a_sampled_block_that_differs_means_a_full_hash(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(hashing, "RACY_NS", 0)
    f = _big(tmp_path / "d.json")
    real = hashing.file_sha256(f)
    entry = _cached(f)
    entry[6] = "0" * 64
    entry[5] = "another sample"  # as if the metadata could not tell, but the content does
    assert hashing.file_sha256(f) == real


def test_a_hash_recorded_in_the_same_tick_as_a_change_is_not_trusted(tmp_path: Path) -> None:
    f = _big(tmp_path / "d.json")
    real = hashing.file_sha256(f)
    _cached(f)[6] = "0" * 64  # just written: a second write in the same timestamp tick would look the same
    assert hashing.file_sha256(f) == real


def test_small_files_are_always_hashed_whole_and_never_cached(tmp_path: Path) -> None:
    f = tmp_path / "small.json"
    f.write_text("[1]")
    assert hashing.file_sha256(f) == hashlib.sha256(b"[1]").hexdigest()
    assert str(f.resolve()) not in hashing._the_cache().entries


def test_a_file_written_while_it_is_hashed_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    f = _big(tmp_path / "d.json")
    full = hashing._full

    def writer_in_between(handle: Any) -> str:
        with f.open("ab") as out:
            out.write(b"more")
        return full(handle)

    monkeypatch.setattr(hashing, "_full", writer_in_between)
    with pytest.raises(DatasetError, match="changed while it was being hashed: run the command again"):
        hashing.file_sha256(f)


def test_list_datasets_reads_the_cache_once_and_writes_it_at_most_once(
    cli: Cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(hashing, "RACY_NS", 0)
    ddir = tmp_path / "d"
    ddir.mkdir()
    info = {}
    for i in range(40):
        _big(ddir / f"s{i}.json", fill=b"[ " if i % 2 else b"  ")
        info[f"s{i}"] = {"file_name": f"s{i}.json"}
    (ddir / "dataset_info.json").write_text(json.dumps(info))
    calls = {"read": 0, "write": 0}
    load, save = hashing._Cache.__init__, hashing.atomic_write_json

    def counted_load(self: hashing._Cache, file: Path) -> None:
        calls["read"] += 1
        load(self, file)

    def counted_save(path: Path, data: Any) -> None:
        calls["write"] += 1
        save(path, data)

    monkeypatch.setattr(hashing._Cache, "__init__", counted_load)
    monkeypatch.setattr(hashing, "atomic_write_json", counted_save)
    r = cli("list-datasets", "--dataset-dir", str(ddir), "--json")
    assert r.code == 0, r.err
    assert calls == {"read": 1, "write": 1}  # 40 files hashed, one write
    monkeypatch.setattr(hashing, "_cache", None)  # a new command
    r = cli("list-datasets", "--dataset-dir", str(ddir), "--json")
    assert r.code == 0 and calls == {"read": 2, "write": 1}  # everything verified from the cache: no write


def test_a_plan_sees_a_same_size_same_mtime_edit_of_its_dataset(
    data_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from oda_sft.train.plan import plan_train
    from oda_sft.train.request import TrainRequest

    monkeypatch.setattr(hashing, "RACY_NS", 0)  # as if the file were long settled: the cache is what is tested
    f = data_dir / "oda_demo.json"

    def planned() -> str | None:
        request = TrainRequest(model="tiny", dataset="oda_demo", dataset_dir=data_dir, output_root=tmp_path)
        return plan_train(request).dataset.sha256

    before = planned()
    assert before == hashlib.sha256(f.read_bytes()).hexdigest() and planned() == before
    st = f.stat()
    text = f.read_text(encoding="utf-8")
    edited = text.replace("Fatima", "Fatimb", 1)
    assert len(edited.encode()) == st.st_size and edited != text
    f.write_text(edited, encoding="utf-8")
    os.utime(f, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert planned() == hashlib.sha256(edited.encode()).hexdigest() != before  # what the manifest records
