"""`oda-sft data add` / `data inspect` through the CLI, and `train --mode auto` on what they record."""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path
from typing import Any

import pytest

from oda_sft.train import plan as plan_module
from oda_sft.train.plan import plan_train, settle_mode
from oda_sft.train.render import render
from oda_sft.train.request import TrainRequest

from conftest import Cli, snapshot

CHAT = [
    {
        "messages": [
            {"role": "system", "content": "Answer briefly."},
            {"role": "user", "content": f"What is {i} + {i}?"},
            {"role": "assistant", "content": f"{i} + {i} = {2 * i}."},
        ]
    }
    for i in range(40)
]


def jsonl(path: Path, records: list[Any]) -> Path:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records), encoding="utf-8")
    return path


def test_add_chat_jsonl_writes_alpaca_and_registers_it(cli: Cli, data_dir: Path, tmp_path: Path) -> None:
    demo_before = (data_dir / "dataset_info.json").read_text()
    src = jsonl(tmp_path / "chat.jsonl", CHAT)
    r = cli("data", "add", "chat", str(src), "--dataset-dir", str(data_dir))
    assert r.code == 0, r.err
    assert "detected shape: chat (messages)" in r.err
    assert r.out.startswith("added chat: 40 records, shape chat (messages)")
    written = json.loads((data_dir / "chat.json").read_text())
    assert written[3] == {
        "instruction": "What is 3 + 3?",
        "input": "",
        "output": "3 + 3 = 6.",
        "system": "Answer briefly.",
    }
    info_text = (data_dir / "dataset_info.json").read_text()
    # The demo entry keeps its exact bytes; the new one is added after it.
    assert info_text.startswith(demo_before.rstrip()[:-1].rstrip())
    entry = json.loads(info_text)["chat"]
    assert entry["file_name"] == "chat.json"
    assert entry["columns"] == {"prompt": "instruction", "query": "input", "response": "output", "system": "system"}
    import hashlib

    assert entry["oda_sft"]["sha256"] == hashlib.sha256((data_dir / "chat.json").read_bytes()).hexdigest()
    assert entry["oda_sft"]["records"] == 40
    assert entry["oda_sft"]["source"] == {"type": "file", "path": str(src.resolve())}

    # Same content again: nothing changes. Other content: refused without --force.
    before = snapshot(data_dir)
    r = cli("data", "add", "chat", str(src), "--dataset-dir", str(data_dir))
    assert r.code == 0 and "nothing changed" in r.out and snapshot(data_dir) == before
    other = jsonl(tmp_path / "other.jsonl", CHAT[:5])
    r = cli("data", "add", "chat", str(other), "--dataset-dir", str(data_dir))
    assert r.code == 2
    assert "already registered" in r.err and "pass --force to replace it" in r.err
    assert snapshot(data_dir) == before
    r = cli("data", "add", "chat", str(other), "--dataset-dir", str(data_dir), "--force")
    assert r.code == 0 and r.out.startswith("replaced chat: 5 records")
    assert len(json.loads((data_dir / "chat.json").read_text())) == 5


BAD_CASES: list[tuple[str, str, list[str], str]] = [
    (
        "malformed.json",
        '[{"instruction": "a", "output": "b"},\n {"instruction": }]',
        [],
        "malformed JSON at line 2, column 18",
    ),
    ("malformed.jsonl", '{"prompt": "a", "response": "b"}\n{"prompt": "a" "response": "b"}\n', [], "line 2, column 16"),
    ("empty.json", "", [], "is empty: an empty dataset cannot be trained on"),
    ("emptylist.json", "[]", [], "holds no records"),
    (
        "dangling.jsonl",
        '{"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}]}\n'
        '{"messages": [{"role": "user", "content": "q"}]}\n',
        [],
        "1 of 2 records cannot be used as chat (messages) -> Alpaca (#1 messages: the chat ends on a user turn",
    ),
    ("bad_alpaca.json", '[{"instruction": "a", "output": 3}]', [], "#0 output: must be a string, got a number"),
    ("unknown.jsonl", '{"foo": "a", "bar": "b"}\n', [], "cannot detect the dataset's shape from its keys (bar, foo)"),
    ("mapped.jsonl", '{"foo": "a", "bar": "b"}\n', ["--map", "instruction=foo"], "--map needs at least instruction"),
    ("notjson.txt", "hello", [], "neither .json nor .jsonl"),
    (  # json keeps the last of two values without a word, even with --skip-invalid: refused by number
        "dupkey.jsonl",
        '{"instruction": "q", "output": "a"}\n{"instruction": "A", "instruction": "B", "output": "o"}\n',
        ["--skip-invalid"],
        "record #1 (from line 2) names the key 'instruction' twice",
    ),
    ("all_bad.jsonl", '{"question": "a", "answer": 1}\n', ["--skip-invalid"], "none of the 1 records can be used"),
]


