"""Issue 26's real check of `rank`'s separation, on the embedded tiny model, trained and then evaluated by a real
OpenCompass (as tests/integration/test_eval_real.py finds it) on oda-sft's 36-question arithmetic benchmark:
two datasets, two seeds each.

- A real difference: `answers` is the benchmark's own 36 questions, asked as OpenCompass asks them, with their
  answers, trained hard (a high learning rate, many epochs: the model learns them by heart); `oda_demo` is the
  demo dataset under the recipe. The first must rank above the second, separated, with the method and interval.
- A one-question difference: CONSTRUCTED, not trained. A copy of the two real oda_demo runs, registered as
  another dataset, whose per-question results (questions.json) and scores have one more question right in
  each seed: 2.78 ± 0.00 against 0.00 ± 0.00, the case the issue saw called "beyond noise". It must not be
  separated.
- Truncation: the tiny preset's max_out_len is 16; the demo-trained model runs on to the cap on every question,
  so every answer is cut, and that is recorded and flagged. The answers-trained model stops: nothing is cut.

Slow: four trainings and four evals on the CPU, 15 min 21 s on this 2-core machine under a load of 6 to 9
(most of it the two 200-step trainings on the answers; one took 1 min 16 s on a quieter machine)."""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from conftest import REPO
from realproc import manifest, oda_sft, opencompass_program

SEEDS = (1, 2)
QUESTIONS = 36
BENCHMARK = REPO / "src" / "oda_sft" / "eval" / "data" / "oda_sft_arithmetic.jsonl"
# Learning the 36 answers by heart: one step per epoch (the whole set in a batch). Measured on this machine
# (seed 1): 100 epochs scored 44.44, 200 scored 100.00 (final loss 0.005).
HARD = ["learning_rate=0.01", "num_train_epochs=200", "per_device_train_batch_size=36",
        "gradient_accumulation_steps=1", "warmup_ratio=0"]  # fmt: skip


@dataclass(frozen=True)
class Trained:
    root: Path  # the work dir the commands ran in
    saves: Path  # their --output-root
    evals: dict[tuple[str, int], str]  # (dataset, seed) -> the eval's stderr

    def run(self, dataset: str, seed: int) -> Path:
        return self.saves / "tiny" / "full" / f"sft-{dataset}" / f"seed-{seed}"


def _answers(path: Path) -> None:
    """The benchmark's questions as OpenCompass asks them (its meta's human_prompt; OpenCompass ends the
    prompt with a newline, as each prediction's origin_prompt shows), with its answers, as Alpaca records."""
    meta = json.loads(BENCHMARK.with_name(BENCHMARK.name + ".meta.json").read_text())
    rows = [json.loads(line) for line in BENCHMARK.read_text().splitlines() if line.strip()]
    assert len(rows) == QUESTIONS
    records = [{"instruction": meta["human_prompt"].format(question=r["question"]) + "\n", "input": "",
                "output": r["answer"]} for r in rows]  # fmt: skip
    path.write_text(json.dumps(records))


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Trained:
    oc = str(opencompass_program())
    root = tmp_path_factory.mktemp("separation")
    data = root / "datasets"
    data.mkdir()
    for name in ("dataset_info.json", "oda_demo.json"):
        shutil.copy2(REPO / "data" / name, data / name)
    _answers(root / "answers.json")
    added = oda_sft("data", "add", "answers", str(root / "answers.json"), "--dataset-dir", str(data), cwd=root)
    assert added.returncode == 0, added.stderr[-3000:]
    result = Trained(root, root / "saves", {})
    for dataset, extra in (("answers", ["--mode", "standard", "--", *HARD]), ("oda_demo", [])):
        for seed in SEEDS:
            done = oda_sft("train", "-m", "tiny", "-d", dataset, "--seed", str(seed), "--dataset-dir", str(data),
                           "--output-root", "saves", *extra, cwd=root, timeout=1800)  # fmt: skip
            assert done.returncode == 0, done.stderr[-3000:]
            ran = oda_sft("eval", "--run", str(result.run(dataset, seed)), "--opencompass", oc, cwd=root)
            assert ran.returncode == 0, ran.stdout[-3000:] + ran.stderr[-3000:]
            result.evals[(dataset, seed)] = ran.stderr
    return result


def _rank(root: Path, *args: str) -> str:
    done = oda_sft("rank", "-m", "tiny", *args, cwd=root)
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


def _rows(root: Path, saves: Path) -> list[dict[str, Any]]:
    data = json.loads(_rank(root, "--output-root", str(saves), "--json"))
    (group,) = data["groups"]
    rows: list[dict[str, Any]] = group["rows"]
    return rows


