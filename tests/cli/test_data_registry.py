"""The registry as a database: no lost registry, no overwritten entry, no half-done add, no special files."""

from __future__ import annotations

import errno
import json
import os
import shutil
import threading
from pathlib import Path
from typing import Any

import pytest

from oda_sft.data.registry import transaction
from oda_sft.data.registry.transaction import TXN_PREFIX

from conftest import Cli, snapshot

RECORDS = [{"instruction": f"q{i}", "output": f"a{i}"} for i in range(30)]


def write_json(path: Path, value: Any) -> Path:
    path.write_text(json.dumps(value, ensure_ascii=False), encoding="utf-8")
    return path


def add(cli: Cli, ddir: Path, name: str, source: Path, *extra: str) -> Any:
    return cli("data", "add", name, str(source), "--dataset-dir", str(ddir), *extra)


def one_error_line(err: str) -> str:
    lines = [ln for ln in err.splitlines() if ln.startswith("error:")]
    assert len(lines) == 1, err
    return lines[0]


@pytest.mark.parametrize("name", ["dataset_info", "Dataset_Info"])
def test_a_name_that_maps_onto_the_registry_is_refused_with_no_force_advice(
    cli: Cli, data_dir: Path, tmp_path: Path, name: str
) -> None:
    src = write_json(tmp_path / "src.json", RECORDS)
    before = snapshot(data_dir)
    for extra in ([], ["--force"]):
        r = add(cli, data_dir, name, src, *extra)
        assert r.code == 2
        line = one_error_line(r.err)
        assert "oda-sft's registry (dataset_info.json): choose another name" in line and "--force" not in line
    assert snapshot(data_dir) == before


@pytest.mark.parametrize("spelling", ["./beta.json", "sub/../beta.json", "beta.json"])
def test_a_target_that_is_another_entrys_file_is_refused_however_it_is_spelled(
    cli: Cli, data_dir: Path, tmp_path: Path, spelling: str
) -> None:
    (data_dir / "sub").mkdir()
    write_json(data_dir / "beta.json", RECORDS[:3])
    info = json.loads((data_dir / "dataset_info.json").read_text())
    info["alpha"] = {"file_name": spelling}
    write_json(data_dir / "dataset_info.json", info)
    before = snapshot(data_dir)
    r = add(cli, data_dir, "beta", write_json(tmp_path / "new.json", RECORDS), "--force")
    assert r.code == 2
    assert f"is the data of dataset 'alpha' (file_name {spelling!r}" in one_error_line(r.err)
    assert snapshot(data_dir) == before


def test_a_target_inside_another_entrys_directory_is_refused(cli: Cli, data_dir: Path, tmp_path: Path) -> None:
    info = json.loads((data_dir / "dataset_info.json").read_text())
    info["folder"] = {"file_name": "."}  # LLaMA-Factory reads every file of a directory entry
    write_json(data_dir / "dataset_info.json", info)
    r = add(cli, data_dir, "x", write_json(tmp_path / "new.json", RECORDS))
    assert r.code == 2 and "is the data of dataset 'folder'" in r.err


def test_a_registry_that_is_a_link_is_updated_through_the_link(cli: Cli, data_dir: Path, tmp_path: Path) -> None:
    shared = tmp_path / "shared"
    shared.mkdir()
    real = shared / "registry.json"
    (data_dir / "dataset_info.json").rename(real)
    (data_dir / "dataset_info.json").symlink_to(real)
    r = add(cli, data_dir, "linked", write_json(tmp_path / "src.json", RECORDS))
    assert r.code == 0, r.err
    assert (data_dir / "dataset_info.json").is_symlink()
    assert "linked" in json.loads(real.read_text()) and "oda_demo" in json.loads(real.read_text())
    assert not [p for p in [*shared.iterdir(), *data_dir.iterdir()] if p.name.startswith(".")]


def test_a_dangling_or_special_registry_is_refused_with_what_it_is(cli: Cli, tmp_path: Path) -> None:
    src = write_json(tmp_path / "src.json", RECORDS)
    ddir = tmp_path / "d"
    ddir.mkdir()
    (ddir / "dataset_info.json").symlink_to(tmp_path / "gone.json")
    before = snapshot(ddir)
    r = add(cli, ddir, "x", src)
    assert r.code == 2 and "is a dangling symbolic link (to " in one_error_line(r.err)
    assert snapshot(ddir) == before and not (tmp_path / "gone.json").exists()
    r = cli("list-datasets", "--dataset-dir", str(ddir))
    assert r.code == 2 and "is a dangling symbolic link" in r.err

    (ddir / "dataset_info.json").unlink()
    os.mkfifo(ddir / "dataset_info.json")
    result: list[Any] = []
    thread = threading.Thread(target=lambda: result.append(add(cli, ddir, "x", src)), daemon=True)
    thread.start()
    thread.join(20)  # a registry opened for reading would block here forever
    assert result and result[0].code == 2 and "is a FIFO (named pipe), not a regular file" in result[0].err


