"""A dataset x seed grid, one run after another on this node: finished runs are skipped,
interrupted ones resume, a failed one is recorded and the sweep goes on."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

from oda_sft.data.registry.dataset_dir import DatasetDir
from oda_sft.errors import OdaSftError, UsageError, one_line
from oda_sft.runs import lock
from oda_sft.runs.outdir import inspect_output_dir
from oda_sft.train.advice import Rerun
from oda_sft.train.outdir_policy import data_change, decide_action
from oda_sft.train.plan import TrainPlan, check_request, plan_train, settle_mode
from oda_sft.train.request import TrainRequest
from oda_sft.train.run import RunResult, check_launchable, start_run
from oda_sft.util import tables
from oda_sft.util.console import say


@dataclass(frozen=True)
class Cell:
    dataset: str
    seed: int
    mode: str = ""
    outcome: str = ""  # finished, skipped, failed, interrupted; or for a dry run: train, skip, resume
    exit_code: int | None = None
    where: str = ""  # output_dir, or the error that stopped the run


def parse_list(text: str, what: str) -> list[str]:
    items = [x.strip() for x in text.split(",") if x.strip()]
    if not items:
        raise UsageError(f"--{what} is empty: give a comma-separated list, e.g. --{what} a,b")
    if len(set(items)) != len(items):
        raise UsageError(f"--{what} lists an item twice: {text}")
    return items


def parse_seeds(text: str) -> list[int]:
    seeds = []
    for item in parse_list(text, "seeds"):
        if not item.isdigit():
            raise UsageError(f"--seeds has {item!r}, which is not a non-negative integer: e.g. --seeds 42,43,44")
        seeds.append(int(item))
    return seeds


def plan_grid(
    base: TrainRequest, datasets: list[str], seeds: list[int], measure: bool = True
) -> list[tuple[TrainRequest, TrainPlan | str]]:
    """Every cell's plan, or the one-line reason it cannot run. measure=False (a dry run) never
    measures a dataset to decide its mode.

    What is wrong for every cell (model, names, overrides, launch flags, dataset dir) stops the sweep
    before anything starts; what is wrong for one cell fails only that cell.
    """
    for name in datasets:
        check_request(replace(base, dataset=name, seed=seeds[0]))
    DatasetDir.load(base.dataset_dir)
    grid: list[tuple[TrainRequest, TrainPlan | str]] = []
    for dataset in datasets:
        decided = None  # the mode depends on the data, not the seed: decide (and measure) once per dataset
        for seed in seeds:
            request = replace(base, dataset=dataset, seed=seed)
            try:
                plan = plan_train(request, decided=decided)
                if measure:
                    plan = settle_mode(plan)
            except OdaSftError as exc:
                grid.append((request, one_line(str(exc))))
                continue
            decided = plan.decision
            grid.append((request, plan))
    return grid


# What a dry run says each cell would do. Cells whose outcome is in WOULD_FAIL make `sweep --dry-run` exit 1.
WOULD_FAIL = ("error", "busy")


def dry_run(grid: list[tuple[TrainRequest, TrainPlan | str]], force: bool = False) -> list[Cell]:
    """What each cell would do if the sweep ran now: train, skip, resume, replace (--force), or why it
    would fail (error), or that a trainer is live on it right now (busy). Reads only."""
    cells = []
    for request, plan in grid:
        if isinstance(plan, str):
            cells.append(Cell(request.dataset, request.seed, outcome="error", where=plan))
            continue
        mode = plan.decision.mode
        try:
            check_launchable(plan)
            holder = lock.probe(plan.output_dir)
            if holder is not None:
                where = holder.busy_line(plan.output_dir)
                cells.append(Cell(request.dataset, request.seed, mode, "busy", None, where))
                continue
            action = decide_action(plan, inspect_output_dir(plan.output_dir), force, Rerun(plan.request))
        except OdaSftError as exc:
            cells.append(Cell(request.dataset, request.seed, mode, "error", None, one_line(str(exc))))
            continue
        where = str(plan.output_dir)
        moved = data_change(plan) if action == "skip" else None
        if moved is not None:  # skipped as train skips it, saying what train says
            where += f": {moved.describe(plan)}; --force trains the new content (the old run is moved aside)"
        cells.append(Cell(request.dataset, request.seed, mode, action, None, where))
    return cells


def run_grid(
    grid: list[tuple[TrainRequest, TrainPlan | str]],
    force: bool,
    tokenized_cache_on: bool,
    allow_no_gpu: bool = False,
) -> list[Cell]:
    cells: list[Cell] = []
    for index, (request, plan) in enumerate(grid, 1):
        label = f"[{index}/{len(grid)}] {request.dataset} seed {request.seed}"
        if isinstance(plan, str):
            say(f"{label}: failed before starting: {plan}")
            cells.append(Cell(request.dataset, request.seed, outcome="failed", where=plan))
            continue
        say(f"{label}: {plan.decision.mode} -> {plan.output_dir}")
        try:
            result: RunResult = start_run(
                plan, force=force, tokenized_cache_on=tokenized_cache_on, allow_no_gpu=allow_no_gpu
            )
        except OdaSftError as exc:
            cells.append(Cell(request.dataset, request.seed, plan.decision.mode, "failed", None, one_line(str(exc))))
            continue
        cells.append(
            Cell(
                request.dataset,
                request.seed,
                plan.decision.mode,
                result.outcome,
                result.exit_code,
                str(result.output_dir),
            )
        )
        if result.outcome == "interrupted" or result.stopped:
            # Someone (a person, or Slurm preempting the job) asked everything to stop.
            say("sweep interrupted: the remaining runs were not started; run the same sweep again to go on")
            break
    return cells


# The summary's columns, in order: (header, value of a cell). Add a column by adding a line here.
SUMMARY_COLUMNS: list[tuple[str, Callable[[Cell], str]]] = [
    ("DATASET", lambda c: c.dataset),
    ("SEED", lambda c: str(c.seed)),
    ("MODE", lambda c: c.mode),
    ("OUTCOME", lambda c: c.outcome),
    ("EXIT", lambda c: "" if c.exit_code is None else str(c.exit_code)),
    ("OUTPUT / REASON", lambda c: c.where),
]


def format_summary(cells: list[Cell], footer: list[str] | None = None) -> str:
    """The sweep's table; footer lines (totals, say) follow it."""
    headers = [h for h, _ in SUMMARY_COLUMNS]
    rows = [[value(c) for _, value in SUMMARY_COLUMNS] for c in cells]
    return "\n".join([tables.format_table(headers, rows), *(footer or [])])
