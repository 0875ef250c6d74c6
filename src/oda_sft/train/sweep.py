"""A dataset x seed grid, one run after another on this node: finished runs are skipped,
interrupted ones resume, a failed one is recorded and the sweep goes on."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

from oda_sft.data.registry import DatasetDir
from oda_sft.errors import OdaSftError, UsageError, one_line
from oda_sft.runs.outdir import inspect_output_dir
from oda_sft.train.plan import TrainPlan, check_request, plan_train, settle_mode
from oda_sft.train.request import TrainRequest
from oda_sft.train.run import RunResult, check_launchable, start_run
from oda_sft.util import tables


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


def dry_run(grid: list[tuple[TrainRequest, TrainPlan | str]]) -> list[Cell]:
    cells = []
    verb = {"fresh": "train", "finished": "skip", "interrupted": "resume", "occupied": "refuse"}
    for request, plan in grid:
        if isinstance(plan, str):
            cells.append(Cell(request.dataset, request.seed, outcome="error", where=plan))
            continue
        try:
            check_launchable(plan)
        except OdaSftError as exc:
            cells.append(Cell(request.dataset, request.seed, plan.decision.mode, "error", None, one_line(str(exc))))
            continue
        state = inspect_output_dir(plan.output_dir)
        cells.append(
            Cell(request.dataset, request.seed, plan.decision.mode, verb[state.kind], None, str(plan.output_dir))
        )
    return cells


def run_grid(
    grid: list[tuple[TrainRequest, TrainPlan | str]],
    force: bool,
    tokenized_cache_on: bool,
    say: Callable[[str], None],
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
            result: RunResult = start_run(plan, force=force, say=say, tokenized_cache_on=tokenized_cache_on)
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
        if result.outcome == "interrupted":
            # Someone (a person, or Slurm preempting the job) asked everything to stop.
            say("sweep interrupted: the remaining runs were not started; run the same sweep again to go on")
            break
    return cells


def format_summary(cells: list[Cell]) -> str:
    headers = ("DATASET", "SEED", "MODE", "OUTCOME", "EXIT", "OUTPUT / REASON")
    rows = [
        (c.dataset, str(c.seed), c.mode, c.outcome, "" if c.exit_code is None else str(c.exit_code), c.where)
        for c in cells
    ]
    return tables.format_table(headers, rows)
