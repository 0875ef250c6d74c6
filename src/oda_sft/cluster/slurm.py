"""Render a reviewable sbatch script that runs `oda-sft train` (or `sweep`) on every node of a job.

Pure functions: the command module (cli/slurm.py) parses, writes and submits. See docs/cluster.md
for why the script looks the way it does.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

from oda_sft import __version__
from oda_sft.errors import UsageError
from oda_sft.util.paths import checkout_root, doc_ref

SUBCOMMANDS = ("train", "sweep")
EVAL = "eval"
WORKLOADS = (*SUBCOMMANDS, EVAL)  # what `oda-sft slurm` runs; eval jobs are rendered by cluster/evaljob.py
# Flags the script sets itself on every node; the user must not pass them after `--`.
MULTINODE_FLAGS = ("--nnodes", "--node-rank", "--master-addr", "--master-port", "--nproc-per-node")
# MASTER_PORT = PORT_BASE + job id % PORT_SPAN: 15000-29999, below Linux's ephemeral range
# (32768+), so a port never collides with an outgoing connection, and two jobs sharing a node
# only collide when their ids differ by a multiple of 15000.
PORT_BASE = 15000
PORT_SPAN = 15000
DEFAULT_TERM_BEFORE = 300

# Slurm time formats: M, M:S, H:M:S, D-H, D-H:M, D-H:M:S, and UNLIMITED.
_TIME = re.compile(r"(\d+(:\d{1,2}){0,2}|\d+-\d+(:\d{1,2}){0,2}|UNLIMITED|unlimited|INFINITE|infinite)")
_MEM = re.compile(r"\d+[KMGT]?")
_JOB_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")
_SBATCH_OPTION = re.compile(r"--[A-Za-z][A-Za-z0-9-]*")
# What sbatch reads in an #SBATCH line without quotes (shlex's own safe set).
_SBATCH_BARE = re.compile(r"[\w@%+=:,./-]+", re.ASCII)


@dataclass(frozen=True)
class SlurmOptions:
    """What the allocation asks for. None leaves the cluster's default."""

    nodes: int
    gpus_per_node: int
    partition: str | None = None
    time: str | None = None
    account: str | None = None
    qos: str | None = None
    constraint: str | None = None
    exclusive: bool = False
    job_name: str | None = None
    cpus_per_task: int | None = None
    mem: str | None = None
    requeue: bool = False
    term_before: int = DEFAULT_TERM_BEFORE
    extra: tuple[str, ...] = ()

    def validate(self) -> None:
        if self.nodes < 1:
            raise UsageError(f"--nodes {self.nodes} must be at least 1")
        if self.gpus_per_node < 0:
            raise UsageError(f"--gpus-per-node {self.gpus_per_node} must be 0 (CPU only) or more")
        if self.cpus_per_task is not None and self.cpus_per_task < 1:
            raise UsageError(f"--cpus-per-task {self.cpus_per_task} must be at least 1")
        if self.term_before < 0:
            raise UsageError(f"--term-before {self.term_before} must be 0 or more seconds")
        if self.time is not None and not _TIME.fullmatch(self.time):
            raise UsageError(f"--time {self.time!r} is not a Slurm time: use minutes, H:M:S or D-H:M:S")
        if self.mem is not None and not _MEM.fullmatch(self.mem):
            raise UsageError(f"--mem {self.mem!r} is not a Slurm size: use e.g. 500G or 0 (all of the node's memory)")
        if self.job_name is not None and not _JOB_NAME.fullmatch(self.job_name):
            raise UsageError(f"--job-name {self.job_name!r}: use letters, digits, '.', '_' and '-'")
        for flag, value in (
            ("--partition", self.partition),
            ("--account", self.account),
            ("--qos", self.qos),
            ("--constraint", self.constraint),
        ):
            if value is not None:
                _check_line_value(flag, value)
        for item in self.extra:
            _check_line_value("--sbatch-option", item)
            name = item.split("=", 1)[0]
            if not _SBATCH_OPTION.fullmatch(name):
                raise UsageError(f"--sbatch-option {item!r} must be one long sbatch option, e.g. --reservation=big")
            if name in _RENDERED_SBATCH:
                raise UsageError(f"--sbatch-option {name} is set by oda-sft slurm: use its own flag instead")


# sbatch options the script renders itself; --sbatch-option may not repeat them.
_RENDERED_SBATCH = frozenset(
    {
        "--nodes",
        "--ntasks-per-node",
        "--gpus-per-node",
        "--signal",
        "--chdir",
        "--job-name",
        "--partition",
        "--time",
        "--account",
        "--qos",
        "--constraint",
        "--exclusive",
        "--cpus-per-task",
        "--mem",
        "--requeue",
    }
)


