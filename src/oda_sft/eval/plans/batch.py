"""What `oda-sft eval` does with its plans: one eval as always, or many in one process (issue 23, item 8).

Many: the runs --datasets x --seeds name, or --all (every finished run under the output root not yet evaluated
with these settings). All are planned, and the OpenCompass environment is checked once, before the first starts;
each eval is recorded in its run's manifest as it ends; a stop (Ctrl-C, Slurm's SIGTERM) records the running one
as interrupted and starts no other; a table of every run ends it, as `sweep`'s does.
"""

from __future__ import annotations

import shlex
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from oda_sft.errors import OdaSftError, UsageError, one_line
from oda_sft.eval import benchmarks as bench
from oda_sft.eval import opencompass as oc
from oda_sft.eval import record, runner, target
from oda_sft.eval.plans.plan import EvalArgs, Pick, Planned, picks, plan_eval
from oda_sft.names import check_name
from oda_sft.runs import manifest
from oda_sft.runs.listing import walk
from oda_sft.runs.outdir import set_aside_from
from oda_sft.util import tables
from oda_sft.util.console import say

Say = Callable[[str], None]
COLUMNS = ("RUN", "OUTCOME", "OVERALL", "SCORES / REASON")
FAILED = ("failed", "refused", "error")  # outcomes that make the command exit non-zero
NOTHING = (
    "nothing to evaluate under {root}: every finished run there was evaluated with these settings (--force "
    "evaluates them again)"
)


@dataclass(frozen=True)
class Row:
    run: str
    outcome: str  # finished, skipped, failed, interrupted, refused, not started, error; a dry run: what it would do
    overall: str = ""
    note: str = ""


def evaluate(args: EvalArgs, echo: Say) -> int:
    """Carry out what eval was asked; returns the exit status."""
    if not args.many:
        planned = plan_eval(args)
        if args.dry_run:
            preview(planned, args, echo)
            return 0
        install = oc.describe(oc.locate(args.opencompass))
        runner.check(planned.eval, install)
        return runner.run(planned.eval, install, args.force, planned.rerun)
    items, notes = plan_many(args)
    for note in notes:
        say(note)
    planned_ones = [i for i in items if isinstance(i, Planned)]
    if args.dry_run:
        _preview_many(items, args, echo)
        return 0
    if planned_ones:
        install = oc.describe(oc.locate(args.opencompass))  # once, for all of them
        for planned in planned_ones:  # what would stop any of them stops all, before the first starts
            runner.check(planned.eval, install)
        rows, status = _run_many(items, install, args, echo)
    else:
        rows, status = [i for i in items if isinstance(i, Row)], 0
    if not rows:
        say(NOTHING.format(root=args.output_root))
        return 0
    echo(format_rows(rows))
    if status:
        return status
    failed = [r for r in rows if r.outcome in FAILED]
    if failed:
        say(f"{len(failed)} of {len(rows)} evals did not finish (see OUTCOME and SCORES / REASON)")
        return 1
    return 0


def find_runs(args: EvalArgs) -> tuple[list[tuple[Path, str]], list[str]]:
    """--all's candidates: each run dir under the output root with the preset its manifest names (with --model:
    that preset's only), never a base model's dir or a run moved aside; and notes on what could not be read."""
    if not args.output_root.is_dir():
        raise UsageError(f"no runs under {args.output_root}: `oda-sft train` writes them there (--output-root)")
    found, problems = walk(args.output_root)
    notes = [f"note: {path}: {why}" for path, why in problems]
    runs = []
    for path in found:
        data = manifest.read(path) or {}
        model = data.get("model")
        preset = str(model.get("preset", "")) if isinstance(model, dict) else ""
        if data.get("base") or set_aside_from(path.parent) is not None:
            continue
        if args.model is None or preset == args.model:
            runs.append((path.parent, preset))
    return runs, notes


def plan_many(args: EvalArgs) -> tuple[list[Planned | Row], list[str]]:
    """Each named run's plan, or the row saying why it cannot be evaluated; and notes on what --all left out.
    A --suite or --benchmarks that some preset has not is refused before anything (it is the arguments')."""
    notes: list[str] = []
    if args.every:
        runs, notes = find_runs(args)
        chosen = [Pick(run=run_dir) for run_dir, _ in runs]
        presets = {preset for _, preset in runs if preset in bench.PRESETS}
    else:  # what is wrong for every run (the preset, a name) stops all of them, as for a sweep
        assert args.model is not None
        presets = {target.preset_named(args.model).name}
        for name in args.datasets:
            check_name("dataset", name)
        chosen = picks(args)
    for name in sorted(presets):
        bench.select(bench.PRESETS[name], args.suite, args.names)
    items: list[Planned | Row] = []
    done = 0
    for pick in chosen:
        try:
            planned = plan_eval(args, pick)
            if args.every and not args.force and runner.decide(planned.eval, False, planned.rerun) == "skip":
                done += 1
                continue
        except OdaSftError as exc:
            if args.every:  # not a finished run, or not one eval can read: --all takes finished runs only
                notes.append(f"left out: {one_line(str(exc))}")
                continue
            items.append(Row(_pick_dir(args, pick), "error", note=one_line(str(exc))))
            continue
        items.append(planned)
    if done:
        notes.append(f"left out {done} run(s) already evaluated with these settings (--force evaluates them again)")
    return items, notes


