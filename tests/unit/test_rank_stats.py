"""Issue 26: `rank` separates neighbours by a paired test over questions that carries the seeds
(eval/stats/paired.py), from per-question results kept from OpenCompass's own files (eval/stats/questions.py),
and flags answers cut at max_out_len. Constructed per-question data, checked against hand arithmetic."""

from __future__ import annotations

import json
import math
from pathlib import Path
from statistics import NormalDist
from typing import Any

import pytest

from oda_sft.eval import leaderboard as lb
from oda_sft.eval import leaderboard_output as out
from oda_sft.eval.benchmarks import BY_NAME
from oda_sft.eval.stats import paired, questions

N = 36  # the arithmetic benchmark's questions


def doc(values: dict[str, list[float]], bench: str = "arithmetic", share: float = 0.0) -> dict[str, Any]:
    """One seed's questions.json: `values` per subset."""
    n = len(next(iter(values.values())))
    lengths = {"answers": n, "max_out_len": 16, "at_cap": round(share * n), "share_at_cap": share, "tokens": None}
    entry = {"questions": n, "subsets": values, "lengths": lengths}
    return {"schema": questions.SCHEMA, "benchmarks": {bench: entry}}


def right(k: int, n: int = N) -> list[float]:
    return [1.0] * k + [0.0] * (n - k)


def row(docs: list[dict[str, Any] | None], means: dict[str, float | None] | None = None) -> paired.RowData:
    return paired.row_data(docs, ["arithmetic"], means or {})


def test_one_question_of_36_is_never_separated_however_well_the_seeds_agree() -> None:
    """The issue's case: 2.78 ± 0.00 against 0.00 ± 0.00 over two seeds each was called beyond noise."""
    up, down = row([doc({"a": right(1)})] * 2), row([doc({"a": right(0)})] * 2)
    got = paired.compare([100 / N] * 2, [0.0] * 2, up, down, {"arithmetic": 1.0})
    # d is 1 on one question of 36, plus the pseudo-questions (paired._paired_var): mean 1/38, E[d^2] 2/38.
    se = 100 * math.sqrt((2 / 38 - (1 / 38) ** 2) / 38)
    assert got.difference == pytest.approx(100 / N) and got.se == pytest.approx(se)
    assert not got.separated and got.method == "paired" and got.seed_spread and got.questions == N
    assert got.low is not None and got.low < 0 < got.difference
    assert got.p_value == pytest.approx(2 * (1 - NormalDist().cdf(100 / N / se)), abs=1e-9)
    text = out.words(got)
    assert text.startswith("not separated (Δ 2.78, 95% CI -4.47 to 10.02; paired, 36 questions")


def test_a_real_difference_is_separated() -> None:
    up, down = row([doc({"a": right(30)}), doc({"a": right(29)})]), row([doc({"a": right(0)})] * 2)
    got = paired.compare([100 * 30 / N, 100 * 29 / N], [0.0, 0.0], up, down, {"arithmetic": 1.0})
    assert got.separated and got.low is not None and got.low > 50 and got.p_value is not None and got.p_value < 1e-6


def test_all_right_against_all_wrong_keeps_an_interval_of_positive_width() -> None:
    """Every question differs alike (36/36 against 0/36, seeds agreeing, as the tiny model trained on the
    benchmark's answers against the demo): the sample variance of d is 0, and a plain paired interval would be
    100.00 to 100.00 with p = 0, a certainty 36 questions do not give. Agresti & Min's adjustment (0.5 in each
    cell of the matched table: two pseudo-questions) keeps it honest."""
    up, down = row([doc({"a": right(N)})] * 2), row([doc({"a": right(0)})] * 2)
    got = paired.compare([100.0] * 2, [0.0] * 2, up, down, {"arithmetic": 1.0})
    assert got.separated and got.low is not None and got.high is not None and got.p_value is not None
    # d = 1 on 36 questions, plus pseudo d = +1 and -1 (0.5 each) and 0 (1): mean 36/38, E[d^2] 37/38
    var = (37 / 38 - (36 / 38) ** 2) / 38
    assert got.se == pytest.approx(100 * math.sqrt(var)) and got.low < 100 < got.high  # 91.22 to 108.78


