"""Eval jobs: `oda-sft slurm -- eval ...`, and `oda-sft slurm --eval -- train|sweep ...`, which submits one eval
job per trained run that waits for the training job (a Slurm dependency: no GPU is held while it waits).

An eval job is one task on one node running `oda-sft eval` itself: its own checks (the GPUs) run there within a
second, and when Slurm stops it (time limit, preemption) eval records the eval as interrupted; the same job run
again (--requeue) resumes it with OpenCompass's own reuse (-r). Planning happens here, on the login node, with
eval's own refusals: everything but the GPU count, which only the node can see.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass
from pathlib import Path

from oda_sft import __version__
from oda_sft.cluster.slurm import JobSpec, gpus_text, guide_ref, sbatch_header, shell_join, shell_word, srun_lines
from oda_sft.eras import RecipeEra
from oda_sft.errors import LaunchError, UsageError

# A training job ends 0 only when its run finished, so its eval waits for that (afterok). A sweep exits 1 when
# any of its runs failed, which would leave every eval of the sweep waiting forever: its evals wait for the job
# to end in any state (afterany), and an eval whose run did not finish stops in a second with eval's one line.
DEPENDENCY = {"train": "afterok", "sweep": "afterany"}
# A dependency that can never be met (the training job failed) cancels the eval job instead of leaving it queued.
KILL_ON_INVALID_DEP = "--kill-on-invalid-dep=yes"
_JOB_ID = re.compile(r"(\d+)(;\S*)?")  # sbatch --parsable: "<id>" or "<id>;<cluster>"


@dataclass(frozen=True)
class EvalArgs:
    """What `oda-sft eval` was asked, as its own parser read it: captured by `oda-sft slurm`, not run."""

    model: str | None
    dataset: str | None
    seed: int
    output_root: Path
    run: Path | None
    base: bool
    suite: str
    benchmarks: tuple[str, ...] | None
    opencompass: Path | None
    force: bool
    dry_run: bool
    recipe: RecipeEra | None = None  # --recipe: a run is evaluated in its own era; a base model in this one


@dataclass(frozen=True)
class EvalJob:
    run_dir: Path  # absolute: the eval's records and files go there, the job's logs under its slurm-logs/
    preset: str
    gpus: int  # what the preset's eval needs on its node (0: the CPU)
    opencompass: Path  # the program the checks found: the job runs that one


def plan_eval_job(args: EvalArgs, trained_by: str | None = None) -> EvalJob:
    """Plan the eval as `oda-sft eval` would, before the script is written. `trained_by` names the preset of the
    training job this eval job will wait for: its run need not be finished (nor exist) yet."""
    from oda_sft.eval import benchmarks as bench
    from oda_sft.eval import opencompass as oc
    from oda_sft.eval import runner, target
    from oda_sft.names import check_name

    if args.dry_run:
        raise UsageError(
            "--dry-run after `-- eval` would evaluate nothing on the cluster: run `oda-sft eval --dry-run` here"
        )
    found: target.Target | None = None
    if args.base:
        assert args.model is not None
        found = target.base(target.preset_named(args.model), args.output_root, dry_run=True)  # tiny: built there
        run_dir, preset = found.run_dir, found.preset
    else:
        if args.run is not None:
            run_dir = args.run
        else:
            assert args.model is not None and args.dataset is not None
            dataset = check_name("dataset", args.dataset)
            run_dir = target.run_for(target.preset_named(args.model), args.output_root, dataset, args.seed)
        if trained_by is not None:
            preset = target.preset_named(trained_by)
        else:
            train = None
            if args.run is None:
                train = shlex.join(["oda-sft", "train", "--model", str(args.model), "--dataset", str(args.dataset),
                                    "--seed", str(args.seed), "--output-root", str(args.output_root)])  # fmt: skip
            found = target.trained(run_dir, args.model, train)
            preset = found.preset
    if found is not None:
        found = target.in_era(found, args.recipe)
    eval_preset = bench.for_preset(preset)
    chosen = bench.select(eval_preset, args.suite, list(args.benchmarks) if args.benchmarks else None)
    install = oc.describe(oc.locate(args.opencompass))
    runner.check_install(eval_preset, chosen, install)
    if found is not None and found.model_dir is not None:
        plan = runner.plan(found, eval_preset, args.suite, chosen)
        rerun = shlex.join(["oda-sft", "eval", "--run", str(found.run_dir)])
        if runner.decide(plan, args.force, rerun) == "skip":
            from oda_sft.util.console import say

            say(f"note: {found.run_dir} was already evaluated with these settings ({plan.id}): the job will skip it")
    return EvalJob(run_dir.absolute(), preset.name, eval_preset.num_gpus, install.program)


def render_eval_script(spec: JobSpec) -> str:
    """The sbatch script of one eval job: one task on one node, `oda-sft eval` with the user's arguments."""
    spec.validate()
    o = spec.options
    q = shell_word
    gpus = gpus_text(o)
    lines = [
        "#!/bin/bash",
        f"# oda-sft {__version__}: `oda-sft eval` on one node, {gpus}.",
        *([f"# Generated by: {shell_join(('oda-sft', *spec.command))}"] if spec.command else []),
        f"# Review it, keep it, and submit it with `sbatch <this file>`. {guide_ref()} explains every part.",
        *sbatch_header(spec),
        "",
        "set -euo pipefail",
        "",
        "# The oda-sft that rendered this script, by absolute path: the node needs no activated venv.",
        f"ODA_SFT={q(str(spec.oda_sft))}",
        f'LOG_DIR={q(str(spec.log_root))}/"$SLURM_JOB_ID"',
        'mkdir -p "$LOG_DIR"',
        "export ODA_SFT LOG_DIR",
        'echo "oda-sft: eval job $SLURM_JOB_ID on $SLURM_JOB_NODELIST; its log is $LOG_DIR/eval.log"',
        "",
        "# exec: srun replaces this shell, so the SIGTERM that --signal=B:TERM sends before the time limit (or a",
        "#   preemption) reaches srun and `oda-sft eval`, which stops OpenCompass and records the eval as",
        "#   interrupted; running the job again (--requeue) resumes it: OpenCompass reuses what it finished (-r).",
        srun_lines(o, "--nodes=1 --ntasks=1", "eval.log"),
        """  bash -c 'exec "$ODA_SFT" eval "$@"' oda-sft-eval \\""",
        f"  {' '.join(q(a) for a in spec.args)}",
        "",
    ]
    return "\n".join(lines)


def dependent_argv(sbatch: str, script: Path, after: str, job_id: str) -> list[str]:
    """sbatch for an eval job that starts only when training job `job_id` has ended (`after`: afterok|afterany)."""
    return [sbatch, "--parsable", f"--dependency={after}:{job_id}", KILL_ON_INVALID_DEP, str(script)]


def job_id_of(stdout: str, script: Path) -> str:
    """The job id in `sbatch --parsable`'s output (its last line: a site's job_submit plugin may say more)."""
    lines = [line.strip() for line in stdout.splitlines() if line.strip()]
    found = _JOB_ID.fullmatch(lines[-1]) if lines else None
    if found is None:
        raise LaunchError(f"sbatch printed no job id for {script} ({stdout.strip()[:200]!r}): check `squeue --me`")
    return found.group(1)
