"""Turn a rendered config into the llamafactory-cli command, and run it.

`build_command` is pure; `run` starts the trainer, through the subprocess seam in subproc.py. `Output` is
what the person sees meanwhile: the trainer's output goes to a log in the run dir, the terminal gets a
progress line from trainer_log.jsonl, the log's tail if the trainer fails, and a summary at the end
(--verbose: the trainer's own output streams through instead of the progress line).
"""

from __future__ import annotations

import os
import shlex
import shutil
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

from oda_sft.data.tokenized_cache import count_tokens
from oda_sft.eras import CURRENT, ERAS, RecipeEra
from oda_sft.errors import LaunchError, UsageError
from oda_sft.runs import trainer_log
from oda_sft.train import patches as trainer_patches
from oda_sft.train.advice import program
from oda_sft.train.request import LaunchOptions
from oda_sft.util import progress, subproc
from oda_sft.util.paths import install_command


def launcher_path() -> str:
    """llamafactory-cli from this interpreter's environment, so an unactivated venv works."""
    beside = Path(sys.executable).parent / "llamafactory-cli"
    if beside.is_file():
        return str(beside)
    found = shutil.which("llamafactory-cli")
    return found or str(beside)


def require_launcher() -> None:
    """Fail before anything is written when llamafactory-cli is not installed beside oda-sft."""
    launcher = Path(launcher_path())
    if not (launcher.is_file() and os.access(launcher, os.X_OK)):
        raise LaunchError(
            f"{launcher} is missing: install LLaMA-Factory in oda-sft's environment "
            f"(`{install_command('llamafactory')}`), or run the oda-sft of the venv that has it"
        )


def patches_for(resumable: bool, era: RecipeEra = CURRENT) -> tuple[str, ...]:
    """The trainer-side corrections (train/patches/) a run needs: exact resumes need resume_epoch, and
    checkpoint_stamp writes into each checkpoint the data and config it was trained on (runs/stamp.py); an era
    other than the current one needs its own (oda_sft/eras.py)."""
    return (*ERAS[era].patches, *(("resume_epoch", "checkpoint_stamp") if resumable else ()))


def check_patches(names: Sequence[str]) -> None:
    """Refuse, before anything is written, to launch with a patch on versions it was not written for."""
    for name in names:
        mismatch = trainer_patches.version_mismatch(name)
        if mismatch is not None:
            raise LaunchError(f"{mismatch}: {trainer_patches.fix_hint(name)}")


def shown_env(env: Mapping[str, str]) -> dict[str, str]:
    """The launcher's environment as shown and recorded: only oda-sft's own prefix of PATH and
    PYTHONPATH, not the caller's."""
    shown = dict(env)
    for key in ("PATH", "PYTHONPATH"):
        if key in shown and os.pathsep in shown[key]:
            shown[key] = shown[key].split(os.pathsep, 1)[0] + os.pathsep + "$" + key
    return shown