@pytest.mark.parametrize("kind", ["fifo", "device", "dangling"])
def test_a_special_source_says_what_it_is(cli: Cli, data_dir: Path, tmp_path: Path, kind: str) -> None:
    if kind == "fifo":
        source = tmp_path / "pipe.jsonl"
        os.mkfifo(source)
        said = "is a FIFO (named pipe)"
    elif kind == "device":
        source, said = Path("/dev/zero"), "is a character device"
    else:
        source = tmp_path / "link.jsonl"
        source.symlink_to(tmp_path / "nothing.jsonl")
        said = "is a dangling symbolic link"
    before = snapshot(data_dir)
    r = add(cli, data_dir, "x", source)
    assert r.code == 2 and said in one_error_line(r.err) and "does not exist:" not in r.err
    assert snapshot(data_dir) == before


def _register(data_dir: Path, name: str, entry: Any) -> None:
    info = json.loads((data_dir / "dataset_info.json").read_text())
    info[name] = entry
    write_json(data_dir / "dataset_info.json", info)


def _dry_run(cli: Cli, data_dir: Path, tmp_path: Path, name: str) -> Any:
    return cli("train", "-m", "tiny", "-d", name, "--dry-run", "--dataset-dir", str(data_dir),
               "--output-root", str(tmp_path / "saves"))  # fmt: skip


@pytest.mark.parametrize(
    ("entry", "said"),
    [
        ({"columns": {"prompt": "instruction"}}, "it has no file_name (nor hf_hub_url or another source)"),
        ({"file_name": "../outside.json"}, "file_name '../outside.json' points outside the dataset dir"),
        ({"file_name": "/etc/passwd"}, "file_name '/etc/passwd' points outside the dataset dir"),
        ({"file_name": "oda_demo.json", "formatting": "chatml"}, "formatting 'chatml' is not one LLaMA-Factory reads"),
        ({"file_name": "oda_demo.json", "ranking": True}, "ranking is true (a preference dataset)"),
        ({"file_name": "notes.md"}, "is not a type LLaMA-Factory loads"),
        ({"file_name": 3}, "file_name 3 is not a file name"),
        ("oda_demo.json", "its entry is str, not an object"),
    ],
)
def test_broken_entries_fail_at_plan_time_in_one_line(
    cli: Cli, data_dir: Path, tmp_path: Path, entry: Any, said: str
) -> None:
    (data_dir / "notes.md").write_text("x")
    _register(data_dir, "bad", entry)
    r = _dry_run(cli, data_dir, tmp_path, "bad")
    assert r.code == 2
    line = one_error_line(r.err)
    assert line.startswith(f"error: dataset bad in {data_dir / 'dataset_info.json'}: ") and said in line
    r = cli("data", "inspect", "bad", "--model", "tiny", "--dataset-dir", str(data_dir))
    assert r.code == 2 and said in r.err
    listed = json.loads(cli("list-datasets", "--dataset-dir", str(data_dir), "--json").out)
    assert next(row for row in listed if row["name"] == "bad")["mode"] == "invalid"


