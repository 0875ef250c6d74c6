"""The leaderboard (eval/leaderboard.py) as a terminal table, JSON, CSV or Markdown.

Every form carries the same facts: per group, the rows with mean, standard deviation and n per domain and
overall, the gain over the base model, the verdict against the next row, the group's notes; the runs left
out, with the reason and the `oda-sft eval` that fills the gap (`advise` writes it: the CLI owns commands).
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Callable
from typing import Any

from oda_sft.eval.leaderboard import METRICS, OVERALL, Board, Fix, Group, Note, Row, Stat
from oda_sft.eval.stats.paired import Comparison
from oda_sft.util import tables
from oda_sft.util.paths import doc_ref

Advise = Callable[[Fix], str]


def _footer() -> str:
    return (
        "values: mean ± sample standard deviation over seeds (0-100); a domain is the mean of its benchmarks, "
        f"overall the mean of the domains, as ODA's leaderboard computes them ({doc_ref('eval.md')})"
    )


def _num(value: float | None, signed: bool = False) -> str:
    return "" if value is None else format(value, "+.2f" if signed else ".2f")


def seeds_text(row: Row) -> str:
    return ",".join(str(s) for s in row.seeds) or "-"


def cell(stat: Stat, row_n: int) -> str:
    if stat.mean is None:
        return "-"
    text = _num(stat.mean) + (f" ± {stat.sd:.2f}" if stat.sd is not None else "")
    return text + (f" (n={stat.n})" if stat.n < row_n else "")


def rule(confidence: float) -> str:
    return (
        f"vs next: separated when the {100 * confidence:g}% interval of the difference from the next row excludes 0, "
        "by a paired test over questions (each question's mean over seeds) plus the seeds' own spread; "
        f"binomial from the question count where no per-question results were kept ({doc_ref('eval.md')})"
    )


def words(g: Comparison) -> str:
    """A comparison as a person reads it."""
    if g.method == "untested":
        return (
            f"not tested (Δ {g.difference:.2f}; no per-question results or question count for {', '.join(g.untested)})"
        )
    assert g.low is not None and g.high is not None
    verdict = "separated" if g.separated else "not separated"
    how = {"paired": "paired", "binomial": "binomial", "paired+binomial": "paired/binomial"}[g.method]
    seeds = "" if g.seed_spread else "; one seed: seed spread not included"
    return (f"{verdict} (Δ {g.difference:.2f}, {100 * g.confidence:g}% CI {g.low:.2f} to {g.high:.2f}; {how}, "
            f"{g.questions} questions{seeds})")  # fmt: skip


def verdict(row: Row) -> str:
    return "" if row.gap is None else words(row.gap)


def title(group: Group, by: str) -> str:
    oc = group.opencompass
    where = f"OpenCompass {oc.get('version', '?')}{' (ODA fork)' if oc.get('fork') else ''}"
    suite = group.settings.get("suite", "?")
    return (f"{group.preset}: evaluation settings {group.eval_id} (suite {suite}: {', '.join(group.benchmarks)}; "
            f"{where}); ranked by {by}")  # fmt: skip


def note_text(note: Note, advise: Advise) -> str:
    """One line: a subject or reason naming a dataset from a manifest may hold a newline."""
    text = f"{note.subject}: {note.reason}" + (f": `{advise(note.fix)}`" if note.fix is not None else "")
    return tables.one_line(text)


def _md_note(note: Note, advise: Advise) -> str:
    text = tables.markdown_text(f"{note.subject}: {note.reason}")
    if note.fix is None:
        return text
    command = tables.one_line(advise(note.fix))
    # A code span shows its text as written; its fence must be longer than any run of backticks inside.
    longest = max((len(run) for run in re.findall("`+", command)), default=0)
    return f"{text}: `{command}`" if not longest else f"{text}: {'`' * (longest + 1)} {command} {'`' * (longest + 1)}"


def overlap(row: Row) -> dict[str, int] | None:
    """`data contamination`'s counts for the very content the row's runs trained on, when it was checked."""
    from oda_sft.data.contamination.store import trained_counts
    from oda_sft.runs.manifest import MANIFEST_NAME, read

    for run in row.runs:
        dataset = (read(run.run_dir / MANIFEST_NAME) or {}).get("dataset")
        counts = trained_counts(dataset) if isinstance(dataset, dict) else None
        if counts is not None:
            return counts
    return None


def _checked(group: Group) -> dict[str, dict[str, int] | None]:
    return {row.label: overlap(row) for row in group.rows}


def _headers(group: Group, by: str) -> tuple[list[str], list[str]]:
    metrics = [*group.domains, OVERALL]
    heads = ["RANK", "DATASET", "SEEDS", *(m.upper() for m in metrics)]
    if group.base is not None:
        heads.append(f"GAIN ({by.upper()})")
    heads.append("VS NEXT")
    if any(c is not None for c in _checked(group).values()):
        heads.append("OVERLAP")  # benchmark: overlapping samples, where `data contamination` checked the data
    return heads, metrics


def _rows(group: Group, by: str) -> list[list[str]]:
    from oda_sft.data.contamination.store import describe_counts

    heads, metrics = _headers(group, by)
    checked = _checked(group) if "OVERLAP" in heads else {}
    out = []
    ranked = 0
    for row in group.rows:
        ranked += row.stat(by).mean is not None
        rank = str(ranked) if row.stat(by).mean is not None else "-"
        label = row.label + (" [cut answers]" if row.cut else "") + ("" if row.per_question else " [no per-question]")
        line = [rank, label, seeds_text(row), *(cell(row.stat(m), len(row.runs)) for m in metrics)]
        if group.base is not None:
            line.append(_num(row.gain.get(by), signed=True))
        out.append([*line, verdict(row), *([describe_counts(checked[row.label]) or "-"] if checked else [])])
    if group.base is not None:
        line = ["-", group.base.label, "-", *(cell(group.base.stat(m), 1) for m in metrics), "", ""]
        out.append([*line, *([""] if checked else [])])
    return out


def table(board: Board, advise: Advise) -> str:
    parts = []
    for group in board.groups:
        heads, _ = _headers(group, board.by)
        text = [tables.one_line(title(group, board.by)), tables.format_table(heads, _rows(group, board.by))]
        text += [f"  note: {note_text(n, advise)}" for n in group.notes]
        parts.append("\n".join(text))
    return "\n\n".join([*parts, f"{_footer()}\n{rule(board.confidence)}"])


def markdown(board: Board, advise: Advise) -> str:
    parts = []
    for group in board.groups:
        heads, _ = _headers(group, board.by)
        lines = [f"### {tables.markdown_text(title(group, board.by))}", "", "| " + " | ".join(heads) + " |",
                 "|" + "---|" * len(heads)]  # fmt: skip
        lines += ["| " + " | ".join(tables.markdown_text(v) for v in r) + " |" for r in _rows(group, board.by)]
        if group.notes:
            lines += ["", *(f"- {_md_note(n, advise)}" for n in group.notes)]
        parts.append("\n".join(lines))
    if board.left_out:
        parts.append("\n".join(["Left out:", "", *(f"- {_md_note(n, advise)}" for n in board.left_out)]))
    return "\n\n".join([*parts, f"{_footer()}.\n{rule(board.confidence)}."]) + "\n"


def _stat(stat: Stat) -> dict[str, Any]:
    return {"mean": stat.mean, "sd": stat.sd, "n": stat.n, "values": list(stat.values)}


def _note(note: Note, advise: Advise) -> dict[str, Any]:
    return {"subject": note.subject, "reason": note.reason, "command": advise(note.fix) if note.fix else None}


def _row_dict(row: Row, rank: int | None) -> dict[str, Any]:
    g = row.gap
    return {
        "rank": rank,
        "dataset": row.dataset,
        "label": row.label,
        "dataset_sha256": row.sha256 or None,
        "seeds": row.seeds,
        "runs": [str(r.run_dir) for r in row.runs],
        "values": {m: _stat(s) for m, s in row.stats.items()},
        "gain": row.gain,
        "vs_next": None if g is None else comparison(g),
        "vs_next_by_metric": {m: comparison(c) for m, c in row.vs_next.items()},
        "per_question": row.per_question,
        "cut_answers": row.cut,
        "overlap": overlap(row),  # {benchmark: samples} from `data contamination`; None: not checked
    }


def comparison(g: Comparison) -> dict[str, Any]:
    return {"difference": g.difference, "separated": g.separated, "method": g.method,
            "interval": None if g.low is None else [g.low, g.high], "confidence": g.confidence,
            "p_value": g.p_value, "se": g.se, "seed_spread_included": g.seed_spread, "questions": g.questions,
            "untested": g.untested, "words": words(g)}  # fmt: skip


def _ranks(group: Group, by: str) -> list[int | None]:
    ranks: list[int | None] = []
    for row in group.rows:
        ranks.append(len([r for r in ranks if r is not None]) + 1 if row.stat(by).mean is not None else None)
    return ranks


def as_json(board: Board, advise: Advise) -> str:
    groups = [
        {
            "model": g.preset,
            "eval_id": g.eval_id,
            "settings": g.settings,
            "opencompass": g.opencompass,
            "benchmarks": g.benchmarks,
            "domains": g.domains,
            "rows": [_row_dict(r, k) for r, k in zip(g.rows, _ranks(g, board.by), strict=True)],
            "base": None if g.base is None else _row_dict(g.base, None),
            "notes": [_note(n, advise) for n in g.notes],
        }
        for g in board.groups
    ]
    data = {"ranked_by": board.by, "rule": rule(board.confidence), "confidence": board.confidence, "groups": groups,
            "left_out": [_note(n, advise) for n in board.left_out]}  # fmt: skip
    return json.dumps(data, indent=2)


def as_csv(board: Board) -> str:
    """One line per row (and per base model), in every group; a value's mean, sd, n and gain per metric."""
    benches = list(dict.fromkeys(b for g in board.groups for b in g.benchmarks))
    head = ["model", "eval_id", "rank", "dataset", "dataset_sha256", "seeds"]
    for m in METRICS:
        head += [f"{m}_mean", f"{m}_sd", f"{m}_n", f"{m}_gain"]
    head += [tables.csv_text(f"{b}_mean") for b in benches]
    head += ["vs_next_separated", "vs_next_diff", "vs_next_low", "vs_next_high", "vs_next_method", "cut_answers"]
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(head)
    for g in board.groups:
        pairs: list[tuple[Row, str]] = [(r, "" if k is None else str(k)) for r, k in zip(g.rows, _ranks(g, board.by),
                                                                                         strict=True)]  # fmt: skip
        pairs += [(g.base, "base")] if g.base is not None else []
        for row, rank in pairs:
            # Text from the manifests is made a spreadsheet's text; the base model has no seed.
            text = [tables.csv_text(t) for t in (g.preset, g.eval_id)]
            line = [*text, rank, tables.csv_text(row.dataset), tables.csv_text(row.sha256),
                    " ".join(str(s) for s in row.seeds)]  # fmt: skip
            for m in METRICS:
                s = row.stat(m)
                line += [_raw(s.mean), _raw(s.sd), str(s.n) if m in row.stats else "", _raw(row.gain.get(m))]
            line += [_raw(row.stat(b).mean) for b in benches]
            gp = row.gap
            line += ["", "", "", "", ""] if gp is None else [str(gp.separated).lower(), _raw(gp.difference),
                                                            _raw(gp.low), _raw(gp.high), gp.method]  # fmt: skip
            line.append(tables.csv_text(" ".join(sorted(row.cut))))
            writer.writerow(line)
    return out.getvalue()


def _raw(value: float | None) -> str:
    return "" if value is None else repr(round(value, 6))
