"""`oda-sft rank`'s arithmetic and grouping (eval/leaderboard.py) against a table computed by hand.

The manifests are dicts written into a tmp dir: runs of datasets A (3 seeds), B (2), C (1) and D (2, one
of them missing a benchmark), the llama base model, and runs left out for each reason.
"""

from __future__ import annotations

import csv
import io
import json
import math
from pathlib import Path
from typing import Any

import pytest

from oda_sft.eval import leaderboard as lb
from oda_sft.eval import leaderboard_output as out

BENCHES = ["drop", "ifeval", "gsm8k", "math"]  # general: drop, ifeval; math: gsm8k, math
ID = "aaaaaaaaaaaa"
MATH_ID = "bbbbbbbbbbbb"


def settings(benchmarks: list[str] = BENCHES, suite: str = "custom") -> dict[str, Any]:
    return {"preset": "llama", "suite": suite, "benchmarks": benchmarks, "generation": {}, "judges": {}}


def evaluation(scores: dict[str, float], eval_id: str = ID, status: str = "finished", **over: Any) -> dict[str, Any]:
    rec = {"id": eval_id, "settings": settings(), "opencompass": {"version": "0.4.2", "path": "/oc", "fork": True},
           "status": status, "started_at": "t", "ended_at": "t", "scores": scores, "domains": {}, "overall": None,
           "work_dir": "/w"}  # fmt: skip
    return {**rec, **over}


def write(run_dir: Path, data: dict[str, Any] | str) -> Path:
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "oda_sft_run.json").write_text(data if isinstance(data, str) else json.dumps(data))
    return run_dir


def run(root: Path, dataset: str, seed: int, evals: list[dict[str, Any]], status: str = "finished",
        sha: str | None = None) -> Path:  # fmt: skip
    data = {"model": {"preset": "llama"}, "dataset": {"name": dataset, "sha256": sha or f"sha-{dataset}"},
            "seed": seed, "status": status, "evals": evals}  # fmt: skip
    return write(root / "llama3.1-8b" / "full" / f"sft-{dataset}" / f"seed-{seed}", data)


def four(drop: float, ifeval: float, gsm8k: float, math_: float) -> dict[str, float]:
    return {"drop": drop, "ifeval": ifeval, "gsm8k": gsm8k, "math": math_}


@pytest.fixture
def root(tmp_path: Path) -> Path:
    root = tmp_path / "saves"
    run(root, "A", 1, [evaluation(four(50, 40, 60, 20))])
    run(root, "A", 2, [evaluation(four(52, 44, 62, 22))])
    math_only = evaluation({"gsm8k": 70, "math": 30}, MATH_ID, settings=settings(["gsm8k", "math"], "math"))
    run(root, "A", 3, [evaluation(four(54, 42, 64, 24)), math_only])
    run(root, "B", 1, [evaluation(four(50, 38, 58, 22))])
    run(root, "B", 2, [evaluation(four(46, 42, 60, 24))])
    run(root, "C", 1, [evaluation(four(30, 30, 30, 30))])
    run(root, "D", 1, [evaluation(four(80, 80, 80, 80))])
    run(root, "D", 2, [evaluation({"drop": 70, "ifeval": 70, "gsm8k": 70})])  # no score for math
    write(root / "llama3.1-8b" / "base", {"base": True, "model": {"preset": "llama"}, "status": "finished",
                                          "evals": [evaluation(four(40, 20, 40, 10))]})  # fmt: skip
    return root


