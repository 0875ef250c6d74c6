"""`oda-sft slurm`: an sbatch script that runs train (or sweep) on every node, or eval on one node; printed, written
or submitted. With --eval, one eval job per trained run follows the training job (a Slurm dependency)."""

from __future__ import annotations

import itertools
import os
import shutil
import sys
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from oda_sft.cli.options import optional, spec_from
from oda_sft.cli.results.eval import SUITE_HELP
from oda_sft.cli.workload import Workload, parse_eval, parse_workload
from oda_sft.cluster.slurm import (
    DEFAULT_TERM_BEFORE,
    JobSpec,
    SlurmOptions,
    check_user_args,
    default_job_name,
    oda_sft_executable,
    render_script,
    shell_join,
)
from oda_sft.cluster.slurm import EVAL as EVAL_SUB
from oda_sft.cluster.slurm import sbatch_argv as build_sbatch_argv
from oda_sft.errors import LaunchError, UsageError
from oda_sft.util import subproc
from oda_sft.util.console import say
from oda_sft.util.fs import atomic_write_text

if TYPE_CHECKING:
    from oda_sft.cluster.evaljob import EvalJob
    from oda_sft.train.plan import TrainPlan

ALLOC = "Allocation (sbatch)"


def _alloc(*names: str, help: str, **more: Any) -> Any:
    """An option of the sbatch allocation, listed in its own panel of `--help`."""
    return typer.Option(*names, help=help, rich_help_panel=ALLOC, **more)


EVAL = "Evaluation after training (--eval)"
LOGS_DIR = "slurm-logs"
SBATCH_TIMEOUT_S = 300  # sbatch answers in seconds; a busy controller can take a while


def slurm(
    ctx: typer.Context,
    nodes: Annotated[
        int | None,
        _alloc("--nodes", "-N", help="Number of nodes (train/sweep; an eval runs on one)."),
    ] = None,
    gpus_per_node: Annotated[
        int | None,
        _alloc(
            help="GPUs per node; 0 runs on the CPU (tiny model only) [eval: what its preset needs].", show_default=False
        ),
    ] = None,
    workload: Annotated[
        list[str] | None,
        typer.Argument(help="`train`, `sweep` or `eval` and its arguments, after `--`.", show_default=False),
    ] = None,
    partition: Annotated[str | None, _alloc(help="Partition.")] = None,
    time: Annotated[str | None, _alloc(help="Time limit, e.g. 2-00:00:00.")] = None,
    account: Annotated[str | None, _alloc(help="Account to charge.")] = None,
    qos: Annotated[str | None, _alloc(help="Quality of service.")] = None,
    constraint: Annotated[str | None, _alloc(help="Node features, e.g. a100.")] = None,
    exclusive: Annotated[bool, _alloc(help="Whole nodes only.")] = False,
    job_name: Annotated[str | None, _alloc(help="Job name [default: oda-sft-MODEL-DATASET].")] = None,
    cpus_per_task: Annotated[int | None, _alloc(help="CPUs per node (one task per node).")] = None,
    mem: Annotated[str | None, _alloc(help="Memory per node, e.g. 500G; 0 = all.")] = None,
    requeue: Annotated[bool, _alloc(help="Let Slurm requeue the job after preemption.")] = (False),
    term_before: Annotated[
        int, _alloc(help="Seconds before the time limit to send SIGTERM (0: none).")
    ] = DEFAULT_TERM_BEFORE,
    sbatch_option: Annotated[
        list[str] | None,
        _alloc(help="Any other sbatch option, e.g. --reservation=big (repeatable)."),
    ] = None,
    evaluate: Annotated[
        bool,
        typer.Option(
            "--eval", help="Also an eval job per trained run, started when the training job ends.", rich_help_panel=EVAL
        ),
    ] = False,
    eval_suite: Annotated[str, typer.Option(help=SUITE_HELP, rich_help_panel=EVAL)] = "all",
    eval_benchmarks: Annotated[
        str | None, typer.Option(help="Comma-separated benchmark names, instead of --eval-suite.", rich_help_panel=EVAL)
    ] = None,
    eval_opencompass: Annotated[Path | None, optional(help="eval's --opencompass.", rich_help_panel=EVAL)] = None,
    eval_time: Annotated[
        str | None, typer.Option(help="The eval jobs' time limit [default: the cluster's].", rich_help_panel=EVAL)
    ] = None,
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Write the script to this file instead of printing it.")
    ] = None,
    submit: Annotated[bool, typer.Option(help="Submit with sbatch and print the job id.")] = False,
) -> None:
    """Render an sbatch script that runs train (or sweep) on every node of a Slurm job, or eval on one node."""
    options = spec_from(
        SlurmOptions,
        ctx,
        nodes=nodes if nodes is not None else 1,
        gpus_per_node=gpus_per_node if gpus_per_node is not None else 0,
        extra=tuple(sbatch_option or ()),
    )
    given = {"--eval-suite": eval_suite != "all", "--eval-time": eval_time, "--eval-benchmarks": eval_benchmarks,
             "--eval-opencompass": eval_opencompass}  # fmt: skip
    eval_asked = [flag for flag, value in given.items() if value]
    if eval_asked and not evaluate:
        raise UsageError(f"{eval_asked[0]} sets up the eval jobs of --eval: add --eval, or leave it out")
    if workload and workload[0] == EVAL_SUB:
        if evaluate:
            raise UsageError("--eval evaluates after `-- train` or `-- sweep`: after `-- eval` give eval's own options")
        _eval_job(workload[1:], options, nodes, gpus_per_node, output, submit)
        return
    if nodes is None or gpus_per_node is None:
        raise UsageError("a training job needs --nodes N and --gpus-per-node G (0: the CPU, tiny model only)")
    followup = _Followup(eval_suite, eval_benchmarks, eval_opencompass, eval_time) if evaluate else None
    _training_job(workload, options, followup, output, submit)