def test_pairing_removes_what_the_rows_share() -> None:
    """Same accuracy, different questions right: unpaired they look alike, paired the difference is all noise;
    the same questions right: paired, a difference of a few questions is clear where unpaired is not."""
    a = [1.0] * 20 + [0.0] * 16
    b = [1.0] * 14 + [0.0] * 22  # right on a subset of a's questions: d is 1 on 6, 0 elsewhere
    got = paired.compare([100 * 20 / N], [100 * 14 / N], row([doc({"a": a})]), row([doc({"a": b})]),
                         {"arithmetic": 1.0})  # fmt: skip
    assert got.separated and not got.seed_spread  # one seed a side: said so
    binomial = math.sqrt((20 / 36 * 16 / 36 + 14 / 36 * 22 / 36) / 36) * 100
    assert got.se is not None and got.se < binomial and got.difference < 1.96 * binomial  # unpaired: not separated


def test_the_seed_spread_adds_what_the_questions_do_not_explain() -> None:
    """Seeds 30/36 and 10/36 on one dataset: the questions vary as much as seeds shift, so the seed term is large."""
    up = row([doc({"a": right(30)}), doc({"a": right(10)})])
    down = row([doc({"a": right(0)})] * 2)
    w = {"arithmetic": 1.0}
    got = paired.compare([100 * 30 / N, 100 * 10 / N], [0.0, 0.0], up, down, w)
    without = paired.compare([100 * 20 / N] * 2, [0.0, 0.0], row([doc({"a": [0.5] * 10 + right(15, 26)})] * 2),
                             down, w)  # fmt: skip
    assert got.se is not None and without.se is not None and got.se > without.se
    # var over seeds of the value minus what the per-question variance over seeds explains, over K = 2
    spread = (100 * 20 / N) ** 2 / 2  # var([83.3, 27.8], ddof=1)
    within = sum((100 / N) ** 2 * 0.5 for _ in range(20))  # 20 questions differ: var over 2 seeds = 0.5 each
    d = [1.0] * 10 + [0.5] * 20 + [0.0] * 6  # per-question mean over seeds
    mean_d = sum(d) / (N + 2)  # with the pseudo-questions +1, -1 (0.5 each) and 0 (paired._paired_var)
    var_q = ((sum(x * x for x in d) + 1) / (N + 2) - mean_d**2) / (N + 2) * 100**2
    assert got.se == pytest.approx(math.sqrt(var_q + (spread - within) / 2))


def test_without_per_question_results_binomial_from_the_count_or_untested() -> None:
    old = row([None, None], {"arithmetic": 50.0})
    counted = row([None, None], {"arithmetic": 40.0})
    # Neither kept results nor a count: nothing is separated, whatever the seeds say.
    got = paired.compare([50.0, 50.0], [40.0, 40.0], old, counted, {"arithmetic": 1.0})
    assert (got.method, got.separated, got.low) == ("untested", False, None) and got.untested == ["arithmetic"]
    # A neighbour that counted the questions gives the binomial term.
    count = paired.RowData({"arithmetic": paired.Bench(None, N)}, 2, {"arithmetic": 40.0})
    got = paired.compare([50.0, 50.0], [40.0, 40.0], old, count, {"arithmetic": 1.0})
    assert got.method == "binomial" and not got.separated
    assert got.se == pytest.approx(100 * math.sqrt((0.25 + 0.24) / N))


def test_repetitions_are_averaged_per_question_and_subsets_weighted_as_the_summary() -> None:
    runs = {"aime2024-run0": right(3, 4), "aime2024-run1": right(1, 4)}
    (matrix,) = paired.bench([doc(runs, "aime2024")], "aime2024").strata or ()
    assert matrix.tolist() == [[1.0, 0.5, 0.5, 0.0]]
    assert paired.weights("overall", ["drop", "ifeval", "gsm8k"], ["general", "math"]) == {
        "drop": 0.25, "ifeval": 0.25, "gsm8k": 0.5}  # fmt: skip


def _results(stamp: Path, name: str, details: Any, predictions: list[str]) -> None:
    for kind, data in (("results", {"accuracy": 0.0, "details": details}),
                       ("predictions", {str(i): {"prediction": p} for i, p in enumerate(predictions)})):  # fmt: skip
        path = stamp / kind / "m" / f"{name}.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(data))