def _check_line_value(flag: str, value: str) -> None:
    # One #SBATCH line per value: a newline would smuggle in another line of the script, and sbatch
    # has no way to write one inside a value.
    if not value or not value.isprintable():
        raise UsageError(f"{flag} {value!r} must be one printable line")


def _check_slurm_path(path: Path, what: str, fix: str, sbatch_line: bool) -> None:
    """A path Slurm writes to by a filename pattern must hold no `%` (a pattern, e.g. %j) and no backslash
    (which turns every pattern off, node-%n.log included); one in an #SBATCH line must be one printable line."""
    text = str(path)
    if (sbatch_line and not text.isprintable()) or "%" in text or "\\" in text:
        held = "a control character, '%' or a backslash" if sbatch_line else "'%' or a backslash"
        raise UsageError(f"{what} {text!r} holds {held}, which Slurm's file names cannot carry: {fix}")


def shell_word(value: str) -> str:
    """value as one bash word that stays on its line: shlex.quote, or bash's $'...' with \\x escapes
    when it holds a newline or another character that is not printable."""
    if value.isprintable():
        return shlex.quote(value)
    out = []
    for c in value:
        if c in "\\'":
            out.append("\\" + c)
        elif c.isprintable():
            out.append(c)
        else:  # by its bytes, as the file system would have them: the same in every locale
            out.extend(f"\\x{b:02x}" for b in c.encode("utf-8", "surrogateescape"))
    return "$'" + "".join(out) + "'"


def shell_join(argv: tuple[str, ...] | list[str]) -> str:
    return " ".join(shell_word(a) for a in argv)


def _sbatch_word(value: str) -> str:
    """value as sbatch reads it back from an #SBATCH line (src/sbatch/opt.c, _get_argument): quotes
    group, and a backslash escapes the next character even inside single quotes."""
    if _SBATCH_BARE.fullmatch(value):
        return value
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


@dataclass(frozen=True)
class JobSpec:
    """Everything the script needs; every path absolute."""

    options: SlurmOptions
    oda_sft: Path  # the oda-sft executable every node runs, by absolute path
    subcommand: str  # train or sweep
    args: tuple[str, ...]  # the subcommand's own arguments, as the user gave them
    workdir: Path  # where relative paths in args were resolved: the job runs there
    log_root: Path  # node logs go to <log_root>/<job id>/node-<N>.log
    job_name: str
    command: tuple[str, ...] = ()  # `oda-sft` argv that generated the script, recorded in its header
    resumable: bool = False  # every run of the job keeps full checkpoints (--resumable)

    def validate(self) -> None:
        self.options.validate()
        if self.subcommand == "eval":  # one task on one node (cluster/evaljob.py); eval's parser took the args
            if self.options.nodes != 1:
                raise UsageError(f"--nodes {self.options.nodes}: an eval runs on one node (leave out --nodes)")
        elif self.subcommand in SUBCOMMANDS:
            check_user_args(self.args)
        else:
            raise UsageError(f"unknown subcommand {self.subcommand!r}: oda-sft slurm runs {' or '.join(WORKLOADS)}")
        for name, path in (("oda-sft", self.oda_sft), ("workdir", self.workdir), ("log dir", self.log_root)):
            if not path.is_absolute():
                raise UsageError(f"{name} path {path} must be absolute: this is a bug in oda-sft")
        _check_line_value("--job-name", self.job_name)
        fix = "run oda-sft slurm from another directory (it is the job's --chdir)"
        _check_slurm_path(self.workdir, "the current directory", fix, sbatch_line=True)
        _check_slurm_path(self.log_root, "the job's log dir", "choose another --output-root", sbatch_line=False)


def check_user_args(args: tuple[str, ...]) -> None:
    """Reject flags the script sets on every node, and --force/--dry-run, which make no sense there."""
    for arg in args:
        if arg == "--":
            break  # what follows are LLaMA-Factory key=value overrides
        name = arg.split("=", 1)[0]
        if name in MULTINODE_FLAGS:
            raise UsageError(
                f"{name} is set by the script on every node (from --nodes, --gpus-per-node, "
                "SLURM_NODEID and the job id): remove it from the arguments after `--`"
            )
        if name == "--dry-run":
            raise UsageError(
                "--dry-run after `--` would train nothing on the cluster: run `oda-sft train --dry-run` here"
            )
        if name == "--force":
            raise UsageError(
                "--force after `--` would let every node move the run directory aside, while the job's logs are "
                "being written inside it: move the earlier run aside first, or choose another --output-root"
            )