def _pick_dir(args: EvalArgs, pick: Pick) -> str:
    """The run a pick names, for the table (its name is checked already: the preset and dataset are valid)."""
    if pick.run is not None:
        return label(pick.run)
    assert pick.model is not None and pick.dataset is not None
    return label(target.run_for(target.preset_named(pick.model), args.output_root, pick.dataset, pick.seed))


def preview(planned: Planned, args: EvalArgs, echo: Say) -> None:
    """One eval's dry run: the model config, the benchmarks, the command, and what a real eval would stop at (a
    run not trained, a base model not downloaded: each with the command that makes it). Writes nothing."""
    plan = planned.eval
    for line in planned.missing:
        say(f"warning: a real eval would stop: {line}")
    install = _install(args)
    program = install.program if install is not None else Path("opencompass")
    echo(plan.config_text().rstrip())
    echo(f"\n# model config file: {plan.layout.model_config(plan.id)}")
    provisional = " (provisional: the chat template is the run's own, read once it is trained)"
    echo(f"# settings {plan.id}{provisional if planned.provisional else ''}: {', '.join(b.name for b in plan.chosen)}")
    echo(f"# command: {shlex.join(plan.command(program, plan.stamp(_action(planned, args))))}")
    if plan.judge_note():
        echo(f"# {plan.judge_note()}")
    if install is not None:
        try:
            runner.check(plan, install)
        except OdaSftError as exc:
            say(f"warning: a real eval would stop: {exc}")


def _preview_many(items: list[Planned | Row], args: EvalArgs, echo: Say) -> None:
    install = _install(args)
    program = install.program if install is not None else Path("opencompass")
    rows = []
    for item in items:
        if isinstance(item, Row):
            rows.append(item)
            continue
        plan = item.eval
        action = _action(item, args)
        echo(f"# {item.run_dir}: {', '.join(b.name for b in plan.chosen)}")
        echo(f"# command: {shlex.join(plan.command(program, plan.stamp(action)))}")
        rows.append(Row(label(item.run_dir), "missing" if item.missing else action, note="; ".join(item.missing)))
    if install is not None:
        for item in items:
            if isinstance(item, Planned):
                try:
                    runner.check(item.eval, install)
                except OdaSftError as exc:
                    say(f"warning: a real eval would stop: {exc}")
                    break
    if rows:
        echo(format_rows(rows))
    else:
        say(NOTHING.format(root=args.output_root))


def _install(args: EvalArgs) -> oc.Install | None:
    try:
        return oc.describe(oc.locate(args.opencompass))
    except OdaSftError as exc:
        say(f"warning: a real eval would stop: {exc}")
        return None


def _action(planned: Planned, args: EvalArgs) -> runner.Action:
    try:
        return runner.decide(planned.eval, args.force, planned.rerun)
    except OdaSftError as exc:
        say(f"warning: a real eval would stop: {exc}")
        return "start"


def _run_many(items: list[Planned | Row], install: oc.Install, args: EvalArgs, echo: Say) -> tuple[list[Row], int]:
    """Each plan in turn: the rows (one per item, in order), and the exit status of a stop (0 when none came)."""
    rows: list[Row] = []
    todo = sum(isinstance(i, Planned) for i in items)
    started = 0
    try:
        for item in items:
            if isinstance(item, Row):
                rows.append(item)
                continue
            started += 1
            say(f"[{started}/{todo}] {item.run_dir}")
            row, code = _run_one(item, install, args)
            rows.append(row)
            if row.outcome == "interrupted":
                say("interrupted: the evals not started are left for the same command, which goes on with them")
                return rows + [_not_started(i) for i in items[len(rows) :]], code or 130
    except KeyboardInterrupt:  # a stop outside OpenCompass (runner.run recorded the eval if it had begun)
        current = items[len(rows)]
        assert isinstance(current, Planned)
        rows.append(Row(label(current.run_dir), "interrupted"))
        echo(format_rows(rows + [_not_started(i) for i in items[len(rows) :]]))
        raise
    return rows, 0


def _not_started(item: Planned | Row) -> Row:
    return item if isinstance(item, Row) else Row(label(item.run_dir), "not started")


def _run_one(planned: Planned, install: oc.Install, args: EvalArgs) -> tuple[Row, int]:
    """One eval of many, and its exit status; refused (busy, other settings) is a row, not a stop."""
    where = label(planned.run_dir)
    try:
        action = runner.decide(planned.eval, args.force, planned.rerun)
        code = runner.run(planned.eval, install, args.force, planned.rerun)
    except OdaSftError as exc:
        return Row(where, "refused", note=one_line(str(exc))), 0
    done = record.find(planned.run_dir, planned.eval.id) or {}
    outcome = "skipped" if action == "skip" else str(done.get("status") or "failed")
    overall = done.get("overall")
    shown = f"{overall:.2f}" if isinstance(overall, int | float) else ""
    note = runner.describe_scores(done)
    if outcome == "interrupted":
        note = f"`{planned.rerun}` resumes it"
    elif outcome == "failed" and done.get("missing"):
        note = f"no score for {', '.join(map(str, done['missing']))}; {note}"
    return Row(where, outcome, shown, note), code


def label(run_dir: Path) -> str:
    """A run as the table names it: relative to the working directory when under it."""
    try:
        return str(run_dir.absolute().relative_to(Path.cwd()))
    except ValueError:
        return str(run_dir)


def format_rows(rows: list[Row]) -> str:
    return tables.format_table(COLUMNS, [[r.run, r.outcome, r.overall, r.note] for r in rows])