def test_the_hand_computed_table(root: Path) -> None:
    board = lb.board([root])
    main = next(g for g in board.groups if g.eval_id == ID)
    assert main.domains == ["general", "math"] and main.benchmarks == BENCHES
    rows = {r.label: r for r in main.rows}
    a = rows["A"]
    assert a.seeds == [1, 2, 3]
    assert a.stat("general").mean == pytest.approx(47) and a.stat("general").sd == pytest.approx(math.sqrt(3))
    assert a.stat("math").mean == pytest.approx(42) and a.stat("math").sd == pytest.approx(2)
    assert a.stat("overall").mean == pytest.approx(44.5) and a.stat("overall").sd == pytest.approx(math.sqrt(3.25))
    assert a.stat("drop").values == (50, 52, 54)
    b = rows["B"]
    assert b.stat("overall").mean == pytest.approx(42.5) and b.stat("overall").sd == pytest.approx(math.sqrt(0.5))
    # The base model: general 30, math 25, overall 27.5; the gain is the mean's.
    assert main.base is not None and main.base.stat("overall").mean == pytest.approx(27.5)
    assert a.gain["overall"] == pytest.approx(17) and a.gain["general"] == pytest.approx(17)
    assert b.gain["math"] == pytest.approx(41 - 25)
    # D's second seed has no math score: its math and overall are left out, never a mean of fewer benchmarks.
    d = rows["D"]
    assert d.stat("general").values == (80, 70) and d.stat("math").values == (80,) and d.stat("overall").n == 1
    assert any("D seed 2 has no score for math: left out of math, overall" in n.reason for n in main.notes)
    # Ranked by overall: D (80, one seed), A, B, C.
    assert [r.label for r in main.rows] == ["D", "A", "B", "C"]
    # Evaluated before per-question results were kept, with no question count: never separated by seeds alone.
    assert d.gap is not None and d.gap.method == "untested" and not d.gap.separated
    assert a.gap is not None and a.gap.difference == pytest.approx(2.0) and not a.gap.separated
    assert b.gap is not None and b.gap.method == "untested" and rows["C"].gap is None
    assert not a.per_question and set(a.vs_next) == {"general", "math", "overall"}


def test_other_settings_are_another_group_never_averaged(root: Path) -> None:
    board = lb.board([root])
    assert [g.eval_id for g in board.groups] == [ID, MATH_ID]
    other = board.groups[1]
    assert [r.label for r in other.rows] == ["A"] and other.rows[0].stat("math").values == (50,)
    assert other.domains == ["math"] and other.base is None
    (note,) = [n for n in other.notes if n.fix is not None]
    assert note.reason == f"the base model was evaluated with other settings ({ID}), not these: no gain shown"
    assert note.fix == lb.Fix(root / "llama3.1-8b" / "full" / "sft-A" / "seed-3", "llama", True, root, "math", (), True)
    # The first group's A is its three seeds only.
    assert board.groups[0].rows[1].stat("math").n == 3


def test_another_opencompass_is_another_group(tmp_path: Path) -> None:
    root = tmp_path / "saves"
    run(root, "A", 1, [evaluation(four(1, 1, 1, 1))])
    run(root, "A", 2, [evaluation(four(3, 3, 3, 3), opencompass={"version": "0.5.4", "path": "/x", "fork": False})])
    groups = lb.board([root]).groups
    assert [len(g.rows[0].runs) for g in groups] == [1, 1]
    assert "OpenCompass 0.4.2 (ODA fork)" in out.title(groups[0], "overall")


def test_left_out_with_reasons(tmp_path: Path) -> None:
    root = tmp_path / "saves"
    run(root, "A", 1, [evaluation(four(1, 1, 1, 1))])
    not_evaluated = run(root, "E", 1, [])
    training = run(root, "F", 1, [], status="running")
    failed = run(root, "G", 1, [evaluation({}, status="failed")])
    stale = run(root, "H", 1, [evaluation({}, status="running")])
    broken = write(root / "llama3.1-8b" / "full" / "sft-I" / "seed-1", "{not json")
    odd = run(root, "J", 1, ["not a record"])  # type: ignore[list-item]
    board = lb.board([root])
    reasons = {n.subject: n for n in board.left_out}
    assert reasons[str(not_evaluated)].reason == "not evaluated" and reasons[str(not_evaluated)].fix is not None
    assert reasons[str(training)].reason == "training is running: not evaluated"
    assert reasons[str(failed)].reason == f"evaluation {ID} (custom) is failed"
    assert reasons[str(failed)].fix == lb.Fix(failed, "llama", False, root, "all", tuple(BENCHES))
    assert "was left at running" in reasons[str(stale)].reason
    assert reasons[str(broken)].reason == "its oda_sft_run.json cannot be read"
    assert reasons[str(odd)].reason == "its evaluation record 1 cannot be read"