def build_command(
    config_path: Path,
    options: LaunchOptions,
    gpu_count: int,
    base_path: str | None = None,
    deepspeed: bool = False,
    patches: Sequence[str] = (),
    base_pythonpath: str | None = None,
) -> tuple[list[str], dict[str, str]]:
    """(argv, environment changes) for `llamafactory-cli train <config>`.

    The environment changes are what oda-sft adds to its own environment; they are
    shown by --dry-run and recorded, so only launcher settings belong here. `patches` names the
    trainer-side corrections to enable (train/patches/): every process of the trainer then loads them.
    """
    argv = [launcher_path(), "train", str(config_path)]
    # torchrun and llamafactory-cli must come from oda-sft's own environment, even when
    # oda-sft is called by absolute path from a script that never activated the venv.
    bin_dir = str(Path(sys.executable).parent)
    current = os.environ.get("PATH", "") if base_path is None else base_path
    env: dict[str, str] = {}
    if bin_dir not in current.split(os.pathsep):
        env["PATH"] = os.pathsep.join(p for p in (bin_dir, current) if p)
    pythonpath = os.environ.get("PYTHONPATH") if base_pythonpath is None else base_pythonpath
    env.update(trainer_patches.launch_env(patches, pythonpath))
    if options.uses_torchrun(gpu_count, deepspeed):
        if any(c.isspace() for c in str(config_path)):
            # LLaMA-Factory joins and re-splits the torchrun arguments on spaces.
            raise UsageError(
                f"config path {config_path} contains whitespace, which LLaMA-Factory's torchrun "
                "launcher cannot pass: choose an --output-root without spaces"
            )
        env["FORCE_TORCHRUN"] = "1"
        env["NNODES"] = str(options.nnodes)
        env["NODE_RANK"] = str(options.node_rank)
        # With no GPU, LLaMA-Factory would ask torchrun for 0 processes per node.
        nproc = options.nproc_per_node or (gpu_count if gpu_count > 0 else 1)
        env["NPROC_PER_NODE"] = str(nproc)
        if options.master_addr:
            env["MASTER_ADDR"] = options.master_addr
        if options.master_port is not None:
            env["MASTER_PORT"] = str(options.master_port)
        elif options.nnodes > 1:
            # Every node must agree on the port; LLaMA-Factory would pick a random free one per node.
            env["MASTER_PORT"] = "29500"
        if gpu_count == 0:
            # CPU ranks: accelerate names each rank's device "cpu:0", and torch.load cannot map a resumed
            # run's optimizer state onto "cpu:0" (only "cpu"). accelerate's own variable fixes the name.
            env["ACCELERATE_TORCH_DEVICE"] = "cpu"
    return argv, env


def run(
    argv: list[str],
    env_changes: Mapping[str, str],
    watch: subproc.Watch = subproc.UNWATCHED,
    output: Output | None = None,
) -> int:
    """Run the trainer under its supervisor (util/subproc.run_streaming): its output goes to `output`'s log
    (without one, or with --verbose, it streams through), INT/TERM/HUP reach it, nothing of it outlives oda-sft,
    and its exit status (128+N for signal N) is returned; a launcher that cannot start is one line naming the fix."""
    try:
        if output is None:
            return subproc.run_streaming(argv, env_changes, watch)
        status = subproc.run_streaming(argv, env_changes, output.session.watch(watch))
        output.session.ended(status)
        return status
    except OSError as exc:
        raise LaunchError(
            f"cannot start {argv[0]}: {exc.strerror}: install LLaMA-Factory in this environment "
            f"(`{install_command('llamafactory')}`) or activate the venv that has it"
        ) from None


class Output:
    """The trainer's output, in a log named before it starts (`<run>/logs/train-<attempt>.log`, per node
    rank beyond 0), and the terminal's progress line from trainer_log.jsonl (none with --verbose)."""

    def __init__(self, run_dir: Path, node_rank: int, tokens_at: Path | None = None) -> None:
        self.run_dir = run_dir
        self.tokens_at = tokens_at  # the tokenized data, counted once for tokens/s (None: not shown)
        self.tokens: list[int | None] = []
        tag = f".node-{node_rank}" if node_rank else ""
        self.session = progress.Session.open(run_dir / "logs", "train", self.progress, "the trainer", tag)
        self.log = self.session.log

    def progress(self) -> str | None:
        rows = trainer_log.read(self.run_dir / trainer_log.LOG_NAME)
        if not rows:
            return "preparing: loading the data and the model"
        if not self.tokens:  # counted once, after LLaMA-Factory has written the tokenized data
            self.tokens.append(count_tokens(self.tokens_at) if self.tokens_at is not None else None)
        return trainer_log.progress(rows, self.tokens[0])

    def summary(self) -> list[str]:
        """What the person reads last: how it went, where it is, what to run next."""
        loss = trainer_log.final_loss(trainer_log.read(self.run_dir / trainer_log.LOG_NAME))
        line = self.session.line
        took = f" in {progress.duration(line.elapsed())}" if line is not None else ""
        said = f", final loss {loss:.4f}" if loss is not None else ""
        evaluate = shlex.join([program(), "eval", "--run", str(self.run_dir.absolute())])
        return [f"finished{took}{said}: the run is in {self.run_dir} (the trainer's output: {self.log})",
                f"next, evaluate it: `{evaluate}`"]  # fmt: skip
