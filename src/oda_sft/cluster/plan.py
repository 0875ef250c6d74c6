"""Plan every run a cluster job will start, before it starts: on the login node when the script is
written, and again on each node in preflight."""

from __future__ import annotations

from oda_sft.data.sources.fetch import fetch_missing
from oda_sft.train.mode import ModeDecision
from oda_sft.train.plan import TrainPlan, plan_train, settle_mode
from oda_sft.train.request import TrainRequest
from oda_sft.train.run import check_launchable
from oda_sft.util.console import say


def plan_job(requests: list[TrainRequest], fetch: bool = False) -> list[TrainPlan]:
    """Each request planned and checked as `train` would; each dataset's mode settled once.

    With `fetch` (`-- train ... --fetch`), unregistered catalog datasets are fetched and converted here, once,
    before the job exists, so no node ever fetches. Settling stores a measured decision in dataset_info.json,
    so when the script is rendered the data is tokenized here, once, and every node's preflight and run read
    the stored answer."""
    if fetch and requests:
        fetch_missing([r.dataset for r in requests], requests[0].dataset_dir, say)
    plans: list[TrainPlan] = []
    decided: dict[str, ModeDecision] = {}
    for request in requests:
        plan = settle_mode(plan_train(request, decided=decided.get(request.dataset)))
        check_launchable(plan)
        decided[request.dataset] = plan.decision
        plans.append(plan)
    return plans
