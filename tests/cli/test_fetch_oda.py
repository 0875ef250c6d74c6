"""`oda-sft data add` from ODA's normalised release (OpenDataArena/OpenDataArena-scored-data), against the local
stand-in for the Hub (tests/hubstub.py): a catalog name `--from oda`, any subset as `oda:<subset>`, the scores kept
or dropped, an unknown subset refused with close names, the revision recorded, and `list-datasets --all`."""

from __future__ import annotations

import io
import json
import shlex
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from conftest import Cli, snapshot
from hubstub import Hub, Repo, online

REPO = "OpenDataArena/OpenDataArena-scored-data"
SHA = "89abcdef0123456789abcdef0123456789abcdef"


def _q(i: int) -> dict[str, Any]:
    return {"Clarity": 7, "Coherence": 8, "Deita_Complexity": 2.5 + i, "Thinking_Prob": None, "Difficulty": 3}


def _qa(i: int) -> dict[str, Any]:
    return {"Relevance": 9, "IFD": 0.25 * i, "Deita_Quality": float("nan") if i == 1 else 4.0, "Fail_Rate": None}


def _parquet(rows: list[tuple[str, str]], start: int = 0) -> bytes:
    """A shard as the release's README describes it: instruction, output and the two score structs."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.Table.from_pylist(
        [
            {"instruction": q, "output": a, "Q_scores": _q(start + i), "QA_scores": _qa(start + i)}
            for i, (q, a) in enumerate(rows)
        ]
    )
    out = io.BytesIO()
    pq.write_table(table, out)
    return out.getvalue()


def _release() -> Repo:
    files = {
        "README.md": b"---\nconfigs: []\n---\n",
        "OpenR1-Math/train-00000-of-00002.parquet": _parquet([("What is 2+2?", "<think>2+2</think>4")]),
        "OpenR1-Math/train-00001-of-00002.parquet": _parquet([("What is 3+3?", "<think>3+3</think>6")], 1),
        "OpenHermes-shuffle/train-00000-of-00001.parquet": _parquet([("Say hi", "hi"), ("Say bye", "bye")]),
        "brand-new-set/train-00000-of-00001.parquet": _parquet([("New?", "yes")]),
    }
    return Repo(SHA, files, refs={"v1": SHA})  # the stub serves one commit; a tag names it


@pytest.fixture
def hub(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[Hub]:
    with online(Hub({REPO: _release()}), monkeypatch, tmp_path / "hf-cache") as stub:
        yield stub


@pytest.fixture
def ddir(tmp_path: Path) -> Path:
    path = tmp_path / "d"
    path.mkdir()
    return path


def _entry(ddir: Path, name: str) -> dict[str, Any]:
    return json.loads((ddir / "dataset_info.json").read_text())[name]  # type: ignore[no-any-return]


def _records(ddir: Path, name: str) -> list[dict[str, Any]]:
    return json.loads((ddir / _entry(ddir, name)["file_name"]).read_text())  # type: ignore[no-any-return]


def test_a_catalog_name_from_oda_takes_the_published_rows(cli: Cli, hub: Hub, ddir: Path) -> None:
    r = cli("data", "add", "OpenR1-Math-220k", "--from", "oda", "--dataset-dir", str(ddir))
    assert r.code == 0, r.err
    assert f"source      {REPO} at commit {SHA} (main)" in r.out
    assert "files       OpenR1-Math/train-00000-of-00002.parquet, OpenR1-Math/train-00001-of-00002.parquet" in r.out
    assert "conversion  instruction <- instruction; output <- output" in r.out
    assert "records     2 of 2 rows" in r.out
    assert "ODA         93,733 records (OpenDataArena/OpenDataArena.github.io" in r.out, "what ODA trained, for ours"
    # The published row a run of it is to reproduce, and the command that shows its table (works as printed).
    line = next(x for x in r.out.splitlines() if x.startswith("ODA's leaderboard"))
    assert "published OpenR1-Math-220k at overall llama 33.71 (rank 35 of 89), qwen 47.23 (rank 47 of 89)" in line
    command = line.split("`")[1].split()[1:]
    assert command == ["rank", "--model", "llama", "--oda"] and cli(*command).code == 0
    entry = _entry(ddir, "OpenR1-Math-220k")
    source = entry["oda_sft"]["source"]
    assert source["id"] == REPO and source["revision"] == SHA and source["conversion"]["oda"] == "OpenR1-Math"
    assert _records(ddir, "OpenR1-Math-220k") == [
        {"instruction": "What is 2+2?", "input": "", "output": "<think>2+2</think>4"},
        {"instruction": "What is 3+3?", "input": "", "output": "<think>3+3</think>6"},
    ], "scores dropped by default; no system, history"
    assert entry["columns"] == {"prompt": "instruction", "query": "input", "response": "output"}
    # Again: same commit, same conversion -> nothing to do.
    r = cli("data", "add", "OpenR1-Math-220k", "--from", "oda", "--dataset-dir", str(ddir))
    assert r.code == 0 and "already registered from this commit with this conversion" in r.out


def test_any_subset_by_its_oda_name_keeps_the_scores_when_asked(cli: Cli, hub: Hub, ddir: Path) -> None:
    r = cli("data", "add", "oda:OpenHermes-shuffle", "--keep-scores", "--dataset-dir", str(ddir), "--revision", "v1")
    assert r.code == 0, r.err
    assert "metadata    Q_scores, QA_scores kept in every record" in r.out
    assert "ODA         615,376 records" in r.out
    entry = _entry(ddir, "oda-OpenHermes-shuffle")
    source = entry["oda_sft"]["source"]
    assert (
        source["requested"] == "v1"
        and source["revision"] == SHA
        and source["conversion"]["keep"]
        == [
            "Q_scores",
            "QA_scores",
        ]
    )
    first, second = _records(ddir, "oda-OpenHermes-shuffle")
    assert first["instruction"] == "Say hi" and first["Q_scores"] == _q(0) and first["QA_scores"] == _qa(0)
    assert second["QA_scores"]["Deita_Quality"] is None, "NaN is not JSON: it is written as null"
    assert entry["columns"] == {"prompt": "instruction", "query": "input", "response": "output"}, "scores unmapped"
    # Dropping them is another conversion: with --force the same commit is registered again, without scores.
    r = cli("data", "add", "oda:OpenHermes-shuffle", "--dataset-dir", str(ddir), "--revision", "v1", "--force")
    assert r.code == 0, r.err
    assert [set(rec) for rec in _records(ddir, "oda-OpenHermes-shuffle")] == [{"instruction", "input", "output"}] * 2


def test_a_subset_not_in_the_known_list_is_fetched_when_the_hub_has_it(cli: Cli, hub: Hub, ddir: Path) -> None:
    r = cli("data", "add", "oda:brand-new-set", "--dataset-dir", str(ddir))
    assert r.code == 0, r.err
    assert "ODA         record count not published" in r.out
    assert _records(ddir, "oda-brand-new-set") == [{"instruction": "New?", "input": "", "output": "yes"}]


def test_an_unknown_subset_is_one_line_with_close_names(cli: Cli, hub: Hub, ddir: Path) -> None:
    r = cli("data", "add", "oda:OpenHermes-shufle", "--dataset-dir", str(ddir))
    assert r.code == 2 and r.err.count("\n") == 1, r.err
    assert f"{REPO} at commit {SHA[:12]} has no subset 'OpenHermes-shufle' (did you mean OpenHermes-shuffle" in r.err
    assert not [p for m, p, _ in hub.requests if m == "GET" and "/resolve/" in p], "nothing downloaded"
    assert snapshot(ddir) == {}


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["QwQ-LongCoT-130K", "--from", "oda"], "QwQ-LongCoT-130K has no known subset in ODA's release"),
        (["my_data", "--from", "oda"], "--from oda applies to catalog datasets; my_data is not one"),
        (["OpenR1-Math-220k", "--keep-scores"], "--keep-scores applies to ODA's release: add `--from oda`"),
        (["OpenR1-Math-220k", "--from", "odaa"], "--from 'odaa' is not a source"),
        (["oda:OpenR1-Math", "x.jsonl"], "is fetched from ODA's release and converted as it is"),
        (["oda:a/b"], "invalid ODA subset name 'a/b'"),
    ],
)
def test_bad_oda_requests_are_one_line(cli: Cli, ddir: Path, args: list[str], message: str) -> None:
    r = cli("data", "add", *args, "--dataset-dir", str(ddir))
    assert r.code == 2 and message in r.err and r.err.count("\n") == 1, r.err
    assert snapshot(ddir) == {}


def test_list_datasets_all_shows_the_release(cli: Cli, hub: Hub, ddir: Path) -> None:
    assert cli("data", "add", "oda:OpenHermes-shuffle", "--dataset-dir", str(ddir)).code == 0
    r = cli("list-datasets", "--all", "--json", "--dataset-dir", str(ddir))
    assert r.code == 0, r.err
    rows = {row["name"]: row for row in json.loads(r.out)}
    assert rows["OpenR1-Math-220k"]["oda_subset"] == "OpenR1-Math" and rows["OpenR1-Math-220k"]["long_cot"]
    assert rows["QwQ-LongCoT-130K"]["oda_subset"] == "", "unmapped where the evidence does not settle it"
    hermes = rows["oda-OpenHermes-shuffle"]
    assert hermes["registered"] and hermes["oda_subset"] == "OpenHermes-shuffle" and hermes["oda_rows"] == 615_376
    assert not hermes["long_cot"]
    assert rows["oda-alpaca_gpt4"]["source"] == "oda:alpaca_gpt4" and not rows["oda-alpaca_gpt4"]["registered"]
    assert rows["oda-DeepMath-309K"]["long_cot"] and rows["oda-DeepMath-309K"]["mode"] == "long"
    assert len([n for n in rows if n.startswith("oda-")]) == 55
    # The SOURCE column is the name `data add` takes.
    table = cli("list-datasets", "--all", "--dataset-dir", str(ddir)).out
    assert "oda:tulu-3-sft-mixture" in table.split("oda-tulu-3-sft-mixture", 1)[1].splitlines()[0]
    assert "oda_subset" not in cli("list-datasets", "--json", "--dataset-dir", str(ddir)).out


def test_train_on_an_unregistered_subset_advises_data_add_oda_and_it_parses(
    cli: Cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ddir = tmp_path / "my data"
    ddir.mkdir()
    r = cli("train", "-m", "tiny", "-d", "oda-alpaca_gpt4", "--dataset-dir", str(ddir), "--output-root", str(tmp_path))
    error = r.err.splitlines()[-1]
    assert r.code == 2 and "oda-alpaca_gpt4 is not registered" in error and "or pass --fetch" in error, r.err
    command = error.split("`")[1]
    assert command == f"oda-sft data add oda:alpaca_gpt4 --dataset-dir '{ddir}'"
    # The real `data add` parser takes it: offline, the one thing missing is the release in the Hub cache.
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "empty-cache"))
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")  # nothing may be asked of the network
    r = cli(*shlex.split(command)[1:])
    assert r.code == 2 and f"HF_HUB_OFFLINE is set and {REPO} at 'main' is not in the Hugging Face cache" in r.err
    assert "Usage:" not in r.err and snapshot(ddir) == {}


def test_train_fetch_takes_oda_names(cli: Cli, hub: Hub, ddir: Path) -> None:
    r = cli("train", "-m", "llama", "-d", "oda-alpaca_gpt4", "--fetch", "--dry-run", "--dataset-dir", str(ddir))
    add = f"oda-sft data add oda:alpaca_gpt4 --dataset-dir {ddir}"
    assert f"--fetch: oda-alpaca_gpt4 is not registered; the real run fetches it first ({add})" in r.err, r.err
    assert r.code == 0 and "error:" not in r.err, r.err  # the dry run shows the plan, as for a catalog name
    assert "cutoff_len: 4096" in r.out  # standard until the fetched data is measured
    assert hub.requests == [] and snapshot(ddir) == {}
