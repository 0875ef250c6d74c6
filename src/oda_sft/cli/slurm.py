"""`oda-sft slurm`: an sbatch script that runs train (or sweep) on every node; printed, written or submitted."""

from __future__ import annotations

import itertools
import os
import shutil
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer

from oda_sft.cli.workload import parse_workload
from oda_sft.cluster.slurm import (
    DEFAULT_TERM_BEFORE,
    JobSpec,
    SlurmOptions,
    check_user_args,
    default_job_name,
    oda_sft_executable,
    render_script,
)
from oda_sft.cluster.slurm import sbatch_argv as build_sbatch_argv
from oda_sft.errors import LaunchError, UsageError
from oda_sft.util import subproc
from oda_sft.util.console import say
from oda_sft.util.fs import atomic_write_text

ALLOC = "Allocation (sbatch)"
LOGS_DIR = "slurm-logs"


def slurm(
    nodes: Annotated[int, typer.Option("--nodes", "-N", help="Number of nodes.", rich_help_panel=ALLOC)],
    gpus_per_node: Annotated[
        int, typer.Option(help="GPUs per node; 0 runs on the CPU (tiny model only).", rich_help_panel=ALLOC)
    ],
    workload: Annotated[
        list[str] | None,
        typer.Argument(help="`train` or `sweep` and its arguments, after `--`.", show_default=False),
    ] = None,
    partition: Annotated[str | None, typer.Option(help="Partition.", rich_help_panel=ALLOC)] = None,
    time: Annotated[str | None, typer.Option(help="Time limit, e.g. 2-00:00:00.", rich_help_panel=ALLOC)] = None,
    account: Annotated[str | None, typer.Option(help="Account to charge.", rich_help_panel=ALLOC)] = None,
    qos: Annotated[str | None, typer.Option(help="Quality of service.", rich_help_panel=ALLOC)] = None,
    constraint: Annotated[str | None, typer.Option(help="Node features, e.g. a100.", rich_help_panel=ALLOC)] = None,
    exclusive: Annotated[bool, typer.Option(help="Whole nodes only.", rich_help_panel=ALLOC)] = False,
    job_name: Annotated[
        str | None, typer.Option(help="Job name [default: oda-sft-MODEL-DATASET].", rich_help_panel=ALLOC)
    ] = None,
    cpus_per_task: Annotated[
        int | None, typer.Option(help="CPUs per node (one task per node).", rich_help_panel=ALLOC)
    ] = None,
    mem: Annotated[str | None, typer.Option(help="Memory per node, e.g. 500G; 0 = all.", rich_help_panel=ALLOC)] = None,
    requeue: Annotated[
        bool, typer.Option(help="Let Slurm requeue the job after preemption.", rich_help_panel=ALLOC)
    ] = (False),
    term_before: Annotated[
        int, typer.Option(help="Seconds before the time limit to send SIGTERM (0: none).", rich_help_panel=ALLOC)
    ] = DEFAULT_TERM_BEFORE,
    sbatch_option: Annotated[
        list[str] | None,
        typer.Option(help="Any other sbatch option, e.g. --reservation=big (repeatable).", rich_help_panel=ALLOC),
    ] = None,
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Write the script to this file instead of printing it.")
    ] = None,
    submit: Annotated[bool, typer.Option(help="Submit with sbatch and print the job id.")] = False,
) -> None:
    """Render an sbatch script that runs train (or sweep) on every node of a Slurm job."""
    from oda_sft.cluster.plan import plan_job, resume_note  # the planner, only when a script is made

    options = SlurmOptions(
        nodes=nodes,
        gpus_per_node=gpus_per_node,
        partition=partition,
        time=time,
        account=account,
        qos=qos,
        constraint=constraint,
        exclusive=exclusive,
        job_name=job_name,
        cpus_per_task=cpus_per_task,
        mem=mem,
        requeue=requeue,
        term_before=term_before,
        extra=tuple(sbatch_option or ()),
    )
    options.validate()  # before the workload: a bad --nodes is reported even with bad train arguments
    work = parse_workload(workload, "oda-sft slurm")
    check_user_args(work.args)
    # Every run the job would start is planned here, and an unmeasured dataset is measured here, once:
    # the nodes then read the stored decision instead of each tokenizing the data again.
    plans = plan_job(work.requests, fetch=work.run.fetch)
    for plan in plans:
        for note in plan.notes:
            say(note)
    if work.subcommand == "train":
        log_root = plans[0].output_dir / LOGS_DIR
        name = job_name or default_job_name("train", plans[0].request.model, plans[0].request.dataset)
    else:
        log_root = work.run.request.output_root.expanduser().resolve() / LOGS_DIR
        name = job_name or default_job_name(work.subcommand, None, None)
    spec = JobSpec(
        options=options,
        oda_sft=oda_sft_executable(),
        subcommand=work.subcommand,
        args=_without_fetch(work.args),
        workdir=Path.cwd(),
        log_root=log_root,
        job_name=name,
        command=("slurm", *(sys.argv[2:] if _called_as_slurm() else [])),
        resumable=work.run.request.resumable,
    )
    script = render_script(spec)
    if plans and not spec.resumable:
        say(resume_note(plans, work.subcommand))

    sbatch = shutil.which("sbatch") if submit else None
    if submit and sbatch is None:
        raise UsageError("sbatch is not on PATH: run --submit on a Slurm login node, or write the script with -o")
    if output is None and not submit:
        typer.echo(script, nl=False)
        return
    target = output or _new_script_path(log_root, name)
    atomic_write_text(target, script)
    say(f"script written to {target}")
    if sbatch is None:
        return
    say(f"submitting; node logs will be in {log_root}/<job id>/node-<N>.log")
    sys.stdout.flush()
    try:
        status = subproc.run_inherited(build_sbatch_argv(sbatch, target))
    except OSError as exc:
        raise LaunchError(f"cannot run {sbatch}: {exc.strerror or exc}; the script is kept at {target}") from None
    if status:
        raise LaunchError(f"sbatch exited with status {status}; the script is kept at {target}")


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