@pytest.mark.parametrize(("file", "content", "extra", "message"), BAD_CASES, ids=[c[0] for c in BAD_CASES])
def test_bad_input_fails_in_one_line_and_changes_nothing(
    cli: Cli, data_dir: Path, tmp_path: Path, file: str, content: str, extra: list[str], message: str
) -> None:
    src = tmp_path / file
    src.write_text(content, encoding="utf-8")
    before = snapshot(data_dir)
    r = cli("data", "add", "newdata", str(src), "--dataset-dir", str(data_dir), *extra)
    assert r.code == 2, r.err
    assert message in r.err
    lines = [ln for ln in r.err.splitlines() if ln.startswith("error:")]
    assert len(lines) == 1
    assert snapshot(data_dir) == before


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["bad name", "x.json"], "invalid dataset name 'bad name'"),
        (["ok", "/nonexistent/x.json"], "/nonexistent/x.json does not exist"),
        (["ok", "owner/name/extra"], "does not exist: give an existing .json/.jsonl file"),
    ],
)
def test_bad_arguments(cli: Cli, data_dir: Path, args: list[str], message: str) -> None:
    before = snapshot(data_dir)
    r = cli("data", "add", *args, "--dataset-dir", str(data_dir))
    assert r.code == 2 and message in r.err
    assert snapshot(data_dir) == before


def test_missing_dataset_dir_and_broken_info(cli: Cli, tmp_path: Path) -> None:
    src = jsonl(tmp_path / "c.jsonl", CHAT)
    r = cli("data", "add", "c", str(src), "--dataset-dir", str(tmp_path / "nope"))
    assert r.code == 2 and "does not exist: create it" in r.err
    ddir = tmp_path / "d"
    ddir.mkdir()
    (ddir / "dataset_info.json").write_text('{"a": {"file_name": "a.json"},\n}')
    before = snapshot(ddir)
    r = cli("data", "add", "c", str(src), "--dataset-dir", str(ddir))
    assert r.code == 2 and "is not valid JSON (line 2, column 1" in r.err
    assert snapshot(ddir) == before


def test_first_n_bad_records_are_listed(cli: Cli, data_dir: Path, tmp_path: Path) -> None:
    src = jsonl(tmp_path / "q.jsonl", [{"question": "q", "answer": i} for i in range(30)])
    r = cli("data", "add", "q", str(src), "--dataset-dir", str(data_dir), "--show-errors", "3")
    assert r.code == 2
    assert "30 of 30 records" in r.err
    assert "#0 answer: must be text, got int; #1 answer: must be text, got int; #2 answer" in r.err
    assert "and 27 more" in r.err


def test_skip_invalid_reports_count_and_reasons(cli: Cli, data_dir: Path, tmp_path: Path) -> None:
    records: list[Any] = [*CHAT[:3], {"messages": [{"role": "user", "content": "q"}]}, {"messages": []}]
    src = jsonl(tmp_path / "c.jsonl", records)
    r = cli("data", "add", "c", str(src), "--dataset-dir", str(data_dir), "--skip-invalid")
    assert r.code == 0, r.err
    assert "skipped 2 of 5 records (--skip-invalid): 1 x messages: no user or assistant turns; " in r.err
    assert "3 records, 2 skipped" in r.out
    assert json.loads((data_dir / "dataset_info.json").read_text())["c"]["oda_sft"]["skipped"] == 2