def test_a_real_difference_is_separated_with_its_method_and_interval(trained: Trained) -> None:
    top, bottom = _rows(trained.root, trained.saves)
    assert (top["dataset"], top["rank"], bottom["dataset"], bottom["rank"]) == ("answers", 1, "oda_demo", 2)
    assert top["seeds"] == bottom["seeds"] == list(SEEDS)
    assert top["per_question"] is bottom["per_question"] is True
    gap = top["vs_next"]
    assert gap["separated"] is True, gap
    assert gap["method"] == "paired" and gap["seed_spread_included"] is True and gap["questions"] == QUESTIONS
    low, high = gap["interval"]
    difference = top["values"]["overall"]["mean"] - bottom["values"]["overall"]["mean"]
    # strictly: all right against all wrong still leaves an interval (paired._paired_var)
    assert gap["difference"] == pytest.approx(difference) and 0 < low < difference < high
    assert gap["confidence"] == 0.95 and 0 <= gap["p_value"] < 0.05
    assert bottom["vs_next"] is None  # the last row has no next


def test_each_eval_keeps_its_questions_and_truncation_and_rank_flags_cut_answers(trained: Trained) -> None:
    for (dataset, seed), stderr in trained.evals.items():
        (record,) = manifest(trained.run(dataset, seed))["evals"]
        kept = json.loads(Path(record["per_question"]).read_text())["benchmarks"]["arithmetic"]
        assert kept["questions"] == QUESTIONS and [len(v) for v in kept["subsets"].values()] == [QUESTIONS]
        (values,) = kept["subsets"].values()
        assert 100 * sum(values) / QUESTIONS == pytest.approx(record["scores"]["arithmetic"], abs=0.01)
        cut = record["truncation"]["arithmetic"]
        assert (cut["answers"], cut["max_out_len"]) == (QUESTIONS, 16)
        if dataset == "oda_demo":  # it runs on to the cap on every question: eval warns at the end
            assert (cut["at_cap"], cut["share_at_cap"]) == (QUESTIONS, 1.0), cut
            assert "answers stopped at max_out_len 16" in stderr and f"arithmetic {QUESTIONS}/{QUESTIONS}" in stderr
        else:  # it answers and stops
            assert cut["at_cap"] == 0, cut
            assert "answers stopped at max_out_len" not in stderr
    top, bottom = _rows(trained.root, trained.saves)
    assert top["cut_answers"] == {} and bottom["cut_answers"] == {"arithmetic": 1.0}
    table = _rank(trained.root, "--output-root", str(trained.saves))
    lines = {line.split()[1]: line for line in table.splitlines() if line.split()[:1] in (["1"], ["2"])}
    assert "[cut answers]" in lines["oda_demo"] and "[cut answers]" not in lines["answers"]
    assert " 1,2 " in lines["oda_demo"] and " 1,2 " in lines["answers"]  # the seeds each row stands on
    assert "separated (Δ" in lines["answers"] and "not separated" not in lines["answers"]
    assert "oda_demo: answers stopped at max_out_len (arithmetic 100% of the answers" in table


def _one_question_more(trained: Trained, into: Path) -> None:
    """CONSTRUCTED: the real oda_demo runs, copied unchanged, and a second copy registered as `oda_demo_plus1`
    whose per-question results have the first question right in every seed (its scores follow)."""
    for seed in SEEDS:
        source = trained.run("oda_demo", seed)
        shutil.copytree(source, into / "tiny" / "full" / "sft-oda_demo" / f"seed-{seed}", symlinks=True)
        copy = into / "tiny" / "full" / "sft-oda_demo_plus1" / f"seed-{seed}"
        shutil.copytree(source, copy, symlinks=True)
        data = manifest(copy)
        data["dataset"] = {**data["dataset"], "name": "oda_demo_plus1", "sha256": "0" * 64}
        (record,) = data["evals"]
        where = copy / Path(record["per_question"]).relative_to(source)
        kept = json.loads(where.read_text())
        (values,) = kept["benchmarks"]["arithmetic"]["subsets"].values()
        assert values[0] == 0 and sum(values) == 0, "the demo model got a question right: construct otherwise"
        values[0] = 1
        where.write_text(json.dumps(kept))
        score = round(100 / QUESTIONS, 2)
        record.update(per_question=str(where), scores={"arithmetic": score}, domains={"math": score}, overall=score)
        (copy / "oda_sft_run.json").write_text(json.dumps(data))


def test_a_one_question_difference_is_not_separated(trained: Trained) -> None:
    constructed = trained.root / "constructed"
    _one_question_more(trained, constructed)
    top, bottom = _rows(trained.root, constructed)
    assert (top["dataset"], bottom["dataset"]) == ("oda_demo_plus1", "oda_demo")
    assert top["values"]["overall"]["values"] == [2.78, 2.78] and bottom["values"]["overall"]["values"] == [0, 0]
    gap = top["vs_next"]
    assert gap["separated"] is False and gap["method"] == "paired", gap
    low, high = gap["interval"]
    assert low < 0 < gap["difference"] < high
    table = _rank(trained.root, "--output-root", str(constructed))
    assert "not separated (Δ 2.78" in table