def oda_sft_executable() -> Path:
    """The oda-sft of this interpreter's environment, by absolute path: compute nodes need no activated venv."""
    # Not resolved: a venv's python is a symlink to the system interpreter, whose bin/ has no oda-sft.
    beside = Path(os.path.abspath(sys.executable)).parent / "oda-sft"
    if beside.is_file() and os.access(beside, os.X_OK):
        return beside
    found = shutil.which("oda-sft")
    if found:
        return Path(os.path.abspath(found))
    root = checkout_root()
    how = f" (`{shlex.join([sys.executable, '-m', 'pip', 'install', '-e', str(root)])}`)" if root else ""
    raise UsageError(
        f"cannot find the oda-sft executable beside {sys.executable} or on PATH: install oda-sft{how} "
        "in the environment the compute nodes will use"
    )


def guide_ref() -> str:
    """The installed docs/cluster.md, named in the script's header (a comment line: printable only)."""
    guide = doc_ref("cluster.md")
    return guide if guide.isprintable() else "docs/cluster.md"


def default_job_name(subcommand: str, model: str | None, dataset: str | None) -> str:
    if subcommand in ("train", "eval"):
        parts = ["oda-sft", "eval" if subcommand == "eval" else "", model or "", dataset or ""]
    else:
        parts = ["oda-sft", subcommand]
    name = "-".join(p for p in parts if p)
    return name[:128] if _JOB_NAME.fullmatch(name[:128]) else f"oda-sft-{subcommand}"


def sbatch_argv(sbatch: str, script: Path) -> list[str]:
    # --parsable: sbatch prints only the job id, so `JOB=$(oda-sft slurm ... --submit)` works.
    return [sbatch, "--parsable", str(script)]


def sbatch_header(spec: JobSpec) -> list[str]:
    o = spec.options
    q = _sbatch_word
    lines = [
        f"#SBATCH --job-name={q(spec.job_name)}",
        f"#SBATCH --nodes={o.nodes}",
        "#SBATCH --ntasks-per-node=1",
    ]
    if o.gpus_per_node > 0:
        lines.append(f"#SBATCH --gpus-per-node={o.gpus_per_node}")
    if o.cpus_per_task is not None:
        lines.append(f"#SBATCH --cpus-per-task={o.cpus_per_task}")
    for flag, value in (
        ("--mem", o.mem),
        ("--partition", o.partition),
        ("--time", o.time),
        ("--account", o.account),
        ("--qos", o.qos),
        ("--constraint", o.constraint),
    ):
        if value is not None:
            lines.append(f"#SBATCH {flag}={q(value)}")
    if o.exclusive:
        lines.append("#SBATCH --exclusive")
    if o.requeue:
        lines.append("#SBATCH --requeue")
    if o.term_before > 0:
        lines.append(f"#SBATCH --signal=B:TERM@{o.term_before}")
    lines.append(f"#SBATCH --chdir={q(str(spec.workdir))}")
    lines.append(f"#SBATCH --output={q(str(spec.workdir / 'slurm-%j.out'))}")
    for item in o.extra:
        name, sep, value = item.partition("=")
        lines.append(f"#SBATCH {name}{sep}{q(value)}" if sep else f"#SBATCH {name}")
    return lines


def _node_script(spec: JobSpec) -> str:
    """What each node runs (bash -c): preflight, then exec the subcommand with this node's rank.

    The user's arguments arrive as "$@", so nothing of theirs is ever re-parsed by a shell.
    """
    nproc = ' --nproc-per-node "$GPUS_PER_NODE"' if spec.options.gpus_per_node > 0 else " --nproc-per-node 1"
    return "\n".join(
        [
            "",
            "    set -u",
            "    # Node-local datasets cache: each node tokenizes into its own disk (see the comment above).",
            '    export HF_DATASETS_CACHE="${TMPDIR:-/tmp}/oda-sft-hf-datasets-$(id -u)"',
            '    # --path "$LOG_DIR": the first node created it just now; seeing it proves shared storage.',
            '    "$ODA_SFT" preflight --gpus-per-node "$GPUS_PER_NODE" --node-rank "$SLURM_NODEID" \\',
            f'        --master-addr "$MASTER_ADDR" --path "$LOG_DIR" -- {spec.subcommand} "$@" || exit $?',
            f'    exec "$ODA_SFT" {spec.subcommand} --nnodes "$NNODES" --node-rank "$SLURM_NODEID" \\',
            f'        --master-addr "$MASTER_ADDR" --master-port "$MASTER_PORT"{nproc} "$@"',
            "  ",
        ]
    )