def test_alpaca_file_inside_dataset_dir_is_registered_in_place(cli: Cli, data_dir: Path) -> None:
    src = data_dir / "mine.jsonl"
    jsonl(src, [{"instruction": "i", "output": "o", "history": [["a", "b"]]}])
    before = src.read_bytes()
    r = cli("data", "add", "mine", str(src), "--dataset-dir", str(data_dir))
    assert r.code == 0 and "registered in place" in r.out
    entry = json.loads((data_dir / "dataset_info.json").read_text())["mine"]
    assert entry["file_name"] == "mine.jsonl" and "history" in entry["columns"]
    assert src.read_bytes() == before


def test_hf_dataset_directory_source(cli: Cli, data_dir: Path, tmp_path: Path) -> None:
    import datasets  # type: ignore[import-untyped]

    rows = {"problem": ["1+1?", "2+2?"], "solution": ["2", "4"]}
    datasets.DatasetDict({"train": datasets.Dataset.from_dict(rows)}).save_to_disk(str(tmp_path / "hf"))
    r = cli("data", "add", "math", str(tmp_path / "hf"), "--dataset-dir", str(data_dir))
    assert r.code == 0, r.err
    assert "detected shape: problem/solution" in r.err
    assert json.loads((data_dir / "math.json").read_text())[1] == {"instruction": "2+2?", "input": "", "output": "4"}
    r = cli("data", "add", "math2", str(tmp_path / "hf"), "--dataset-dir", str(data_dir), "--split", "test")
    assert r.code == 2 and "has no split 'test': pass --split with one of train" in r.err


def test_inspect_caches_and_train_auto_uses_it_only_while_the_file_is_unchanged(
    cli: Cli, data_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    long_chat = [
        {"messages": [{"role": "user", "content": "think"}, {"role": "assistant", "content": "\x07" * 5000}]}
    ] * 3 + CHAT[:50]
    r = cli("data", "add", "lc", str(jsonl(tmp_path / "lc.jsonl", long_chat)), "--dataset-dir", str(data_dir))
    assert r.code == 0, r.err

    r = cli("data", "inspect", "lc", "--model", "tiny", "--dataset-dir", str(data_dir), "--exact")
    assert r.code == 0, r.err
    assert "decision   long: 7.0% of 43 samples exceed 4,096 tokens (p99 5,0" in r.out
    assert "> 4,096    3 (truncated by the standard config" in r.out
    r = cli(
        "data", "inspect", "lc", "--model", "tiny", "--dataset-dir", str(data_dir), "--json", "--long-percent", "10"
    )
    report = json.loads(r.out)
    assert (report["mode"], report["exact"], report["count"]) == ("standard", False, 43)
    assert report["rule"] == {"threshold_tokens": 4096, "max_percent_over": "10"}

    meta = json.loads((data_dir / "dataset_info.json").read_text())["lc"]["oda_sft"]
    # One record of the decision: the analysis, keyed by tokenizer, with the sha256 and rule it holds for.
    assert set(meta) == {"source", "shape", "sha256", "bytes", "records", "skipped", "added_at", "analyses"}
    (analysis,) = meta["analyses"].values()
    assert analysis["mode"] == "standard" and analysis["sha256"] == meta["sha256"]
    # The cached answer counts only under the rule it was decided by.
    monkeypatch.setenv("ODA_SFT_LONG_PERCENT", "10")
    r = cli("train", "--model", "tiny", "--dataset", "lc", "--dataset-dir", str(data_dir), "--dry-run")
    assert r.code == 0, r.err
    assert "mode: standard (cached analysis of this file in dataset_info.json (tiny:" in r.err
    assert "cutoff_len: 4096" in r.out
    listed = {
        row["name"]: row["mode"]
        for row in json.loads(cli("list-datasets", "--dataset-dir", str(data_dir), "--json").out)
    }
    assert listed["lc"] == "standard"
    monkeypatch.delenv("ODA_SFT_LONG_PERCENT")
    # Under another rule the listing says what `train` would: not known until measured again.
    listed = {
        row["name"]: row["mode"]
        for row in json.loads(cli("list-datasets", "--dataset-dir", str(data_dir), "--json").out)
    }
    assert listed["lc"] == "unknown"
    r = cli("train", "--model", "tiny", "--dataset", "lc", "--dataset-dir", str(data_dir), "--dry-run")
    assert "the cached length analysis of lc used another rule" in r.err
    assert "not measured by a dry run" in r.err  # a dry run never tokenizes

    # The file changes: the cache no longer counts, a fresh analysis (default rule) decides.
    with (data_dir / "lc.json").open("a") as f:
        f.write(" ")
    monkeypatch.setenv("ODA_SFT_LONG_PERCENT", "10")
    r = cli("train", "--model", "tiny", "--dataset", "lc", "--dataset-dir", str(data_dir), "--dry-run")
    assert r.code == 0, r.err
    assert "the cached length analysis of lc is ignored" in r.err
    monkeypatch.delenv("ODA_SFT_LONG_PERCENT")
    rendered: list[str] = []
    monkeypatch.setattr(plan_module, "render", lambda spec: rendered.append(spec.mode) or render(spec))
    planned = plan_train(TrainRequest(model="tiny", dataset="lc", dataset_dir=data_dir, output_root=tmp_path))
    assert planned.decision.needs_measurement  # planning alone never measures
    plan = settle_mode(planned)
    assert (plan.decision.source, plan.decision.mode, plan.config["cutoff_len"]) == ("measured", "long", 32768)
    assert plan.notes == plan.notes and rendered == ["long"]  # rendered once, in the mode it trains in
    assert "fresh analysis with the tiny tokenizer: at least " in plan.decision.reason
    assert "stored in dataset_info.json for later runs" in plan.decision.reason
    # Saved where it was measured: the next plan reads it instead of measuring again.
    again = plan_train(TrainRequest(model="tiny", dataset="lc", dataset_dir=data_dir, output_root=tmp_path))
    assert (again.decision.source, again.decision.mode) == ("cached", "long")
    r = cli("list-datasets", "--dataset-dir", str(data_dir), "--json")
    assert next(row for row in json.loads(r.out) if row["name"] == "lc")["mode"] == "long"


def test_inspect_errors(cli: Cli, data_dir: Path) -> None:
    r = cli("data", "inspect", "oda_dem", "--model", "tiny", "--dataset-dir", str(data_dir))
    assert r.code == 2 and "not registered" in r.err and "did you mean oda_demo" in r.err
    r = cli("data", "inspect", "oda_demo", "--model", "llama3", "--dataset-dir", str(data_dir))
    assert r.code == 2 and "unknown model 'llama3'" in r.err
    r = cli("data", "inspect", "oda_demo", "--model", "tiny", "--dataset-dir", str(data_dir), "--long-percent", "x")
    assert r.code == 2 and "is not a number" in r.err


def test_missing_real_tokenizer_offline_is_one_clear_line(
    cli: Cli, data_dir: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "empty-cache"))
    before = snapshot(data_dir)
    r = cli("data", "inspect", "oda_demo", "--model", "qwen", "--dataset-dir", str(data_dir))
    assert r.code == 2
    assert "the qwen (Qwen/Qwen2.5-7B) tokenizer is not in the Hugging Face cache and HF_HUB_OFFLINE is set" in r.err
    assert "or pass --model-path" in r.err
    assert snapshot(data_dir) == before


