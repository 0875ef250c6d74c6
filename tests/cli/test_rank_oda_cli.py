"""`oda-sft rank --oda` and `--rules oda-site` in-process: ODA's published rows as the site shows them (every
value and rank of its processed_leaderboard_data.json), a user's runs in the same table when their era and
evaluation settings match the published ones and apart (saying what differs) otherwise; `list-datasets --all`
shows the published overall and rank (`data add --from oda`: tests/cli/test_fetch_oda.py)."""

from __future__ import annotations

import json
import math
import re
import shlex
from pathlib import Path
from typing import Any

import pytest

from oda_sft.eval.oda_site.compare import SHEET_BENCHMARKS, published_settings
from oda_sft.eval.render import settings_id

from conftest import Cli

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "oda_site" / "processed_leaderboard_data.values.json"
PUBLISHED: dict[str, Any] = json.loads(FIXTURE.read_text(encoding="utf-8"))
FORK = {"version": "0.4.2", "path": "/oc", "fork": True}


def _expected(model: str) -> list[tuple[str, int | None, float]]:
    """The site's table: instruct, base, then by overall (stable), ranked on Math.round(v*10)/10 with ties."""
    rows = PUBLISHED[model]
    top = [r for r in rows if r["domain"] == "instruct"] + [r for r in rows if r["domain"] == "base"]
    rest = sorted((r for r in rows if r["domain"] not in ("base", "instruct")), key=lambda r: -r["overall_avg"])
    one = [math.floor(r["overall_avg"] * 10 + 0.5) / 10 for r in rest]
    out: list[tuple[str, int | None, float]] = [(r["name"], None, r["overall_avg"]) for r in top]
    return out + [(r["name"], 1 + sum(o > v for o in one), r["overall_avg"]) for r, v in zip(rest, one, strict=True)]


