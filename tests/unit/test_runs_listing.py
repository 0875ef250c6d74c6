"""`runs` and `runs plot` over whatever a kill, a full disk or a person left in a run dir: every run
listed, none dropped, no traceback; curves labelled so no two look alike; what was left out, said."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from oda_sft.runs import lock
from oda_sft.runs.listing import summarise
from oda_sft.runs.plot import label

from conftest import Cli


def _run(root: Path, name: str, manifest: Any, log: str | None = None, raw: bool = False) -> Path:
    run = root / "tiny" / "full" / "sft-d" / name
    run.mkdir(parents=True)
    (run / "oda_sft_run.json").write_text(manifest if raw else json.dumps(manifest))
    if log is not None:
        (run / "trainer_log.jsonl").write_text(log)
    return run


GOOD = {"model": {"preset": "tiny"}, "dataset": {"name": "d"}, "seed": 42, "mode": {"mode": "standard"},
        "status": "finished", "results": {"final_loss": 1.5}}  # fmt: skip
LOG = '{"current_steps": 1, "loss": 3.0}\n{"current_steps": 2, "loss": 2.0}\n'


@pytest.mark.parametrize(
    ("manifest", "raw"),
    [
        ("{not json", True),
        ("[1, 2]", True),
        ({"model": "tiny", "dataset": ["d"], "seed": "42", "mode": 3, "results": "x", "status": 7}, False),
        ({**GOOD, "results": {"final_loss": "1.5", "train_runtime": 1e400, "tokens_per_second": True}}, False),
        ({**GOOD, "status": "running", "attempts": [{"pid": 10**30}], "host": "elsewhere"}, False),
        ({**GOOD, "attempts": "x", "seed": 10**40}, False),
    ],
)
def test_a_malformed_manifest_is_listed_not_fatal(cli: Cli, tmp_path: Path, manifest: Any, raw: bool) -> None:
    _run(tmp_path, "seed-42", manifest, LOG, raw)
    _run(tmp_path, "seed-43", {**GOOD, "seed": 43}, LOG)
    for args in (["runs"], ["runs", "--json"], ["runs", "plot", "-o", str(tmp_path / "p.png")]):
        r = cli(*args, "--output-root", str(tmp_path))
        assert r.code == 0, r.err
        assert "Traceback" not in r.err
    listed = {Path(r.path).name: r for r in summarise(tmp_path)}
    assert set(listed) == {"seed-42", "seed-43"}  # nothing silently dropped
    if raw:
        assert listed["seed-42"].status == "unreadable"


@pytest.mark.parametrize(
    "log",
    [
        '{"current_steps": 1e400, "loss": 2.0}\n',
        '{"current_steps": 100000000000000000000000000000, "loss": 2.0}\n',
        '{"current_steps": 1, "loss": NaN}\n{"current_steps": 2, "loss": Infinity}\n',
        '{"current_steps": "1", "loss": "2"}\n[1]\n"x"\n{"current_st',
        '{"current_steps": true, "loss": false}\n',
    ],
)
def test_malformed_trainer_log_lines_are_skipped(cli: Cli, tmp_path: Path, log: str) -> None:
    _run(tmp_path, "seed-42", GOOD, log + LOG.replace("1,", "5,").replace("2,", "6,"))
    r = cli("runs", "plot", "--output-root", str(tmp_path), "-o", str(tmp_path / "p.png"))
    assert r.code == 0, r.err
    assert (tmp_path / "p.png").read_bytes()[:4] == b"\x89PNG"


def test_plot_says_which_runs_it_left_out_and_labels_moved_runs_apart(cli: Cli, tmp_path: Path) -> None:
    _run(tmp_path, "seed-42", GOOD, LOG)
    _run(tmp_path, "seed-42.replaced-20261128T010101Z", GOOD, LOG)
    _run(tmp_path, "seed-42.replaced-20261128T020202Z", GOOD, LOG)
    empty = _run(tmp_path, "seed-44", {**GOOD, "seed": 44, "status": "failed"})
    _run(tmp_path, "seed-45", "{", raw=True)
    r = cli("runs", "plot", "--output-root", str(tmp_path), "-o", str(tmp_path / "p.png"))
    assert r.code == 0, r.err
    assert "(3 of 5 runs)" in r.out
    assert f"left out {empty}: no loss logged yet" in r.err
    assert "seed-45/oda_sft_run.json cannot be read" in r.err
    labels = [label(s) for s in summarise(tmp_path) if s.status == "finished"]
    assert len(set(labels)) == 3 and "tiny d seed 42 (finished)" in labels
    assert "tiny d seed 42 [seed-42.replaced-20261128T010101Z] (finished)" in labels


def test_a_live_trainer_is_running_whatever_the_manifest_says_and_a_dead_one_is_stale(tmp_path: Path) -> None:
    run = _run(tmp_path, "seed-42", {**GOOD, "status": "running", "attempts": [{"pid": 99999999}]})
    with lock.acquire(run):
        assert summarise(tmp_path)[0].status == "running"
        (run / "oda_sft_run.json").write_text(json.dumps({**GOOD, "status": "interrupted"}))
        assert summarise(tmp_path)[0].status == "running"  # e.g. a rerun starting over an interrupted run
    (run / "oda_sft_run.json").write_text(json.dumps({**GOOD, "status": "running"}))
    assert summarise(tmp_path)[0].status == "stale"  # nobody holds the lock: whoever wrote running is gone