@dataclass(frozen=True)
class _Followup:
    """--eval and its settings: one eval job per trained run, started when the training job ends."""

    suite: str
    benchmarks: str | None
    opencompass: Path | None
    time: str | None


def _training_job(
    workload: list[str] | None, options: SlurmOptions, followup: _Followup | None, output: Path | None, submit: bool
) -> None:
    """`oda-sft slurm -- train|sweep ...`: one job that runs it on every node; with --eval, eval jobs after it."""
    from oda_sft.cluster.evaljob import DEPENDENCY  # only when a script is made
    from oda_sft.cluster.trainjob import plan_job, resume_note

    options.validate()  # before the workload: a bad --nodes is reported even with bad train arguments
    eval_options = _eval_node(options, followup.time, output) if followup else None
    work = parse_workload(workload, "oda-sft slurm")
    check_user_args(work.args)
    # Every run the job would start is planned here, and an unmeasured dataset is measured here, once:
    # the nodes then read the stored decision instead of each tokenizing the data again.
    plans = plan_job(work.requests, fetch=work.run.fetch)
    for plan in plans:
        for note in plan.notes:
            say(note)
    evals = [_plan_followup(plan, followup) for plan in plans] if followup else []
    spec = _training_spec(work, plans, options)
    script = render_script(spec)
    eval_scripts = _eval_scripts(spec, eval_options, evals) if eval_options else []
    if plans and not spec.resumable:
        say(resume_note(plans, work.subcommand))
    if followup:
        _chain(script, spec.log_root, spec.job_name, eval_scripts, DEPENDENCY[work.subcommand], submit)
        return
    _emit(
        script,
        output,
        submit,
        spec.log_root,
        spec.job_name,
        f"node logs will be in {spec.log_root}/<job id>/node-<N>.log",
    )


def _eval_node(options: SlurmOptions, time: str | None, output: Path | None) -> SlurmOptions:
    """An eval job's allocation: one node, the GPUs its preset needs, its own time limit; not sized like a
    training node."""
    eval_options = replace(options, nodes=1, time=time, exclusive=False, job_name=None, cpus_per_task=None,
                           mem=None)  # fmt: skip
    eval_options.validate()
    if output is not None:
        raise UsageError("-o writes one script, and --eval makes one per job: leave out -o (each script is "
                         "written beside its run's logs)")  # fmt: skip
    return eval_options


def _training_spec(work: Workload, plans: list[TrainPlan], options: SlurmOptions) -> JobSpec:
    """The training job: its logs beside the run (train) or under the output root (sweep), and its name."""
    if work.subcommand == "train":
        log_root = plans[0].output_dir / LOGS_DIR
        name = options.job_name or default_job_name("train", plans[0].request.model, plans[0].request.dataset)
    else:
        log_root = work.run.request.output_root.expanduser().resolve() / LOGS_DIR
        name = options.job_name or default_job_name(work.subcommand, None, None)
    return JobSpec(
        options=options,
        oda_sft=oda_sft_executable(),
        subcommand=work.subcommand,
        args=_without_fetch(work.args),
        workdir=Path.cwd(),
        log_root=log_root,
        job_name=name,
        command=_command(),
        resumable=work.run.request.resumable,
    )