def test_duplicate_seeds_and_same_named_datasets(tmp_path: Path) -> None:
    root, other = tmp_path / "saves", tmp_path / "elsewhere"
    run(root, "A", 1, [evaluation(four(1, 1, 1, 1))])
    run(other, "A", 1, [evaluation(four(9, 9, 9, 9))])  # the same seed again, in another root
    run(root, "K", 1, [evaluation(four(2, 2, 2, 2))], sha="1111111122")
    run(other, "K", 2, [evaluation(four(4, 4, 4, 4))], sha="2222222233")
    # The same root twice, and a root inside another: each manifest counts once.
    (group,) = lb.board([root, other, root, root / "llama3.1-8b"]).groups
    labels = sorted(r.label for r in group.rows)
    assert labels == ["A", "K@11111111", "K@22222222"]
    a = next(r for r in group.rows if r.label == "A")
    assert a.stat("overall").values == (1,)
    assert any("seed 1 of A is counted from" in n.reason for n in group.notes)
    assert any("2 different files" in n.reason for n in group.notes)


def test_model_filter_and_empty_roots(root: Path, tmp_path: Path) -> None:
    assert lb.board([root], model="qwen").groups == []
    empty = lb.board([tmp_path / "nothing-here"])
    assert (empty.groups, empty.left_out, empty.manifests) == ([], [], 0)


@pytest.mark.parametrize(
    "scores",
    [four(50, 40, 60, 20), {"drop": 50, "gsm8k": 60, "math": 20}, {"drop": 50}],
    ids=["complete", "one missing", "a domain empty"],
)
def test_the_record_and_rank_apply_one_rule_to_a_missing_benchmark(scores: dict[str, float]) -> None:
    """The eval's record (summary.record_fields) and rank give the same domains and overall: a domain only
    over all its benchmarks, overall only over all domains; the record keeps the rest apart, marked partial."""
    from oda_sft.eval import summary
    from oda_sft.eval.benchmarks import BY_NAME

    values = lb.run_values(scores, BENCHES, ["general", "math"])
    fields = summary.record_fields(scores, tuple(BY_NAME[b] for b in BENCHES))
    assert {d: values[d] for d in ("general", "math") if values[d] is not None} == fields["domains"]
    assert values["overall"] == fields["overall"]
    if len(scores) == 4:
        assert fields["overall"] == pytest.approx(42.5) and "partial_domains" not in fields
    else:
        assert fields["overall"] is None and values["general"] is None
        assert fields["partial_domains"] == {"general": 50.0}  # drop's alone: shown apart, never ranked
        assert ("math" in fields["domains"]) == ("math" in scores)


def test_every_output_form(root: Path) -> None:
    board = lb.board([root])

    def advise(fix: lb.Fix) -> str:
        return f"oda-sft eval --run {fix.run_dir}"

    text = out.table(board, advise)
    assert "47.00 ± 1.73" in text and "44.50 ± 1.80" in text and "+17.00" in text
    assert "not tested (Δ 2.00; no per-question results or question count for drop, ifeval, gsm8k, math)" in text
    assert "80.00 (n=1)" in text and out.rule(0.95) in text and "base (llama)" in text
    md = out.markdown(board, advise)
    assert (
        md.count("### llama: evaluation settings") == 2
        and "| 2 | A \\[no per-question\\] | 1,2,3 | 47.00 ± 1.73 |" in md
    )
    data = json.loads(out.as_json(board, advise))
    first = data["groups"][0]
    assert [r["rank"] for r in first["rows"]] == [1, 2, 3, 4] and first["base"]["values"]["overall"]["mean"] == 27.5
    assert first["rows"][1]["values"]["overall"]["sd"] == pytest.approx(math.sqrt(3.25))
    vs = first["rows"][1]["vs_next"]
    assert (vs["separated"], vs["method"], vs["interval"], data["confidence"]) == (False, "untested", None, 0.95)
    assert next(n for n in data["groups"][1]["notes"] if n["command"])["command"].startswith("oda-sft eval --run ")
    lines = out.as_csv(board).splitlines()
    head = lines[0].split(",")
    a = dict(zip(head, lines[2].split(","), strict=True))
    assert (a["dataset"], a["rank"], a["seeds"], a["overall_mean"], a["overall_gain"]) == ("A", "2", "1 2 3", "44.5",
                                                                                           "17.0")  # fmt: skip
    assert a["overall_n"] == "3" and a["vs_next_separated"] == "false" and a["code_mean"] == ""
    assert any(line.split(",")[2] == "base" for line in lines)


