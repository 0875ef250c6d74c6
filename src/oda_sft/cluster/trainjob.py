"""Plan every run a cluster job will start, before it starts: on the login node when the script is
written, and again on each node in preflight."""

from __future__ import annotations

from oda_sft.data.registry.fetch import fetch_missing
from oda_sft.runs.space import GIB, needed_for
from oda_sft.train.mode import ModeDecision
from oda_sft.train.plan import TrainPlan, plan_train, settle_mode
from oda_sft.train.render import RESUMABLE_KEEP, make_resumable
from oda_sft.train.request import TrainRequest
from oda_sft.train.run import check_launchable


def plan_job(requests: list[TrainRequest], fetch: bool = False) -> list[TrainPlan]:
    """Each request planned and checked as `train` would; each dataset's mode settled once.

    With `fetch` (`-- train ... --fetch`), unregistered catalog datasets are fetched and converted here, once,
    before the job exists, so no node ever fetches. Settling stores a measured decision in dataset_info.json,
    so when the script is rendered the data is tokenized here, once, and every node's preflight and run read
    the stored answer."""
    if fetch and requests:
        fetch_missing([r.dataset for r in requests], requests[0].dataset_dir)
    plans: list[TrainPlan] = []
    decided: dict[str, ModeDecision] = {}
    for request in requests:
        plan = settle_mode(plan_train(request, decided=decided.get(request.dataset)))
        check_launchable(plan)
        decided[request.dataset] = plan.decision
        plans.append(plan)
    return plans


def resume_note(plans: list[TrainPlan], subcommand: str) -> str:
    """One line for a job whose runs are not --resumable: what a stop costs them, and what --resumable
    costs on disk (reckoned as runs/space.py reckons it before a run starts)."""
    plan = plans[0]
    params = plan.preset.shape.params
    resumable = make_resumable(plan.config, None)
    return (
        "this job is not --resumable: if Slurm stops a run (time limit, preemption), running the job again starts "
        "that run over from step 0, or after its first epoch is refused (the recipe saves weights only, once per "
        f"epoch); to resume from the last checkpoint instead, add --resumable after `-- {subcommand}`: full "
        f"checkpoints every {resumable['save_steps']} steps, newest {RESUMABLE_KEEP} kept, about "
        f"{_gib(needed_for(resumable, params))} of disk per run at peak for {plan.preset.name} "
        f"({params / 1e9:.2f}B parameters) instead of {_gib(needed_for(plan.config, params))}"
    )


def _gib(n: int) -> str:
    return f"{n / GIB:.0f} GiB" if n >= 10 * GIB else f"{n / GIB:.1f} GiB" if n >= GIB // 10 else f"{n >> 20} MiB"