def test_outside_the_dataset_dir_only_when_the_user_says_so(
    cli: Cli, data_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_json(tmp_path / "outside.json", RECORDS)
    _register(data_dir, "out", {"file_name": "../outside.json"})
    r = _dry_run(cli, data_dir, tmp_path, "out")
    assert r.code == 2 and "or set ODA_SFT_ALLOW_OUTSIDE_DATASET_DIR=1 to read it where it is" in r.err
    monkeypatch.setenv("ODA_SFT_ALLOW_OUTSIDE_DATASET_DIR", "1")
    r = _dry_run(cli, data_dir, tmp_path, "out")
    assert r.code == 0, r.err


@pytest.mark.parametrize("kind", ["fifo", "dangling"])
def test_a_registered_data_file_that_is_special_is_refused_at_plan_time(
    cli: Cli, data_dir: Path, tmp_path: Path, kind: str
) -> None:
    target = data_dir / "special.json"
    if kind == "fifo":
        os.mkfifo(target)
    else:
        target.symlink_to(tmp_path / "gone.json")
    _register(data_dir, "special", {"file_name": "special.json"})
    r = _dry_run(cli, data_dir, tmp_path, "special")
    assert r.code == 2
    assert ("is a FIFO (named pipe)" if kind == "fifo" else "is a dangling symbolic link") in one_error_line(r.err)


def test_an_in_place_file_with_a_stray_key_of_mixed_types_is_refused_at_add_time(cli: Cli, data_dir: Path) -> None:
    rows = [{"instruction": "q", "output": "a", "meta": 1}, {"instruction": "q", "output": "a", "meta": "x"}]
    src = data_dir / "mixed.jsonl"
    src.write_text("".join(json.dumps(r) + "\n" for r in rows))
    before = snapshot(data_dir)
    r = add(cli, data_dir, "mixed", src)
    assert r.code == 2
    line = one_error_line(r.err)
    assert "1 of 2 records cannot be registered in place (#1 meta: is a string here but a number" in line
    assert "add the file from a copy outside the dataset dir" in line
    assert snapshot(data_dir) == before


# --- a full disk at every point of `data add --force` -----------------------------------------------


def _existing(cli: Cli, data_dir: Path, tmp_path: Path) -> tuple[Path, dict[str, bytes]]:
    r = add(cli, data_dir, "x", write_json(tmp_path / "old.json", RECORDS[:5]))
    assert r.code == 0, r.err
    return write_json(tmp_path / "new.jsonl", RECORDS), snapshot(data_dir)


_REAL_WRITE = transaction._write_fd


def _full_disk_after(monkeypatch: pytest.MonkeyPatch, budget: int) -> dict[str, int]:
    """Every write of a transaction goes through one seam: the disk fills up after `budget` bytes."""
    written = {"bytes": 0}
    real = _REAL_WRITE

    def write(fd: int, data: bytes) -> None:
        if written["bytes"] + len(data) > budget:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        written["bytes"] += len(data)
        real(fd, data)

    monkeypatch.setattr(transaction, "_write_fd", write)
    return written


def test_a_full_disk_anywhere_in_an_add_leaves_the_old_state_byte_for_byte(
    cli: Cli, data_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    new, old = _existing(cli, data_dir, tmp_path)
    reference = tmp_path / "copy"  # as long a path as data/: the journal is as long
    shutil.copytree(data_dir, reference)
    total = _full_disk_after(monkeypatch, 10**9)
    assert add(cli, reference, "x", new, "--force").code == 0
    everything = total["bytes"]  # the data file, the journal and the registry, written once
    assert everything > 1000
    for budget in sorted({0, 1, 100, everything // 3, everything // 2, everything - 600, everything - 1}):
        _full_disk_after(monkeypatch, budget)
        r = add(cli, data_dir, "x", new, "--force")
        assert r.code == 6, (budget, r.err)
        line = one_error_line(r.err)
        assert "No space left on device" in line and str(data_dir) in line, line
        assert snapshot(data_dir) == old, budget  # no half state, no temp file, no orphan
    _full_disk_after(monkeypatch, everything)
    r = add(cli, data_dir, "x", new, "--force")
    assert r.code == 0, (everything, r.err)
    assert (data_dir / "x.json").read_bytes() == (reference / "x.json").read_bytes()


def test_a_full_disk_when_adding_a_new_name_leaves_no_orphan(
    cli: Cli, data_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = snapshot(data_dir)
    _full_disk_after(monkeypatch, 0)
    r = add(cli, data_dir, "fresh", write_json(tmp_path / "new.json", RECORDS))
    assert r.code == 6 and str(data_dir / "fresh.json") in r.err
    assert snapshot(data_dir) == before and not (data_dir / "fresh.json").exists()


@pytest.mark.parametrize("stop_at", ["journal", "old-data-linked", "registry-staged", "data-in-place"])
def test_an_error_at_any_commit_step_puts_the_old_data_back(
    cli: Cli, data_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, stop_at: str
) -> None:
    new, old = _existing(cli, data_dir, tmp_path)

    def fail(step: str) -> None:
        if step == stop_at:
            raise OSError(errno.EIO, "Input/output error", str(data_dir))

    monkeypatch.setattr(transaction, "step", fail)
    r = add(cli, data_dir, "x", new, "--force")
    assert r.code == 6 and "Input/output error" in r.err
    assert snapshot(data_dir) == old


def test_what_a_killed_add_left_is_cleaned_up_by_the_next_command(cli: Cli, data_dir: Path, tmp_path: Path) -> None:
    someone_elses = data_dir / ".x.abcd1234.json.tmp"  # oda-sft's own temporary names start .oda-sft-: kept
    someone_elses.write_bytes(b"[")
    os.utime(someone_elses, (0, 0))
    before = snapshot(data_dir)
    stale = data_dir / f"{TXN_PREFIX}killed"
    stale.mkdir()
    (stale / "data.json").write_bytes(b"[" * 1000)  # a conversion cut short: no journal yet
    r = cli("list-datasets", "--dataset-dir", str(data_dir))
    assert r.code == 0, r.err
    assert snapshot(data_dir) == before and not stale.exists()


# --- item 9: every blow-up is one line naming the path, from `data add` and from `data inspect` ---------

BLOW_UPS = [
    ("surrogate.jsonl", b'{"instruction": "q\\ud800", "output": "a"}\n', "#0 instruction: holds a lone surrogate"),
    ("deep.json", b'[{"instruction": "q", "output": ' + b"[" * 100_000 + b"]" * 100_000 + b"}]", "nested too deeply"),
    ("bigint.jsonl", b'{"instruction": "q", "output": "a", "n": ' + b"9" * 100_000 + b"}\n", "more than 4300 digits"),
]


@pytest.mark.parametrize(("name", "data", "said"), BLOW_UPS, ids=[b[0] for b in BLOW_UPS])
def test_hostile_json_is_one_line_naming_the_file_in_add_and_inspect(
    cli: Cli, data_dir: Path, tmp_path: Path, name: str, data: bytes, said: str
) -> None:
    src = tmp_path / name
    src.write_bytes(data)
    before = snapshot(data_dir)
    r = add(cli, data_dir, "hostile", src)
    assert r.code == 2 and said in one_error_line(r.err) and str(src) in r.err
    assert snapshot(data_dir) == before
    # The same bytes registered by hand, then measured.
    (data_dir / name).write_bytes(data)
    _register(data_dir, "hostile", {"file_name": name})
    r = cli("data", "inspect", "hostile", "--model", "tiny", "--dataset-dir", str(data_dir))
    assert r.code == 2 and said in one_error_line(r.err) and str(data_dir / name) in r.err


@pytest.mark.parametrize("harm", ["edited", "deleted", "dangling link"])
def test_the_add_that_registered_a_file_puts_it_back_after_it_was_edited_or_deleted(
    cli: Cli, data_dir: Path, tmp_path: Path, harm: str
) -> None:
    # `train` and `data inspect` advise `data add NAME SOURCE --force` for a registered file that is gone or
    # differs: with the source that holds the registered content, that command must put the file back.
    source = write_json(tmp_path / "src.json", RECORDS)
    assert add(cli, data_dir, "mine", source).code == 0
    registered = data_dir / "mine.json"
    original, info = registered.read_bytes(), json.loads((data_dir / "dataset_info.json").read_text())["mine"]
    if harm == "edited":
        registered.write_bytes(original.replace(b'"q0"', b'"edited"'))
        before = snapshot(data_dir)
        refused = add(cli, data_dir, "mine", source)  # without --force an edit is never overwritten
        assert refused.code == 2 and snapshot(data_dir) == before
        line = one_error_line(refused.err)
        assert f"{registered}, the data file of dataset 'mine', was changed after it was registered" in line
        assert "pass --force to put the registered content back" in line
    elif harm == "deleted":
        registered.unlink()
    else:
        registered.unlink()
        registered.symlink_to(tmp_path / "gone.json")
    done = add(cli, data_dir, "mine", source, "--force")
    assert done.code == 0 and done.out.startswith("restored mine: 30 records"), (done.out, done.err)
    assert registered.read_bytes() == original and not registered.is_symlink()
    entry = json.loads((data_dir / "dataset_info.json").read_text())["mine"]
    assert entry["oda_sft"]["sha256"] == info["oda_sft"]["sha256"] and entry["file_name"] == "mine.json"
    assert not list(data_dir.glob(f"{TXN_PREFIX}*"))
    again = add(cli, data_dir, "mine", source, "--force")  # now it holds the content: nothing to do
    assert again.code == 0 and "nothing changed" in again.out


def test_a_deleted_registered_file_is_put_back_without_force(cli: Cli, data_dir: Path, tmp_path: Path) -> None:
    source = write_json(tmp_path / "src.json", RECORDS)
    assert add(cli, data_dir, "mine", source).code == 0
    original = (data_dir / "mine.json").read_bytes()
    (data_dir / "mine.json").unlink()  # nothing there to lose
    done = add(cli, data_dir, "mine", source)
    assert done.code == 0 and done.out.startswith("restored mine:"), done.err
    assert (data_dir / "mine.json").read_bytes() == original


def test_something_else_where_the_registered_file_belongs_is_never_replaced(
    cli: Cli, data_dir: Path, tmp_path: Path
) -> None:
    source = write_json(tmp_path / "src.json", RECORDS)
    assert add(cli, data_dir, "mine", source).code == 0
    (data_dir / "mine.json").unlink()
    (data_dir / "mine.json").mkdir()
    (data_dir / "mine.json" / "keep.txt").write_text("mine")
    before = snapshot(data_dir)
    refused = add(cli, data_dir, "mine", source, "--force")
    assert refused.code == 2 and snapshot(data_dir) == before
    assert "is a directory: move it away, then run this again" in one_error_line(refused.err)