def test_a_replaced_run_never_stands_for_the_current_one(tmp_path: Path) -> None:
    """Issue 22 item 9: after `train --force`, seed-1.replaced-<time> kept its evaluation and ranked as A."""
    from oda_sft.runs.outdir import set_aside

    root = tmp_path / "saves"
    old = set_aside(run(root, "A", 1, [evaluation(four(77, 77, 77, 77))]))  # what train --force does
    current = run(root, "A", 1, [])
    assert old.name.startswith("seed-1.replaced-")
    board = lb.board([root])
    assert board.groups == []
    reasons = {n.subject: n.reason for n in board.left_out}
    assert reasons[str(current)] == "not evaluated"
    assert reasons[str(old)] == (f"set aside when seed-1 was trained again (train --force): its evaluations are "
                                 f"not the current {old.parent / 'seed-1'}'s")  # fmt: skip


BAD_SCORES: list[tuple[Any, str]] = [
    (1e9, "1000000000.0"), (-42, "-42"), (100.5, "100.5"), (float("nan"), "NaN"), (float("inf"), "Infinity"),
    (10**400, "an integer of 401 digits"), ("50", '"50"'), (True, "true"), (None, "null"), ({"acc": 50}, '{"acc": 50}'),
    ([50], "[50]"),
]  # fmt: skip


@pytest.mark.parametrize(("value", "shown"), BAD_SCORES, ids=[s for _, s in BAD_SCORES])
def test_a_score_that_is_not_0_to_100_makes_the_record_invalid(tmp_path: Path, value: Any, shown: str) -> None:
    """Issue 22 item 10: 1e9 ranked first, -42 was ranked; NaN, infinities, strings, booleans and null read as
    "has no score". The record is left out, naming the value and where it is; the other runs still rank."""
    root = tmp_path / "saves"
    run(root, "A", 1, [evaluation(four(50, 50, 50, 50))])
    scores = {"drop": 60, "ifeval": value, "gsm8k": 60, "math": 60}  # the bad value in the middle
    bad = run(root, "B", 1, [evaluation(scores)])
    board = lb.board([root])
    (group,) = board.groups
    assert [r.label for r in group.rows] == ["A"] and not any("has no score" in n.reason for n in group.notes)
    (note,) = [n for n in board.left_out if n.subject == str(bad)]
    assert note.reason == (f"its evaluation {ID} records ifeval = {shown} (scores, in {bad / 'oda_sft_run.json'}): "
                           "a score is a number from 0 to 100: left out")  # fmt: skip
    for text in (out.table(board, str), out.markdown(board, str), out.as_json(board, str)):
        assert "60.00" not in text and "60.0," not in text
    assert "ifeval = " in out.markdown(board, str) and json.loads(out.as_json(board, str))["left_out"]
    assert "60" not in "".join(line for line in out.as_csv(board).splitlines() if ",B," in line)


def test_scores_that_are_not_a_mapping_make_the_record_invalid(tmp_path: Path) -> None:
    root = tmp_path / "saves"
    bad = run(root, "B", 1, [evaluation([50, 50])])  # type: ignore[arg-type]
    (note,) = lb.board([root]).left_out
    assert note.subject == str(bad) and "records scores = [50, 50]" in note.reason


def test_text_from_the_settings_is_text_in_csv_and_one_line_elsewhere(tmp_path: Path) -> None:
    """Issue 22 item 11: the settings' benchmark names and the eval id become CSV headers and cells, and titles."""
    root = tmp_path / "saves"
    odd = evaluation({"=1+1": 5.0}, eval_id="@id\nx", settings=settings(["=1+1"], "custom"))
    run(root, "A", 1, [odd])
    board = lb.board([root])
    head, row = list(csv.reader(io.StringIO(out.as_csv(board))))[:2]
    assert "'=1+1_mean" in head and row[:2] == ["llama", "'@id\nx"]
    assert "@id\\nx" in out.table(board, str).splitlines()[0]
    assert "### llama: evaluation settings @id\\\\nx" in out.markdown(board, str)