def test_inspect_preserves_other_entries_bytes(cli: Cli, data_dir: Path) -> None:
    info = data_dir / "dataset_info.json"
    info.write_text(
        '{\n    "other": {"file_name": "x.json", "columns": {"prompt": "q"}},\n'
        '    "oda_demo": {"file_name": "oda_demo.json"}\n}\n'
    )
    r = cli("data", "inspect", "oda_demo", "--model", "tiny", "--dataset-dir", str(data_dir))
    assert r.code == 0, r.err
    text = info.read_text()
    assert text.startswith('{\n    "other": {"file_name": "x.json", "columns": {"prompt": "q"}},\n    "oda_demo": {')
    (analysis,) = json.loads(text)["oda_demo"]["oda_sft"]["analyses"].values()
    assert analysis["mode"] == "standard"


def test_the_next_step_an_add_prints_works_as_printed(
    cli: Cli, data_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`data add` ends with the `data inspect` command to run next; run as printed (for a dataset dir
    with a space in its name), it measures the new dataset with the llama preset's tokenizer."""
    import shlex
    import shutil

    from oda_sft import tiny_model

    # The llama tokenizer as the Hugging Face cache holds it (no network here): the tiny one stands in.
    cache = tmp_path / "hf-cache"
    snapshot_dir = cache / "models--meta-llama--Llama-3.1-8B" / "snapshots" / ("0" * 40)
    snapshot_dir.mkdir(parents=True)
    (snapshot_dir.parents[1] / "refs").mkdir()
    (snapshot_dir.parents[1] / "refs" / "main").write_text("0" * 40)
    shutil.copy(tiny_model.ensure_model() / "tokenizer.json", snapshot_dir / "tokenizer.json")
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))  # read when used (data/sources/hub.py), as huggingface_hub does

    ddir = tmp_path / "my data"
    shutil.copytree(data_dir, ddir)
    r = cli("data", "add", "chat", str(jsonl(tmp_path / "chat.jsonl", CHAT)), "--dataset-dir", str(ddir))
    assert r.code == 0, r.err
    next_line = r.out.splitlines()[-1]
    assert next_line.startswith("next: `oda-sft data inspect chat --model llama --dataset-dir"), next_line
    argv = shlex.split(next_line.split("`")[1])
    done = cli(*argv[1:])
    assert done.code == 0, done.err
    stored = json.loads((ddir / "dataset_info.json").read_text())["chat"]["oda_sft"]["analyses"]
    assert list(stored) == ["meta-llama/Llama-3.1-8B"] and stored["meta-llama/Llama-3.1-8B"]["mode"] == "standard"