@pytest.mark.parametrize("model", ["llama", "qwen"])
def test_rank_oda_json_reproduces_the_published_leaderboard(
    cli: Cli, model: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # no saves/ here: ODA's rows alone
    r = cli("rank", "--model", model, "--oda", "--json")
    assert r.code == 0, r.err
    (table,) = json.loads(r.out)["tables"]
    assert table["source"]["commit"].startswith("0437f13") and table["source"]["path"] == "data/0726.xlsx"
    got = [(row["name"], row["rank"], row["values"]["overall"]) for row in table["rows"]]
    want = _expected(model)
    assert [(n, k) for n, k, _ in got] == [(n, k) for n, k, _ in want]  # the order and every rank
    by_name = {row["name"]: row for row in table["rows"]}
    for w in PUBLISHED[model]:
        for metric in ("general", "math", "code", "reasoning", "overall"):
            assert by_name[w["name"]]["values"][metric] == pytest.approx(w[f"{metric}_avg"], abs=0.01)
    assert [row["kind"] for row in table["rows"][:2]] == ["instruct", "base"]
    assert "no saves/" in table["notes"][0]


def _scores(value: float) -> dict[str, float]:
    return {b: value for b in SHEET_BENCHMARKS} | {"math": 0.0}  # MATH has no column on the site


def _run(root: Path, dataset: str, seed: int, scores: dict[str, float], oc: dict[str, Any] = FORK,
         era: str | None = "2025", settings: dict[str, Any] | None = None) -> None:  # fmt: skip
    settings = settings or published_settings("llama")
    record = {"id": settings_id(settings), "settings": settings, "opencompass": oc, "status": "finished",
              "started_at": "t", "ended_at": "t", "scores": scores, "domains": {}, "overall": None,
              "work_dir": "/w"}  # fmt: skip
    manifest = {"model": {"preset": "llama"}, "dataset": {"name": dataset, "sha256": "s" + dataset}, "seed": seed,
                "status": "finished", "evals": [record]} | ({"recipe_era": era} if era else {})  # fmt: skip
    run = root / "llama3.1-8b" / "full" / f"sft-{dataset}" / f"seed-{seed}"
    run.mkdir(parents=True)
    (run / "oda_sft_run.json").write_text(json.dumps(manifest))


def test_a_users_runs_join_the_table_when_they_compare_and_stand_apart_otherwise(cli: Cli, tmp_path: Path) -> None:
    root = tmp_path / "saves"
    _run(root, "mine", 42, _scores(99.0))  # era 2025, ODA's settings: tops the table
    # a benchmark with no score is an empty cell, skipped (a recorded null is an invalid record: issue 22 item 10)
    _run(root, "mine", 2, {b: v for b, v in _scores(97.0).items() if b != "drop"})
    _run(root, "old", 42, _scores(60.0), era=None)  # no era recorded: the current recipe
    _run(root, "pypi", 42, _scores(60.0), oc={"version": "0.5.4", "path": "/oc", "fork": False})
    r = cli("rank", "--model", "llama", "--oda", "--json", "--output-root", str(root))
    assert r.code == 0, r.err
    (table,) = json.loads(r.out)["tables"]
    first = table["rows"][2]
    assert (first["name"], first["origin"], first["rank"], first["seeds"]) == ("mine (yours)", "run", 1, [2, 42])
    general = (99.0 * 4 + 97.0 * 3) / 7  # every seed's cells pooled, the empty one left out
    assert first["values"]["general"] == pytest.approx(round(general, 2)) and first["cells"]["general"] == 7
    assert table["rows"][3]["rank"] == 2 and table["rows"][3]["origin"] == "oda"  # ODA's first dataset moves down
    apart = {a["name"]: a["reasons"] for a in table["not_comparable"]}
    assert apart["old (yours)"] == ["trained with the 2026 recipe, ODA's rows with the 2025 one"]
    assert apart["pypi (yours)"][0] == "evaluated with OpenCompass 0.5.4 without ODA's fork"
    text = cli("rank", "--model", "llama", "--oda", "--output-root", str(root))
    assert text.code == 0 and "not comparable: old (yours)" in text.out
    assert text.out.splitlines()[4].split()[:3] == ["1", "mine", "(yours)"]


def test_settings_that_differ_are_named(cli: Cli, tmp_path: Path) -> None:
    root = tmp_path / "saves"
    settings = published_settings("llama")
    settings = {**settings, "benchmarks": [b for b in settings["benchmarks"] if b != "gpqa"],
                "generation": {**settings["generation"], "max_out_len": 4096}}  # fmt: skip
    _run(root, "short", 42, _scores(50.0), settings=settings)
    r = cli("rank", "--model", "llama", "--oda", "--json", "--output-root", str(root))
    (item,) = json.loads(r.out)["tables"][0]["not_comparable"]
    assert item["reasons"] == ["not evaluated on gpqa", "generation max_out_len 4096, ODA's 32768"]


def test_rules_oda_site_on_the_users_own_table(cli: Cli, tmp_path: Path) -> None:
    root = tmp_path / "saves"
    scores = _scores(50.0) | {"humaneval": 80.0, "arc_c": 20.0}
    _run(root, "a", 42, scores, era=None)  # the era matters to --oda only
    r = cli("rank", "--rules", "oda-site", "--json", "--output-root", str(root))
    assert r.code == 0, r.err
    (table,) = json.loads(r.out)["tables"]
    (row,) = table["rows"]
    assert row["values"]["math"] == pytest.approx((50 * 5 + 80) / 6, abs=0.005)  # HumanEval in math
    assert row["values"]["code"] == pytest.approx((50 * 3 + 20) / 4, abs=0.005)  # ARC-c in code
    assert row["rank"] == 1 and table["eval_id"]
    default = json.loads(cli("rank", "--json", "--output-root", str(root)).out)
    values = default["groups"][0]["rows"][0]["values"]
    assert values["math"]["mean"] == 50.0, "oda-sft's rules stay the default: HumanEval is code, not math"
    assert values["code"]["mean"] == pytest.approx((50 * 3 + 80) / 4)


def test_a_domain_without_cells_is_shown_as_none_not_as_a_zero(cli: Cli, tmp_path: Path) -> None:
    """The site stores 0 for a domain with no cells and leaves it out of the overall: shown as —, not 0.00."""
    root = tmp_path / "saves"
    scores = {k: v for k, v in _scores(50.0).items() if k not in {"livecodebench", "mbpp", "humaneval_plus", "arc_c"}}
    scores.pop("humaneval", None)
    _run(root, "a", 42, scores, era=None)
    data = json.loads(cli("rank", "--rules", "oda-site", "--json", "--output-root", str(root)).out)
    (row,) = data["tables"][0]["rows"]
    assert row["values"]["code"] == 0.0 and row["values"]["overall"] == pytest.approx(50.0)  # the site's values
    shown = cli("rank", "--rules", "oda-site", "--output-root", str(root))
    assert shown.code == 0, shown.err
    (line,) = [ln for ln in shown.out.splitlines() if ln.lstrip().startswith("1 ")]
    assert line.split()[-5:] == ["50.00", "50.00", "—", "50.00", "50.00"], line  # general, math, code, reasoning


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--oda", "--model", "qwen3"], "ODA published a leaderboard for llama and qwen only"),
        (["--oda", "--model", "lama"], "(did you mean llama?)"),
        (["--rules", "site"], "unknown --rules 'site'"),
        (["--oda", "--by", "maths"], "unknown --by 'maths'"),
    ],
)
def test_bad_input_is_one_line(cli: Cli, args: list[str], message: str, tmp_path: Path,
                               monkeypatch: pytest.MonkeyPatch) -> None:  # fmt: skip
    monkeypatch.chdir(tmp_path)
    r = cli("rank", *args)
    assert r.code != 0 and message in r.err and len(r.err.strip().splitlines()) == 1, r.err


def test_list_datasets_all_shows_the_published_overall_and_rank(
    cli: Cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    r = cli("list-datasets", "--all", "--json", "--dataset-dir", str(tmp_path))
    rows = {row["name"]: row for row in json.loads(r.out)}
    assert rows["AM-Thinking-v1-Distilled-math"]["oda_published"]["llama"] == {"overall": 50.59, "rank": 1, "of": 89}
    assert rows["oda-OpenThoughts"]["oda_published"] == rows["OpenThoughts-114k"]["oda_published"]
    assert rows["OpenMathReasoning-cot"]["oda_published"] == {}
    table = cli("list-datasets", "--all", "--dataset-dir", str(tmp_path)).out
    line = next(x for x in table.splitlines() if x.startswith("AM-Thinking-v1-Distilled-math "))
    assert "50.59 (#1/89)" in line and "`oda-sft rank --model llama --oda`" in table
    command = table.split("`")[1].split()[1:]
    shown = cli(*command)  # the advice works as printed
    assert shown.code == 0 and "AM-Thinking-v1-Distilled-math" in shown.out


def test_the_says_why_advice_names_the_same_runs_and_works_as_printed(cli: Cli, tmp_path: Path) -> None:
    root = tmp_path / "elsewhere"
    root.mkdir()
    r = cli("rank", "--output-root", str(root), "--rules", "oda-site")
    assert r.code == 0, r.err
    (advice,) = re.findall(r"`(oda-sft rank [^`]+)` says why", r.out)
    assert advice == f"oda-sft rank --output-root {root}"  # it named the default saves/ before, which is not here
    assert cli(*shlex.split(advice)[1:]).code == 0
