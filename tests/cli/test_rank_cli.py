"""`oda-sft rank` and `rank plot` in-process: every output form, a real PNG, bad input in one line, and the
`oda-sft eval` commands it prints work as printed (their dry run names the very settings id ranked)."""

from __future__ import annotations

import csv
import io
import json
import re
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from oda_sft import tiny_model
from oda_sft.eval import benchmarks as bench
from oda_sft.eval import render
from oda_sft.eval.template import default_template, template_digest

from conftest import Cli, snapshot
from ocstub import EMPTY_SAFETENSORS

TINY = bench.PRESETS["tiny"]
TEMPLATE = default_template(tiny_model.SPECIAL_TOKENS["eos_token"])
SETTINGS = render.settings_of(TINY, "all", bench.select(TINY, "all", None), template_digest(TEMPLATE))
ID = render.settings_id(SETTINGS)


def _record(score: float, status: str = "finished") -> dict[str, Any]:
    return {"id": ID, "settings": SETTINGS, "opencompass": {"version": "0.5.4", "path": "/oc", "fork": False},
            "status": status, "started_at": "t", "ended_at": "t", "scores": {"arithmetic": score},
            "domains": {"math": score}, "overall": score, "work_dir": "/w"}  # fmt: skip


def _run(root: Path, dataset: str, seed: int, scores: list[float]) -> Path:
    run = root / "tiny" / "full" / f"sft-{dataset}" / f"seed-{seed}"
    run.mkdir(parents=True)
    manifest = {"model": {"preset": "tiny"}, "dataset": {"name": dataset, "sha256": "s" + dataset}, "seed": seed,
                "status": "finished", "evals": [_record(s) for s in scores]}  # fmt: skip
    (run / "oda_sft_run.json").write_text(json.dumps(manifest))
    (run / "chat_template.jinja").write_text(TEMPLATE)  # what `eval --dry-run` of the run reads
    (run / "model.safetensors").write_bytes(EMPTY_SAFETENSORS)  # and its weights, all there
    return run


@pytest.fixture
def root(tmp_path: Path) -> Path:
    root = tmp_path / "saves"
    for seed, score in ((1, 40.0), (2, 44.0)):
        _run(root, "alpha", seed, [score])
    _run(root, "beta", 1, [30.0])
    _run(root, "gamma", 1, [])  # trained, not evaluated
    return root


def _commands(text: str) -> list[list[str]]:
    return [shlex.split(part) for part in text.split("`")[1::2] if part.startswith("oda-sft ")]


def test_the_table_and_the_printed_commands_work_as_printed(cli: Cli, root: Path) -> None:
    r = cli("rank", "--output-root", str(root))
    assert r.code == 0, r.err
    lines = r.out.splitlines()
    assert lines[0].startswith(f"tiny: evaluation settings {ID} (suite all: arithmetic; OpenCompass 0.5.4)")
    assert lines[2].split()[:8] == ["1", "alpha", "[no", "per-question]", "1,2", "42.00", "±", "2.83"]
    assert "not tested (Δ 12.00;" in lines[2] and lines[3].split()[:6] == ["2", "beta", "[no", "per-question]", "1",
                                                                          "30.00"]  # fmt: skip
    assert "vs next: separated when the 95% interval" in r.out
    # Two gaps: the base model and the unevaluated run; each names the eval that fills it.
    base_note = next(line for line in lines if "the base model is not evaluated" in line)
    (base_eval,) = _commands(base_note)
    assert base_eval == ["oda-sft", "eval", "--model", "tiny", "--base", "--output-root", str(root)]
    (run_eval,) = _commands(r.err)
    assert run_eval == ["oda-sft", "eval", "--run", str(root / "tiny" / "full" / "sft-gamma" / "seed-1")]
    for argv in (base_eval, run_eval):
        before = snapshot(root)
        dry = cli(*argv[1:], "--dry-run")
        assert dry.code == 0, dry.err
        assert f"# settings {ID}: arithmetic" in dry.out  # the same settings: its eval joins this group
        assert snapshot(root) == before


def test_the_gain_once_the_base_model_is_evaluated(cli: Cli, root: Path) -> None:
    base = root / "tiny" / "base"
    base.mkdir(parents=True)
    (base / "oda_sft_run.json").write_text(json.dumps({"base": True, "model": {"preset": "tiny"},
                                                       "status": "finished", "evals": [_record(10.0)]}))  # fmt: skip
    data = json.loads(cli("rank", "--output-root", str(root), "--json").out)
    (group,) = data["groups"]
    assert [(r["label"], r["gain"]["overall"]) for r in group["rows"]] == [("alpha", 32.0), ("beta", 20.0)]
    assert group["base"]["values"]["overall"]["mean"] == 10.0
    assert not [n for n in group["notes"] if "base" in n["subject"]]
    assert "GAIN (OVERALL)" in cli("rank", "--output-root", str(root)).out


