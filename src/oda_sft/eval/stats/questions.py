"""Each eval's per-question results and answer lengths, kept in <eval dir>/questions.json (the manifest's
record names it: `per_question`), read from OpenCompass's own files in the attempt's work folder.

OpenCompass 0.5.4 writes results/<model abbr>/<dataset abbr>.json with `details` (its CLI's
--dump-eval-details defaults to true: opencompass/cli/main.py:143-150, 415-419; ODA's fork a58c9cb the same,
cli/main.py:120-126, 358). An evaluator that returns details gives each question's `correct` (or
`is_correct`, `cascade_correct`), as a list over the config's `n` replicas
(openicl/icl_evaluator/icl_base_evaluator.py:170-230); one that does not (AccEvaluator) gets the
prediction and the reference written instead (tasks/openicl_eval.py:319-333, 456-510), and AccEvaluator's
rule is exact match of the two as text (icl_hf_evaluator.py:101-135), which oda-sft applies. A benchmark's
per-question values are kept only when they reproduce its recorded score (summary.py's rule): otherwise
`rank` falls back to the question count. The repeat8 configs write one dataset per repetition
(aime2024-run0 ... -run7): each is kept, and the test averages a question over its repetitions.

predictions/<model abbr>/<dataset abbr>.json holds each answer's text; OpenCompass records its token count
only with --dump-res-length (0.5.4: cli/main.py:151-154, icl_gen_inferencer.py:199-236), which ODA's fork
does not have, so oda-sft counts the tokens of each answer with the checkpoint's own tokenizer.
"""

from __future__ import annotations

import json
import math
import re
import statistics
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

from oda_sft.eval.benchmarks import Benchmark, SummaryRule
from oda_sft.util.fs import atomic_write_json

QUESTIONS_NAME = "questions.json"
SCHEMA = 1
CUT_SHARE = 0.05  # `eval` warns and `rank` flags a benchmark where more answers than this stopped at the cap
_CORRECT = ("correct", "is_correct", "cascade_correct")
_REPEAT = re.compile(r"-run\d+$")
_TOLERANCE = 0.01  # the summary CSV rounds to two decimals
Counter = Callable[[list[str]], list[int]]


def stratum(subset: str) -> str:
    """The question set a dataset abbr belongs to: the repeat8 configs' repetitions share one."""
    return _REPEAT.sub("", subset)


def subset_files(results: Path, rule: SummaryRule) -> list[Path]:
    """The result files a benchmark's summary rule reads: its own dataset, or the subsets starting with it
    (a prefix rule, or a summary group such as agieval/bbh whose row is a mean of its subsets)."""
    exact = results / f"{rule.dataset}.json"
    if exact.is_file() and not rule.prefix:
        return [exact]
    return sorted(p for p in results.glob("*.json") if p.stem.startswith(rule.dataset))


def _entries(details: Any) -> list[dict[str, Any]]:
    if isinstance(details, list):
        return [d for d in details if isinstance(d, dict)]
    if isinstance(details, dict):  # {"type": "GEN", "0": {...}, "1": {...}}
        keys = sorted((k for k in details if k.isdigit()), key=int)
        return [details[k] for k in keys if isinstance(details[k], dict)]
    return []


def _value(entry: dict[str, Any], exact_match: bool) -> float | None:
    for key in _CORRECT:
        if key in entry:
            found = entry[key] if isinstance(entry[key], list) else [entry[key]]
            nums = [float(v) for v in found if isinstance(v, bool | int | float)]
            return statistics.fmean(nums) if nums and len(nums) == len(found) else None
    if exact_match and "predictions" in entry and "references" in entry:
        return float(str(entry["predictions"]) == str(entry["references"]))
    return None


def per_question(path: Path, exact_match: bool) -> tuple[int, list[float] | None]:
    """A result file's question count and each question's value (0-1), or None where it has none."""
    data = json.loads(path.read_text(encoding="utf-8"))
    entries = _entries(data.get("details")) if isinstance(data, dict) else []
    values = [_value(e, exact_match) for e in entries]
    if not entries or any(v is None for v in values):
        return len(entries), None
    return len(entries), [v for v in values if v is not None]


def _compact(values: list[float]) -> list[float | int]:
    return [int(v) if v in (0.0, 1.0) else round(v, 6) for v in values]


def _reproduces(subsets: dict[str, list[float]], score: float | None) -> bool:
    """The per-question values give the recorded score: the mean over subsets of each subset's mean."""
    if score is None or not subsets or any(not v for v in subsets.values()):
        return False
    value = 100 * statistics.fmean(statistics.fmean(v) for v in subsets.values())
    return abs(value - score) <= _TOLERANCE


def _answers(path: Path) -> list[str]:
    if not path.is_file():
        return []
    data = json.loads(path.read_text(encoding="utf-8"))
    out: list[str] = []
    for item in data.values() if isinstance(data, dict) else []:
        found = item.get("prediction") if isinstance(item, dict) else None
        out += [found] if isinstance(found, str) else [t for t in found or [] if isinstance(t, str)]
    return out