def test_opencompass_details_become_per_question_results(tmp_path: Path) -> None:
    stamp = tmp_path / "20260101_000000"
    # AccEvaluator returns no details: OpenCompass writes prediction and reference (exact match decides).
    acc = {"type": "GEN", **{str(i): {"predictions": p, "references": "7"} for i, p in enumerate(["7", "8", "7"])}}
    _results(stamp, "oda_sft_arithmetic", acc, ["7", "8 9 10 11", "7"])
    # An evaluator with details: `correct` per replica, grouped per example.
    _results(stamp, "gsm8k", [{"example_abbr": "0", "correct": [True]}, {"example_abbr": "1", "correct": [False]}],
             ["a", "b"])  # fmt: skip
    scores = {"arithmetic": 66.67, "gsm8k": 40.0}
    words = questions.collect(stamp, "m", [BY_NAME["arithmetic"], BY_NAME["gsm8k"]], scores, 4,
                              lambda texts: [len(t.split()) for t in texts])  # fmt: skip
    data = words
    arith, gsm = data["benchmarks"]["arithmetic"], data["benchmarks"]["gsm8k"]
    assert arith["subsets"] == {"oda_sft_arithmetic": [1, 0, 1]} and arith["questions"] == 3
    assert arith["lengths"]["at_cap"] == 1 and arith["lengths"]["tokens"]["max"] == 4
    # 50% from the details is not the recorded 40: not kept, and said why; the count stays.
    assert "subsets" not in gsm and gsm["why"] == "the per-question results do not reproduce the score"
    assert gsm["questions"] == 2


def test_truncation_is_recorded_and_warned() -> None:
    assert questions.at_cap(16, 16) and questions.at_cap(15, 16) and not questions.at_cap(14, 16)
    assert questions.at_cap(32200, 32768) and not questions.at_cap(32000, 32768)
    summary = questions.lengths([16, 3, 20, 2], 16)
    assert (summary["at_cap"], summary["share_at_cap"], summary["tokens"]["p50"]) == (2, 0.5, 3)
    record = {"truncation": questions.truncation({"benchmarks": {"arithmetic": {"lengths": summary}}})}
    warning = questions.cut_warning(record)
    assert warning is not None and "max_out_len 16" in warning and "arithmetic 2/4 (50%)" in warning
    assert questions.cut_warning({"truncation": {}}) is None


def _manifest(root: Path, dataset: str, seed: int, values: list[float], share: float = 0.0) -> None:
    run_dir = root / "tiny" / "full" / f"sft-{dataset}" / f"seed-{seed}"
    run_dir.mkdir(parents=True)
    q = run_dir / "eval" / "x" / questions.QUESTIONS_NAME
    q.parent.mkdir(parents=True)
    content = doc({"oda_sft_arithmetic": values}, share=share)
    q.write_text(json.dumps(content))
    score = 100 * sum(values) / len(values)
    rec = {"id": "x", "settings": {"preset": "tiny", "suite": "all", "benchmarks": ["arithmetic"]},
           "opencompass": {"version": "0.5.4"}, "status": "finished", "scores": {"arithmetic": score},
           "per_question": str(q), "truncation": questions.truncation(content)}  # fmt: skip
    data = {"model": {"preset": "tiny"}, "dataset": {"name": dataset, "sha256": dataset}, "seed": seed,
            "status": "finished", "evals": [rec]}  # fmt: skip
    (run_dir / "oda_sft_run.json").write_text(json.dumps(data))


def test_rank_says_it_per_row_with_seeds_and_cuts(tmp_path: Path) -> None:
    _manifest(tmp_path, "good", 1, right(30))
    _manifest(tmp_path, "good", 2, right(30))
    _manifest(tmp_path, "one", 1, right(1), share=1.0)
    _manifest(tmp_path, "one", 2, right(1), share=1.0)
    _manifest(tmp_path, "none", 1, right(0))
    _manifest(tmp_path, "none", 3, right(0))
    board = lb.board([tmp_path])
    data = json.loads(out.as_json(board, lambda f: ""))
    rows = {r["label"]: r for r in data["groups"][0]["rows"]}
    assert rows["good"]["vs_next"]["separated"] is True and rows["good"]["vs_next"]["method"] == "paired"
    one = rows["one"]["vs_next"]
    assert (one["separated"], one["difference"]) == (False, pytest.approx(100 / N)) and len(one["interval"]) == 2
    assert rows["one"]["cut_answers"] == {"arithmetic": 1.0} and rows["good"]["cut_answers"] == {}
    text = out.table(board, lambda f: "")
    assert "one [cut answers]" in text and "answers stopped at max_out_len (arithmetic 100%" in text
    assert "the rows stand on different seeds (good: 1, 2; one: 1, 2; none: 1, 3)" in text
    assert "not separated (Δ 2.78, 95% CI" in text and "separated (Δ 80.56" in text
    # --confidence: a wider interval never separates more.
    assert lb.board([tmp_path], confidence=0.999).groups[0].rows[0].gap.separated  # type: ignore[union-attr]
