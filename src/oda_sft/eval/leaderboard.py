"""`oda-sft rank`: the runs' evaluations, read from their manifests, as ODA's leaderboard.

One group per evaluation's settings (their id, and the OpenCompass that ran them), per base model: runs
evaluated otherwise are never averaged together. In a group, one row per dataset (name and sha256),
over its seeds. A domain's value is the mean of its benchmarks, the overall value the mean of the domain
values, as ODA's leaderboard computes them (docs/eval.md, "Ranking"); a run missing one of a domain's
benchmarks has no value for that domain (nor overall), and the group says so. Each value is the mean over
seeds, with the sample standard deviation and n. Pure logic: reads files, writes nothing.
"""

from __future__ import annotations

import json
import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from oda_sft.eval import summary
from oda_sft.eval.benchmarks import DOMAINS
from oda_sft.eval.stats import evidence
from oda_sft.eval.stats.paired import CONFIDENCE, Comparison
from oda_sft.runs import lock
from oda_sft.runs.listing import run_status, walk
from oda_sft.runs.manifest import MANIFEST_NAME, read
from oda_sft.runs.outdir import set_aside_from

OVERALL = "overall"
METRICS: tuple[str, ...] = (*DOMAINS, OVERALL)


@dataclass(frozen=True)
class Fix:
    """The `oda-sft eval` that fills a gap (the CLI writes it as a command)."""

    run_dir: Path
    preset: str
    base: bool
    output_root: Path
    suite: str = "all"
    benchmarks: tuple[str, ...] = ()
    force: bool = False  # it was evaluated with other settings: eval asks for --force (and keeps those)


@dataclass(frozen=True)
class Note:
    subject: str  # a run dir, or a dataset
    reason: str
    fix: Fix | None = None


@dataclass(frozen=True)
class Scored:
    """One finished evaluation of one run (or of a base model)."""

    run_dir: Path
    root: Path
    preset: str
    dataset: str
    sha256: str
    seed: int | None
    record: dict[str, Any]
    base: bool

    @property
    def settings(self) -> dict[str, Any]:
        found = self.record.get("settings")
        return found if isinstance(found, dict) else {}

    @property
    def key(self) -> tuple[str, str, str, bool]:
        oc = self.record.get("opencompass")
        oc = oc if isinstance(oc, dict) else {}
        return (self.preset, str(self.record["id"]), str(oc.get("version", "")), oc.get("fork") is True)


@dataclass(frozen=True)
class Stat:
    values: tuple[float, ...]

    @property
    def n(self) -> int:
        return len(self.values)

    @property
    def mean(self) -> float | None:
        return statistics.fmean(self.values) if self.values else None

    @property
    def sd(self) -> float | None:
        """The sample standard deviation over seeds; None with fewer than two."""
        return statistics.stdev(self.values) if len(self.values) >= 2 else None


@dataclass
class Row:
    label: str
    dataset: str
    sha256: str
    runs: list[Scored]
    stats: dict[str, Stat] = field(default_factory=dict)  # benchmark names, domains and overall
    gain: dict[str, float] = field(default_factory=dict)  # over the base model, where it was evaluated
    vs_next: dict[str, Comparison] = field(default_factory=dict)  # per domain and overall (eval/stats/paired.py)
    per_question: bool = True  # every run kept its per-question results (older evals did not)
    cut: dict[str, float] = field(default_factory=dict)  # benchmark -> the largest share of answers at the cap
    gap: Comparison | None = None  # vs_next on the metric the group is ranked by

    def stat(self, metric: str) -> Stat:
        return self.stats.get(metric, Stat(()))

    @property
    def seeds(self) -> list[int]:
        return [r.seed for r in self.runs if r.seed is not None]  # the base model has none


@dataclass
class Group:
    preset: str
    eval_id: str
    settings: dict[str, Any]
    opencompass: dict[str, Any]
    benchmarks: list[str]
    domains: list[str]  # the domains the settings cover, in ODA's order
    rows: list[Row]
    base: Row | None = None
    notes: list[Note] = field(default_factory=list)