def test_json_csv_and_markdown(cli: Cli, root: Path) -> None:
    data = json.loads(cli("rank", "--output-root", str(root), "--json").out)
    alpha = data["groups"][0]["rows"][0]
    assert alpha["values"]["math"] == {"mean": 42.0, "sd": pytest.approx(2.828427), "n": 2, "values": [40.0, 44.0]}
    assert alpha["vs_next"]["separated"] is False and alpha["vs_next"]["method"] == "untested"
    assert alpha["seeds"] == [1, 2]
    assert data["left_out"][0]["reason"] == "not evaluated" and data["left_out"][0]["command"].startswith("oda-sft")
    csv_out = cli("rank", "--output-root", str(root), "--csv").out.splitlines()
    head = csv_out[0].split(",")
    row = dict(zip(head, csv_out[1].split(","), strict=True))
    assert (row["dataset"], row["math_mean"], row["math_n"], row["arithmetic_mean"]) == ("alpha", "42.0", "2", "42.0")
    md = cli("rank", "--output-root", str(root), "--markdown").out
    assert "| 1 | alpha \\[no per-question\\] | 1,2 | 42.00 ± 2.83 | 42.00 ± 2.83 |" in md and "Left out:" in md
    both = cli("rank", "--output-root", str(root), "--json", "--csv")
    assert both.code == 2 and both.err.strip() == "error: choose one of --json, --csv and --markdown"


def test_plot_writes_a_png(cli: Cli, root: Path, tmp_path: Path) -> None:
    target = tmp_path / "out" / "board.png"
    r = cli("rank", "plot", "--output-root", str(root), "--out", str(target))
    assert r.code == 0, r.err
    assert r.out.strip() == f"wrote {target} and {target.with_suffix('.svg')} (2 datasets in 1 group(s))"
    assert target.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and target.stat().st_size > 5000
    svg = target.with_suffix(".svg").read_text()
    assert "<svg" in svg and "evaluation settings" in svg and not list(target.parent.glob(".*partial*"))
    default = cli("rank", "plot", "--output-root", str(root))
    assert default.code == 0 and (root / "leaderboard.png").is_file()


def test_bad_input_is_one_line_and_empty_is_said(cli: Cli, tmp_path: Path, root: Path) -> None:
    def one_error(*args: str) -> str:
        r = cli(*args)
        assert r.code != 0 and r.out == ""
        (line,) = r.err.strip().splitlines()
        return line

    assert one_error("rank", "--output-root", str(tmp_path / "nope")).startswith(f"error: output root {tmp_path}/nope")
    assert "choose one of general, math, code, reasoning, overall" in one_error("rank", "--output-root", str(root),
                                                                                "--by", "speed")  # fmt: skip
    assert "unknown --model 'lama'" in one_error("rank", "--output-root", str(root), "--model", "lama")
    assert "must end in .png" in one_error("rank", "plot", "--output-root", str(root), "--out", "x.jpg")
    empty = tmp_path / "empty"
    empty.mkdir()
    r = cli("rank", "--output-root", str(empty))
    assert (r.code, r.out) == (0, "") and "no runs under" in r.err
    assert json.loads(cli("rank", "--output-root", str(empty), "--json").out)["groups"] == []
    assert "nothing to plot" in one_error("rank", "plot", "--output-root", str(empty))
    broken = empty / "tiny" / "full" / "sft-x" / "seed-1"
    broken.mkdir(parents=True)
    (broken / "oda_sft_run.json").write_text("{")
    r = cli("rank", "--output-root", str(empty))
    assert r.code == 0 and f"left out {broken}: its oda_sft_run.json cannot be read" in r.err
    assert "no evaluated runs" in r.err


def test_rank_help_imports_nothing_heavy() -> None:
    code = ("import sys\nfrom oda_sft.cli import main\nrc = main(['rank', '--help'])\n"
            "print('HEAVY', sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'transformers', "
            "'matplotlib', 'llamafactory')), file=sys.stderr)\nsys.exit(rc)\n")  # fmt: skip
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0 and "HEAVY []" in proc.stderr, proc.stderr
    assert "plot" in proc.stdout and "--markdown" in proc.stdout


HOSTILE = ["=cmd|' /C calc'!A0", "+1+1", "@SUM(1+1)", "-2+3", "evil\nname", "a|b <img src=x onerror=alert(1)>",
           "d$\\foo$"]  # fmt: skip


def _named(root: Path, folder: str, name: str, score: float) -> Path:
    """A run whose manifest names a dataset no `data add` would accept (a copied run, another version)."""
    run = _run(root, folder, 1, [score])
    path = run / "oda_sft_run.json"
    path.write_text(json.dumps({**json.loads(path.read_text()), "dataset": {"name": name, "sha256": folder}}))
    return run