def _eval_scripts(
    spec: JobSpec, eval_options: SlurmOptions, evals: list[tuple[Path, str, str, int, list[str]]]
) -> list[tuple[Path, str]]:
    """One eval job's script per trained run (`_plan_followup`), rendered from the training job's spec."""
    from oda_sft.cluster.evaljob import render_eval_script

    return [
        (run_dir, render_eval_script(replace(spec, options=replace(eval_options, gpus_per_node=gpus),
                                             subcommand=EVAL_SUB, args=tuple(argv), log_root=run_dir / LOGS_DIR,
                                             job_name=default_job_name(EVAL_SUB, preset, dataset))))
        for run_dir, preset, dataset, gpus, argv in evals
    ]  # fmt: skip


def _plan_followup(plan: TrainPlan, followup: _Followup) -> tuple[Path, str, str, int, list[str]]:
    """The eval job that follows one trained run: parsed by eval's own parser and planned on this node."""
    from oda_sft.cluster.evaljob import plan_eval_jobs

    suite, benchmarks, opencompass = followup.suite, followup.benchmarks, followup.opencompass

    argv = ["--run", str(plan.output_dir.absolute())]
    argv += ["--benchmarks", benchmarks] if benchmarks else ["--suite", suite] if suite != "all" else []
    argv += ["--opencompass", str(opencompass)] if opencompass is not None else []
    (job,) = plan_eval_jobs(parse_eval(argv), trained_by=plan.preset.name)
    return job.run_dir, job.preset, plan.request.dataset, job.gpus, list(job.argv)


def _eval_job(
    argv: list[str], options: SlurmOptions, nodes: int | None, gpus_per_node: int | None, output: Path | None,
    submit: bool,
) -> None:  # fmt: skip
    """`oda-sft slurm -- eval ...`: eval jobs, planned here as eval plans them (all but the GPU count): one job,
    or one per run for several (--datasets x --seeds, --all)."""
    from oda_sft.cluster.evaljob import plan_eval_jobs, render_eval_script

    if nodes not in (None, 1):
        raise UsageError(f"--nodes {nodes}: an eval runs on one node (one GPU per model): leave out --nodes")
    options.validate()
    args = parse_eval(argv)
    if args.many and output is not None:
        raise UsageError("-o writes one script, and several runs make one eval job each: leave out -o (each script "
                         "is written beside its run's logs)")  # fmt: skip
    jobs = plan_eval_jobs(args)
    for job in jobs:
        gpus = job.gpus if gpus_per_node is None else gpus_per_node
        if gpus < job.gpus:
            raise UsageError(f"--gpus-per-node {gpus}: the {job.preset} evaluation needs {job.gpus} GPU(s) on its "
                             "node: leave out --gpus-per-node")  # fmt: skip

    def spec(job: EvalJob, node_argv: list[str], name: str) -> JobSpec:
        gpus = job.gpus if gpus_per_node is None else gpus_per_node
        return JobSpec(options=replace(options, gpus_per_node=gpus), oda_sft=oda_sft_executable(),
                       subcommand=EVAL_SUB, args=tuple(node_argv), workdir=Path.cwd(), log_root=job.run_dir / LOGS_DIR,
                       job_name=name, command=_command())  # fmt: skip

    if args.many:
        scripts = [(job.run_dir, render_eval_script(spec(job, list(job.argv), options.job_name or
                    default_job_name(EVAL_SUB, job.preset, job.dataset)))) for job in jobs]  # fmt: skip
        _chain(None, Path(), "", scripts, None, submit)
        return
    (job,) = jobs
    node_argv = [*argv, *(["--opencompass", str(job.opencompass)] if args.opencompass is None else [])]
    name = options.job_name or default_job_name(EVAL_SUB, job.preset, args.datasets[0] if args.datasets else None)
    log_root = job.run_dir / LOGS_DIR
    _emit(render_eval_script(spec(job, node_argv, name)), output, submit, log_root, name,
          f"its log will be {log_root}/<job id>/eval.log")  # fmt: skip


def _emit(script: str, output: Path | None, submit: bool, log_root: Path, name: str, logs: str) -> None:
    """Print the script, write it (-o), or write it beside the logs and submit it."""
    sbatch = _sbatch() if submit else None
    if output is None and not submit:
        typer.echo(script, nl=False)
        return
    target = output or _new_script_path(log_root, name)
    atomic_write_text(target, script)
    say(f"script written to {target}")
    if sbatch is None:
        return
    say(f"submitting; {logs}")
    sys.stdout.flush()
    try:
        status = subproc.run_inherited(build_sbatch_argv(sbatch, target))
    except OSError as exc:
        raise LaunchError(f"cannot run {sbatch}: {exc.strerror or exc}; the script is kept at {target}") from None
    if status:
        raise LaunchError(f"sbatch exited with status {status}; the script is kept at {target}")