@dataclass
class Board:
    groups: list[Group]
    left_out: list[Note]
    by: str
    manifests: int  # how many manifests were read (0: nothing under the roots)
    confidence: float = CONFIDENCE


def _text(value: Any) -> str:
    return value if isinstance(value, str) else ""


def _score(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    number = float(value)
    return number if math.isfinite(number) else None


def _is_score(value: Any) -> bool:
    """A benchmark's score as OpenCompass reports it: a number from 0 to 100 (bool is an int in Python)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return False
    return 0 <= value <= 100  # False for NaN; an int of any size compares without overflowing a float


def _shown(value: Any) -> str:
    """A recorded value as JSON writes it, short enough for one line."""
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) >= 10**40:
        return f"an integer of {len(str(abs(value)))} digits"
    text = json.dumps(value, ensure_ascii=False)
    return text if len(text) <= 60 else text[:57] + "..."


def invalid_scores(rec: dict[str, Any], path: Path) -> str | None:
    """What makes a finished record's scores unusable (which value, where), or None. A benchmark absent
    from the scores is not this: the group says it has no score (never averaged over fewer benchmarks)."""
    scores = rec.get("scores")
    if not isinstance(scores, dict):
        return f"scores = {_shown(scores)} (in {path})"
    bad = next(((k, v) for k, v in scores.items() if not _is_score(v)), None)
    return None if bad is None else f"{bad[0]} = {_shown(bad[1])} (scores, in {path})"


def _fix(run_dir: Path, root: Path, preset: str, base: bool, settings: dict[str, Any], force: bool = False) -> Fix:
    suite = _text(settings.get("suite")) or "all"
    names = settings.get("benchmarks")
    chosen = tuple(n for n in names if isinstance(n, str)) if suite == "custom" and isinstance(names, list) else ()
    return Fix(run_dir, preset, base, root, "all" if suite == "custom" else suite, chosen, force)


def _evals(run_dir: Path, root: Path, data: dict[str, Any], model: str | None) -> tuple[list[Scored], list[Note]]:
    """A manifest's finished evaluations, and why the rest are left out."""
    where = str(run_dir)
    base = data.get("base") is True
    model_block = data.get("model") if isinstance(data.get("model"), dict) else {}
    preset = _text(model_block.get("preset")) if model_block else ""
    if model is not None and preset != model:
        return [], []
    dataset_block = data.get("dataset") if isinstance(data.get("dataset"), dict) else {}
    dataset = _text(dataset_block.get("name")) if dataset_block else ""
    sha = _text(dataset_block.get("sha256")) if dataset_block else ""
    seed = data.get("seed") if isinstance(data.get("seed"), int) and not isinstance(data.get("seed"), bool) else None
    if not preset or (not base and (not dataset or seed is None)):
        return [], [Note(where, f"its {MANIFEST_NAME} names no model preset, dataset or seed")]
    aside = None if base else set_aside_from(run_dir)
    if aside is not None:
        name, label = aside
        how = "was trained again (train --force)" if label == "replaced" else "was run again"
        why = f"set aside when {name} {how}: its evaluations are not the current {run_dir.parent / name}'s"
        return [], [Note(where, why)]
    records = data.get("evals")
    records = records if isinstance(records, list) else []
    if not records:
        if base:
            return [], [Note(where, "the base model's dir holds no evaluation", _fix(run_dir, root, preset, True, {}))]
        status = run_status(run_dir, data)
        if status != "finished":
            return [], [Note(where, f"training is {status}: not evaluated")]
        return [], [Note(where, "not evaluated", _fix(run_dir, root, preset, False, {}))]
    found, notes = [], []
    for i, rec in enumerate(records, 1):
        if not isinstance(rec, dict) or not _text(rec.get("id")) or not isinstance(rec.get("settings"), dict):
            notes.append(Note(where, f"its evaluation record {i} cannot be read"))
            continue
        settings = rec["settings"]
        status = _text(rec.get("status")) or "unknown"
        label = f"evaluation {rec['id']} ({_text(settings.get('suite')) or '?'})"
        fix = _fix(run_dir, root, preset, base, settings)
        if status == "running" and lock.probe(run_dir) is not None:
            notes.append(Note(where, f"{label} is running"))
        elif status == "running":
            notes.append(Note(where, f"{label} was left at running (its process is gone)", fix))
        elif status != "finished":
            notes.append(Note(where, f"{label} is {status}", fix))
        elif (bad := invalid_scores(rec, run_dir / MANIFEST_NAME)) is not None:
            notes.append(Note(where, f"its evaluation {rec['id']} records {bad}: a score is a number from 0 to 100: "
                              "left out"))  # fmt: skip
        else:
            found.append(Scored(run_dir, root, _text(settings.get("preset")) or preset, dataset, sha, seed, rec, base))
    return found, notes


def _root_of(run_dir: Path, given: Path, data: dict[str, Any]) -> Path:
    """The --output-root `oda-sft eval` takes for this run: a base model's dir is <root>/<model>/base, a
    run's <root>/<model>/full/sft-DATASET/seed-SEED (when it is elsewhere, the root it was found under)."""
    if data.get("base") is True:
        return run_dir.parent.parent
    parts = run_dir.parts
    if len(parts) > 4 and parts[-3] == "full" and parts[-2].startswith("sft-") and parts[-1].startswith("seed-"):
        return run_dir.parents[3]
    return given


def collect(roots: Sequence[Path], model: str | None = None) -> tuple[list[Scored], list[Note], int]:
    """Every finished evaluation under the output roots (each manifest once, however the roots overlap)."""
    seen: set[Path] = set()
    scored: list[Scored] = []
    notes: list[Note] = []
    for root in roots:
        manifests, problems = walk(root)
        notes += [Note(str(path), why) for path, why in problems]
        for path in manifests:
            if path.resolve() in seen:
                continue
            seen.add(path.resolve())
            data = read(path)
            if data is None:
                notes.append(Note(str(path.parent), f"its {MANIFEST_NAME} cannot be read"))
                continue
            found, why = _evals(path.parent, _root_of(path.parent, root, data), data, model)
            scored += found
            notes += why
    return scored, notes, len(seen)


def domain_of(benchmark: str) -> str | None:
    """The domain ODA averages a benchmark into; None for those its summary leaves out (or unknown)."""
    return summary.domain_of(benchmark)


def run_values(scores: dict[str, Any], benchmarks: list[str], domains: list[str]) -> dict[str, float | None]:
    """One run's benchmark, domain and overall values, by the manifest's rule (summary.summarise): a domain
    needs every one of its benchmarks, overall every domain (a mean of fewer would not compare)."""
    values: dict[str, float | None] = {b: _score(scores.get(b)) for b in benchmarks}
    result = summary.summarise(values, benchmarks)
    values.update({d: result.domains.get(d) for d in domains})
    values[OVERALL] = result.overall
    return values


def _row(label: str, runs: list[Scored], group: Group) -> tuple[Row, list[Note]]:
    row = Row(label, runs[0].dataset, runs[0].sha256, runs)
    per_run = [run_values(_scores(r), group.benchmarks, group.domains) for r in runs]
    notes = []
    for run, values in zip(runs, per_run, strict=True):
        missing = [b for b in group.benchmarks if values[b] is None]
        if missing:
            lost = [m for m in [*group.domains, OVERALL] if values[m] is None]
            what = f"{label} seed {run.seed}" if not run.base else f"the {run.preset} base model"
            notes.append(Note(str(run.run_dir), f"{what} has no score for {', '.join(missing)}: left out of "
                              f"{', '.join(lost) or 'no domain'} (never averaged over fewer benchmarks)"))  # fmt: skip
    for metric in [*group.benchmarks, *group.domains, OVERALL]:
        row.stats[metric] = Stat(tuple(v for v in (p[metric] for p in per_run) if v is not None))
    return row, notes


def _scores(run: Scored) -> dict[str, Any]:
    found = run.record.get("scores")
    return found if isinstance(found, dict) else {}


def _group(key: tuple[str, str, str, bool], runs: list[Scored], bases: list[Scored], by: str,
           confidence: float) -> Group:  # fmt: skip
    first = runs[0] if runs else bases[0]
    settings = first.settings
    names = [n for n in settings.get("benchmarks") or [] if isinstance(n, str)]
    covered = {domain_of(n) for n in names}
    oc = first.record.get("opencompass")
    group = Group(key[0], key[1], settings, oc if isinstance(oc, dict) else {}, names,
                  [d for d in DOMAINS if d in covered], [])  # fmt: skip
    group.notes += [Note(n, "not in ODA's summary: shown, not averaged into a domain")
                    for n in names if domain_of(n) is None]  # fmt: skip
    by_data: dict[tuple[str, str], list[Scored]] = {}
    # Stable: of two runs of one seed, the one found first (the earlier --output-root) counts.
    for run in sorted(runs, key=lambda r: (r.dataset, r.sha256, r.seed or 0)):
        same = by_data.setdefault((run.dataset, run.sha256), [])
        twin = next((r for r in same if r.seed == run.seed), None)
        if twin is not None:
            group.notes.append(Note(str(run.run_dir), f"seed {run.seed} of {run.dataset} is counted from "
                                    f"{twin.run_dir} already: left out"))  # fmt: skip
            continue
        same.append(run)
    names_seen: dict[str, list[str]] = {}
    for dataset, sha in by_data:
        names_seen.setdefault(dataset, []).append(sha)
    for dataset, shas in names_seen.items():
        if len(shas) > 1:
            group.notes.append(Note(dataset, f"{len(shas)} different files (sha256 {', '.join(s[:8] for s in shas)}) "
                                    "carry this name: their runs are kept apart"))  # fmt: skip
    for (dataset, sha), members in by_data.items():
        label = dataset if len(names_seen[dataset]) == 1 else f"{dataset}@{sha[:8]}"
        row, notes = _row(label, members, group)
        group.rows.append(row)
        group.notes += notes
    if bases:
        group.base, notes = _row(f"base ({key[0]})", bases[:1], group)
        group.notes += notes
        group.notes += [Note(str(b.run_dir), f"the base model is counted from {bases[0].run_dir} already: left out")
                        for b in bases[1:]]  # fmt: skip
        for row in group.rows:
            for metric, stat in row.stats.items():
                base_mean = group.base.stats[metric].mean
                if stat.mean is not None and base_mean is not None:
                    row.gain[metric] = stat.mean - base_mean
    if by not in (*group.domains, OVERALL):
        group.notes.append(Note(by, f"these settings have no {by} benchmarks: the rows are not ranked"))
    group.rows.sort(key=lambda r: (r.stat(by).mean is None, -(r.stat(by).mean or 0.0), r.label))
    ranked = [r for r in group.rows if r.stat(by).mean is not None]
    group.notes += [Note(subject, reason) for subject, reason in
                    evidence.annotate(group.rows, ranked, group.benchmarks, group.domains, by, confidence)]  # fmt: skip
    return group


def board(roots: Sequence[Path], model: str | None = None, by: str = OVERALL,
          confidence: float = CONFIDENCE) -> Board:  # fmt: skip
    scored, left_out, manifests = collect(roots, model)
    runs: dict[tuple[str, str, str, bool], list[Scored]] = {}
    bases: dict[tuple[str, str, str, bool], list[Scored]] = {}
    for item in scored:
        (bases if item.base else runs).setdefault(item.key, []).append(item)
    groups = []
    for key in sorted(runs):
        group = _group(key, runs[key], bases.get(key, []), by, confidence)
        if group.base is None:
            other = sorted({k[1] for k in bases if k[0] == key[0]})
            first = group.rows[0].runs[0]
            fix = _fix(first.run_dir, first.root, key[0], True, group.settings, force=bool(other))
            why = f"was evaluated with other settings ({', '.join(other)}), not these" if other else "is not evaluated"
            group.notes.append(Note(f"base {key[0]}", f"the base model {why}: no gain shown", fix))
        groups.append(group)
    used = {k for k in runs}
    left_out += [Note(str(b[0].run_dir), f"the base model's evaluation {k[1]} has no trained run evaluated alike")
                 for k, b in sorted(bases.items()) if k not in used]  # fmt: skip
    return Board(groups, left_out, by, manifests, confidence)