def test_names_from_a_manifest_are_text_in_every_output_form(cli: Cli, tmp_path: Path) -> None:
    """Issue 22 item 11: a spreadsheet ran `=cmd|...` from --csv; a newline in a name split a row of the table
    and of --markdown; a `$` opened matplotlib's mathtext, which failed."""
    root = tmp_path / "saves"
    for i, name in enumerate(HOSTILE):
        _named(root, f"n{i}", name, 10.0 + i)
    rows = list(csv.reader(io.StringIO(cli("rank", "--output-root", str(root), "--csv").out)))
    datasets = [r[rows[0].index("dataset")] for r in rows[1:]]
    assert len(rows) == 1 + len(HOSTILE)
    for cell in datasets:
        assert not cell.startswith(("=", "+", "-", "@")), cell
    assert "'=cmd|' /C calc'!A0" in datasets and "'+1+1" in datasets and "'@SUM(1+1)" in datasets
    table = cli("rank", "--output-root", str(root)).out.splitlines()
    assert len([line for line in table if line[:1].isdigit()]) == len(HOSTILE) and "evil\\nname" in "\n".join(table)
    assert not any(line.startswith("name") for line in table)
    md = cli("rank", "--output-root", str(root), "--markdown").out
    body = [line for line in md.splitlines() if line.startswith("|")]
    assert len(body) == 2 + len(HOSTILE)
    assert all(line.endswith(" |") and len(re.split(r"(?<!\\)\|", line)) == 8 for line in body[2:])  # 6 cells
    assert "evil\\\\nname" in md and "\\<img" in md and "<img" not in md.replace("\\<img", "")
    data = json.loads(cli("rank", "--output-root", str(root), "--json").out)
    assert sorted(r["dataset"] for r in data["groups"][0]["rows"]) == sorted(HOSTILE)  # JSON keeps them as they are
    drawn = cli("rank", "plot", "--output-root", str(root), "--out", str(tmp_path / "board.png"))
    assert drawn.code == 0, drawn.err
    listed = cli("runs", "--output-root", str(root))
    assert len(listed.out.splitlines()) == 1 + len(HOSTILE)
    plotted = cli("runs", "plot", "--output-root", str(root), "-o", str(tmp_path / "loss.png"))
    assert "Traceback" not in plotted.err and plotted.code == 2 and "nothing to plot" in plotted.err  # no loss logged
    for i, _ in enumerate(HOSTILE):
        (root / "tiny" / "full" / f"sft-n{i}" / "seed-1" / "trainer_log.jsonl").write_text(
            '{"current_steps": 1, "loss": 2.0}\n'
        )
    plotted = cli("runs", "plot", "--output-root", str(root), "-o", str(tmp_path / "loss.png"))
    assert plotted.code == 0, plotted.err


def test_a_run_dir_that_is_a_link_is_followed_or_said(cli: Cli, root: Path, tmp_path: Path) -> None:
    """Issue 22 item 12: a run kept on another disk, linked into the output root, was skipped without a word."""
    elsewhere = _run(tmp_path / "disk2", "delta", 1, [50.0])
    linked = root / "tiny" / "full" / "sft-delta" / "seed-1"
    linked.parent.mkdir(parents=True)
    linked.symlink_to(elsewhere, target_is_directory=True)
    dangling = root / "tiny" / "full" / "sft-gone" / "seed-1"
    dangling.parent.mkdir(parents=True)
    dangling.symlink_to(tmp_path / "unmounted" / "seed-1")
    (root / "tiny" / "loop").symlink_to(root, target_is_directory=True)  # walked once, not forever
    data = json.loads(cli("rank", "--output-root", str(root), "--json").out)
    assert sorted(r["label"] for r in data["groups"][0]["rows"]) == ["alpha", "beta", "delta"]
    reasons = {n["subject"]: n["reason"] for n in data["left_out"]}
    assert (
        reasons[str(dangling)] == f"a link to {tmp_path / 'unmounted' / 'seed-1'}, which does not exist: not followed"
    )
    listed = cli("runs", "--output-root", str(root))
    assert f"left out {dangling}: a link to" in listed.err and str(linked) in listed.out
    assert len(listed.out.splitlines()) == 1 + 5  # alpha 1, 2, beta, gamma, delta: each once


def test_an_output_root_that_is_a_file_is_said_so(cli: Cli, tmp_path: Path) -> None:
    """Issue 22 item 12: it was reported as "does not exist"."""
    afile = tmp_path / "saves.txt"
    afile.write_text("")
    for args in (["rank"], ["rank", "plot"], ["runs"], ["runs", "plot"]):
        r = cli(*args, "--output-root", str(afile))
        assert r.code == 2 and r.err.startswith(f"error: output root {afile} is not a directory: "), r.err


def test_the_base_rows_seeds_are_empty_not_none(cli: Cli, root: Path) -> None:
    """Issue 22 item 12: the CSV's base row had seeds `None` (and --json [null])."""
    base = root / "tiny" / "base"
    base.mkdir(parents=True)
    (base / "oda_sft_run.json").write_text(json.dumps({"base": True, "model": {"preset": "tiny"},
                                                       "status": "finished", "evals": [_record(10.0)]}))  # fmt: skip
    rows = list(csv.DictReader(io.StringIO(cli("rank", "--output-root", str(root), "--csv").out)))
    (base_row,) = [r for r in rows if r["rank"] == "base"]
    assert base_row["seeds"] == "" and "None" not in base_row.values()
    assert json.loads(cli("rank", "--output-root", str(root), "--json").out)["groups"][0]["base"]["seeds"] == []