def _resume_comment(resumable: bool) -> list[str]:
    if resumable:
        return ["#   to torchrun and the trainers; the run resumes from its last checkpoint when the job runs again."]
    return [
        "#   to torchrun and the trainers, which stop. The run is not --resumable (the recipe saves weights only,",
        "#   once per epoch): running the job again starts it over, or after its first epoch is refused.",
    ]


def gpus_text(o: SlurmOptions) -> str:
    return f"{o.gpus_per_node} GPU(s)" if o.gpus_per_node else "CPU only"


def srun_lines(o: SlurmOptions, tasks: str, log: str) -> str:
    """The script's `exec srun` line: `tasks` (its task layout), each task's output appended to $LOG_DIR/`log`."""
    srun = [f"exec srun {tasks} --kill-on-bad-exit=1"]
    if o.cpus_per_task is not None:
        # Since Slurm 22.05 srun no longer inherits --cpus-per-task from sbatch: without it, the task
        # (and LLaMA-Factory's preprocessing workers) would be confined to one CPU.
        srun.append('--cpus-per-task="$SLURM_CPUS_PER_TASK"')
    srun.append(f'--output="$LOG_DIR/{log}" --open-mode=append')
    return " \\\n  ".join(srun) + " \\"


def render_script(spec: JobSpec) -> str:
    """The sbatch script, as text a person can review and keep."""
    spec.validate()
    o = spec.options
    q = shell_word
    gpus = gpus_text(o)
    srun = srun_lines(o, '--nodes="$NNODES" --ntasks-per-node=1', "node-%n.log")
    user_args = " ".join(q(a) for a in spec.args)
    lines = [
        "#!/bin/bash",
        f"# oda-sft {__version__}: `oda-sft {spec.subcommand}` on {o.nodes} node(s), {gpus} each.",
        *([f"# Generated by: {shell_join(('oda-sft', *spec.command))}"] if spec.command else []),
        f"# Review it, keep it, and submit it with `sbatch <this file>`. {guide_ref()} explains every part.",
        *sbatch_header(spec),
        "",
        "set -euo pipefail",
        "",
        "# The oda-sft that rendered this script, by absolute path: the nodes need no activated venv,",
        "# and it finds torchrun and llamafactory-cli beside its own interpreter.",
        f"ODA_SFT={q(str(spec.oda_sft))}",
        f"NNODES={o.nodes}",
        f"GPUS_PER_NODE={o.gpus_per_node}",
        "",
        "# Rendezvous: rank 0 is the first host of the allocation. The port comes from the job id, so",
        "# two jobs sharing a node do not collide; it stays below Linux's ephemeral ports (32768+).",
        'MASTER_ADDR=$(scontrol show hostnames "$SLURM_JOB_NODELIST" | head -n 1)',
        f"MASTER_PORT=$(( {PORT_BASE} + SLURM_JOB_ID % {PORT_SPAN} ))",
        "",
        "# One log per node, kept across requeues of this job (srun appends).",
        f'LOG_DIR={q(str(spec.log_root))}/"$SLURM_JOB_ID"',
        'mkdir -p "$LOG_DIR"',
        "",
        "# Tokenization: LLaMA-Factory tokenizes on local rank 0 of each node while that node's other",
        "# ranks wait (main_process_first). Each node writes its own cache under $TMPDIR (set per node",
        "# below), so nodes never write the same cache files or take file locks on shared storage.",
        "# The tokenizers library's own threads can deadlock in the forked preprocessing workers",
        "# (preprocessing_num_workers > 1): keep it single-threaded, the workers are the parallelism.",
        "export TOKENIZERS_PARALLELISM=false",
        "export ODA_SFT NNODES GPUS_PER_NODE MASTER_ADDR MASTER_PORT LOG_DIR",
        "",
        'echo "oda-sft: job $SLURM_JOB_ID on $SLURM_JOB_NODELIST; rank 0 at $MASTER_ADDR:$MASTER_PORT;'
        ' node logs in $LOG_DIR"',
        "",
        "# One task per node. Every node runs `oda-sft preflight` and then the run itself.",
        "# --kill-on-bad-exit: when any node fails (a failed preflight included) srun ends every node at",
        "#   once, instead of leaving the others waiting for the rendezvous or NCCL timeout.",
        "# exec: srun replaces this shell, so the SIGTERM that --signal=B:TERM sends before the time limit",
        "#   (or a preemption) reaches srun, which forwards it to every node; there oda-sft passes it on",
        *_resume_comment(spec.resumable),
        srun,
        f"  bash -c '{_node_script(spec)}' oda-sft-node \\",
        f"  {user_args}",
        "",
    ]
    return "\n".join(lines)