def test_inspecting_an_unregistered_catalog_dataset_names_the_add_it_needs(
    cli: Cli, data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    r = cli("data", "inspect", "OpenR1-Math-220k", "--model", "tiny", "--dataset-dir", str(data_dir))
    assert r.code == 2, r.err
    printed = r.err.split("`")[1]
    assert printed == f"oda-sft data add OpenR1-Math-220k --dataset-dir {data_dir}"  # fetched by name: no SOURCE
    # As printed, it is a catalog fetch (here offline, so it stops at the empty Hugging Face cache).
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    ran = cli(*printed.split()[1:], "--dry-run")
    assert "open-r1/OpenR1-Math-220k" in ran.err and "SOURCE" not in ran.err, ran.err


def test_the_2025_era_is_measured_with_its_own_template_and_kept_apart(
    cli: Cli, data_dir: Path, tmp_path: Path
) -> None:
    """0.9.2's `default` has no EOS after the system and user turns: a token fewer for each, stored under a key of
    its own, which `train --recipe 2025` decides by."""
    r = cli("data", "add", "c", str(jsonl(tmp_path / "c.jsonl", CHAT[:20])), "--dataset-dir", str(data_dir))
    assert r.code == 0, r.err
    means = {}
    r = cli("data", "inspect", "c", "--model", "tiny", "--dataset-dir", str(data_dir), "--exact", "--json")
    assert r.code == 0, r.err
    means["2026"] = json.loads(r.out)["stats"]["mean"]
    # Only the 2026 count stored: a 2025 run says so, with the command that measures under its template
    r = cli("train", "--model", "tiny", "--dataset", "c", "--dataset-dir", str(data_dir), "--recipe", "2025",
            "--dry-run")  # fmt: skip
    (advice,) = re.findall(r"`(oda-sft data inspect [^`]+)` measures it", r.err)
    assert "--model tiny --recipe 2025" in advice, advice
    r = cli(*shlex.split(advice)[1:], "--exact", "--json")  # as printed (plus the statistics this test reads)
    assert r.code == 0, r.err
    means["2025"] = json.loads(r.out)["stats"]["mean"]
    eos = sum(1 for row in CHAT[:20] for m in row["messages"] if m["role"] in ("system", "user")) / 20
    assert means["2026"] - means["2025"] == pytest.approx(eos)  # the EOS after each system and user turn
    keys = set(json.loads((data_dir / "dataset_info.json").read_text())["c"]["oda_sft"]["analyses"])
    assert len(keys) == 2 and {k.endswith(" (recipe 2025)") for k in keys} == {True, False}
    r = cli("train", "--model", "tiny", "--dataset", "c", "--dataset-dir", str(data_dir), "--recipe", "2025",
            "--dry-run")  # fmt: skip
    assert r.code == 0, r.err
    assert re.search(r"mode: standard \(cached analysis of this file in dataset_info.json \(tiny:\S+ \(recipe 2025\)",
                     r.err), r.err  # fmt: skip