def at_cap(tokens: int, cap: int) -> bool:
    """Counted again from the text, a cut answer's length is near the cap, not always on it (a model may
    emit a non-canonical split of the text): within 2%, at least one token."""
    return tokens >= cap - max(1, cap // 50)


def lengths(counts: Sequence[int], cap: int) -> dict[str, Any]:
    """Answers at the cap and the length distribution, in tokens."""
    if not counts:
        return {"answers": 0, "max_out_len": cap, "at_cap": 0, "share_at_cap": None, "tokens": None}
    ordered = sorted(counts)

    def pct(q: float) -> int:
        return ordered[min(len(ordered) - 1, math.ceil(q * len(ordered)) - 1)]

    cut = sum(at_cap(c, cap) for c in ordered)
    dist = {"mean": round(statistics.fmean(ordered), 1), "p50": pct(0.5), "p90": pct(0.9), "p99": pct(0.99),
            "max": ordered[-1]}  # fmt: skip
    return {"answers": len(ordered), "max_out_len": cap, "at_cap": cut, "share_at_cap": round(cut / len(ordered), 4),
            "tokens": dist}  # fmt: skip


def collect(
    stamp: Path, model_abbr: str, chosen: Iterable[Benchmark], scores: dict[str, float], cap: int, count: Counter
) -> dict[str, Any]:
    """One eval's questions.json content, from OpenCompass's <stamp>/results and <stamp>/predictions."""
    results, predictions = stamp / "results" / model_abbr, stamp / "predictions" / model_abbr
    benchmarks: dict[str, Any] = {}
    for bench in chosen:
        files = subset_files(results, bench.rule)
        subsets: dict[str, list[float]] = {}
        counts: dict[str, int] = {}
        usable = bool(files)
        for path in files:
            n, values = per_question(path, bench.evaluator == "AccEvaluator")
            counts[path.stem] = n
            if values is None:
                usable = False
            else:
                subsets[path.stem] = values
        entry: dict[str, Any] = {"questions": sum(n for s, n in counts.items() if s == stratum(s) or
                                                  s.endswith("-run0"))}  # fmt: skip
        if usable and _reproduces(subsets, scores.get(bench.name)):
            entry["subsets"] = {s: _compact(v) for s, v in subsets.items()}
        else:
            entry["why"] = ("OpenCompass's details give no per-question result" if not usable else
                            "the per-question results do not reproduce the score")  # fmt: skip
        texts = [t for path in files for t in _answers(predictions / path.name)]
        entry["lengths"] = lengths(count(texts) if texts else [], cap)
        benchmarks[bench.name] = entry
    return {"schema": SCHEMA, "model_abbr": model_abbr, "work": str(stamp), "benchmarks": benchmarks}


def token_counter(model_dir: Path) -> Counter:
    """Counts each answer's tokens with the checkpoint's tokenizer (fast, in batches). Its tokenizer.json, which
    save_pretrained writes for a fast tokenizer, is read by `tokenizers` itself, as LengthCounter reads it: the
    ids AutoTokenizer's fast tokenizer would give without special tokens, without importing transformers and
    torch (5 of the 34 s an eval of the tiny model took here). Without that file: AutoTokenizer."""
    if (model_dir / "tokenizer.json").is_file():
        from tokenizers import Tokenizer

        fast = Tokenizer.from_file(str(model_dir / "tokenizer.json"))
        fast.no_padding()  # a padding or truncation the file sets: AutoTokenizer's __call__ turns both off
        fast.no_truncation()

        def count_fast(texts: list[str]) -> list[int]:
            return [len(e.ids) for e in fast.encode_batch(texts, add_special_tokens=False)]

        return count_fast
    from transformers import AutoTokenizer  # only after an eval: --help and dry runs stay light

    tokenizer = AutoTokenizer.from_pretrained(str(model_dir))  # type: ignore[no-untyped-call]

    def count(texts: list[str]) -> list[int]:
        out: list[int] = []
        for start in range(0, len(texts), 512):
            ids = tokenizer(texts[start : start + 512], add_special_tokens=False)["input_ids"]
            out += [len(i) for i in ids]
        return out

    return count


def keep(eval_dir: Path, summary_csv: Path, model_abbr: str, chosen: Iterable[Benchmark], scores: dict[str, float],
         cap: int, model_dir: Path) -> dict[str, Any]:  # fmt: skip
    """Write <eval dir>/questions.json; returns the record's fields that name it and sum up truncation."""
    data = collect(summary_csv.parent.parent, model_abbr, chosen, scores, cap, token_counter(model_dir))
    path = eval_dir / QUESTIONS_NAME
    atomic_write_json(path, data)
    return {"per_question": str(path), "truncation": truncation(data)}


def truncation(data: dict[str, Any]) -> dict[str, Any]:
    """Per benchmark: the share of answers at the cap (the manifest's short form)."""
    out = {}
    for name, entry in (data.get("benchmarks") or {}).items():
        found = entry.get("lengths") if isinstance(entry, dict) else None
        if isinstance(found, dict) and found.get("share_at_cap") is not None:
            out[name] = {k: found[k] for k in ("share_at_cap", "at_cap", "answers", "max_out_len")}
    return out


def cut_warning(record: dict[str, Any], threshold: float = CUT_SHARE) -> str | None:
    """One line naming the benchmarks where more answers than `threshold` stopped at max_out_len."""
    found = record.get("truncation")
    if not isinstance(found, dict):
        return None
    over = [
        f"{name} {t['at_cap']}/{t['answers']} ({100 * t['share_at_cap']:.0f}%)"
        for name, t in found.items()
        if isinstance(t, dict) and isinstance(t.get("share_at_cap"), int | float) and t["share_at_cap"] > threshold
    ]
    if not over:
        return None
    cap = next(iter(found.values())).get("max_out_len")
    return (f"answers stopped at max_out_len {cap} (cut answers score as wrong): {', '.join(over)}; the scores "
            "understate the model where it was still answering")  # fmt: skip


def load(record: dict[str, Any]) -> dict[str, Any] | None:
    """An eval record's questions.json, or None (an older eval, or a file gone or unreadable)."""
    where = record.get("per_question")
    if not isinstance(where, str):
        return None
    try:
        data = json.loads(Path(where).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) and data.get("schema") == SCHEMA else None