def _chain(script: str | None, log_root: Path, name: str, evals: list[tuple[Path, str]], after: str | None,
           submit: bool) -> None:  # fmt: skip
    """The training job (`script`; None: none) and one eval job per run, each eval job waiting for the training job
    (`after`) when there is one."""
    from oda_sft.cluster.evaljob import dependent_argv

    sbatch = _sbatch() if submit else None
    target = None
    if script is not None:
        target = _new_script_path(log_root, name)
        atomic_write_text(target, script)
    eval_targets = []
    for run_dir, text in evals:
        eval_target = _new_script_path(run_dir / LOGS_DIR, f"oda-sft-eval-{run_dir.parent.name}-{run_dir.name}")
        atomic_write_text(eval_target, text)
        eval_targets.append(eval_target)
    say(f"scripts written: {f'training {target}; ' if target else ''}eval {', '.join(map(str, eval_targets))}")
    if sbatch is None:
        command = shell_join(["oda-sft", "slurm", "--submit", *_command()[1:]]) if _called_as_slurm() else None
        waits = f" (each eval job with --dependency={after}:<training job id>, holding no GPU while it waits)"
        say(f"to submit them{waits if after else ''}"
            f"{f': `{command}`' if command else ', run this command again with --submit'}")  # fmt: skip
        return
    train_id = None
    if target is not None:
        train_id = _submit(build_sbatch_argv(sbatch, target), target)
        typer.echo(train_id)
        say(f"training job {train_id}: node logs in {log_root}/{train_id}/")
    for eval_target in eval_targets:
        if train_id is not None and after is not None:
            eval_id = _submit(dependent_argv(sbatch, eval_target, after, train_id), eval_target)
        else:
            eval_id = _submit(build_sbatch_argv(sbatch, eval_target), eval_target)
        typer.echo(eval_id)
        waits = f", after {after}:{train_id}" if train_id is not None else ""
        say(f"eval job {eval_id} ({eval_target.parent.parent.name}){waits}; its log will be "
            f"{eval_target.parent}/{eval_id}/eval.log")  # fmt: skip


def _submit(argv: list[str], target: Path) -> str:
    from oda_sft.cluster.evaljob import job_id_of

    done = run_sbatch(argv)
    if done is None:
        raise LaunchError(f"cannot run {argv[0]} (or it hung for {SBATCH_TIMEOUT_S} s); the script is kept at {target}")
    if done.returncode:
        why = (done.stderr.strip().splitlines() or [""])[-1]
        raise LaunchError(f"sbatch exited with status {done.returncode} ({why}); the script is kept at {target}")
    return job_id_of(done.stdout, target)


def run_sbatch(argv: list[str]) -> subproc.Captured | None:
    """The one place sbatch runs with its output read (the tests' seam; the real one in tests/integration)."""
    return subproc.capture(argv, timeout_s=SBATCH_TIMEOUT_S)


def _sbatch() -> str:
    sbatch = shutil.which("sbatch")
    if sbatch is None:
        raise UsageError("sbatch is not on PATH: run --submit on a Slurm login node, or write the script with -o")
    return sbatch


def _command() -> tuple[str, ...]:
    return ("slurm", *(sys.argv[2:] if _called_as_slurm() else []))


def _without_fetch(args: tuple[str, ...]) -> tuple[str, ...]:
    """The node arguments: --fetch ran here, once, before the job was written; no node fetches."""
    cut = args.index("--") if "--" in args else len(args)
    return tuple(a for a in args[:cut] if a != "--fetch") + args[cut:]


def _new_script_path(log_root: Path, name: str) -> Path:
    """A script name nobody has taken: two submissions in the same second get -2, -3, ... (the name is
    claimed with O_EXCL, so two oda-sft processes never write the same file)."""
    log_root.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    for n in itertools.count(1):
        candidate = log_root / f"{name}-{stamp}{'' if n == 1 else f'-{n}'}.sbatch"
        try:
            os.close(os.open(candidate, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644))
        except FileExistsError:
            continue
        return candidate
    raise AssertionError("unreachable")


def _called_as_slurm() -> bool:
    # The header records the real command line when there is one (not under a test runner).
    return len(sys.argv) > 1 and sys.argv[1] == "slurm"
