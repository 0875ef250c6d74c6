"""Plan, check and run one evaluation: OpenCompass under the trainer's supervisor, recorded in the manifest.

In order: the plan (what runs, its settings and their id) and every check that writes nothing (the
OpenCompass install and its dataset configs, the engines, the judge models, the GPUs, the records of
earlier evals); then the run's lock (the same one `train` takes), under which the eval's files and its
record are written, OpenCompass runs (util/subproc.py's supervisor: nothing of it outlives oda-sft), and
the record is finished from OpenCompass's summary. Nothing here deletes: --force moves an earlier eval's
files aside. Each attempt works in an OpenCompass folder oda-sft names and records before it starts
(`-r STAMP`, render.py): an interrupted or failed eval resumes in that same folder, reusing the predictions
and results it holds, and its scores are read from that folder's summary only.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from oda_sft import tiny_model
from oda_sft.eras import CURRENT
from oda_sft.errors import LaunchError, RunStateError, UsageError
from oda_sft.eval import benchmark_data, record, render, summary
from oda_sft.eval.benchmarks import JUDGE_MODELS, Benchmark, EvalPreset
from oda_sft.eval.judges import omni, serve
from oda_sft.eval.opencompass import Install, cached_snapshot, check_configs, hf_cache_dir, scoring_problem
from oda_sft.eval.stats import questions
from oda_sft.eval.target import Target
from oda_sft.eval.template import ODA_2025, default_template, template_digest, template_for, write_model_view
from oda_sft.runs import lock, tracker
from oda_sft.runs.outdir import set_aside
from oda_sft.util import progress, signals, subproc
from oda_sft.util.clock import utc_now
from oda_sft.util.console import say
from oda_sft.util.fs import atomic_write_text
from oda_sft.util.hardware import visible_gpu_count

Action = Literal["skip", "start", "resume", "replace"]
_SIGNAL_EXITS = {signals.exit_code(s) for s in signals.STOP_SIGNALS}
# What the demo's numbers mean: the tiny preset's model starts from random weights (tiny_model.py).
TINY_NOTE = (
    "what this score means: the tiny model starts from random weights and is far too small to learn arithmetic, "
    "so it scores about 0, trained or not; the number shows that training, evaluation and scoring ran end to "
    "end, not what the recipe achieves (a real preset on a GPU shows that)"
)


@dataclass(frozen=True)
class EvalPlan:
    target: Target
    preset: EvalPreset
    suite: str
    chosen: tuple[Benchmark, ...]
    template: str
    settings: dict[str, Any]
    id: str
    judge_urls: tuple[str, ...] = ()  # Omni-MATH's judge servers (--judge-url); none: served here after inference

    @property
    def layout(self) -> render.Layout:
        return render.Layout(self.target.run_dir.absolute() / "eval" / self.id)

    def model_entry(self) -> dict[str, Any]:
        return render.model_entry(self.preset, self.target.abbr, self.layout.model_view)

    def config_text(self) -> str:
        return render.model_config_text(self.model_entry(), self.id)

    def command(self, program: Path, stamp: str) -> list[str]:
        renamed = {omni.BENCHMARK: omni.config_name(self.id)} if omni.judged(self.chosen) else None
        return render.command(program, self.preset, self.chosen, self.layout, self.id, stamp, renamed)

    def judge(self, install: Install) -> serve.Judge | None:
        """Omni-MATH's judge in this eval (None without Omni-MATH); the judge's endpoint is not a setting."""
        if not omni.judged(self.chosen):
            return None
        fork_config = next(self.preset.config(b) for b in self.chosen if b.name == omni.BENCHMARK)
        model = cached_snapshot(omni.MODEL_ID)
        return serve.Judge(self.judge_urls, omni.config_path(self.layout.config_dir, self.id), self.id,
                           omni.fork_module(install, fork_config), model or Path(omni.MODEL_ID),
                           omni.lmdeploy_program(install), self.layout.eval_dir / "omni_judge_server.log")  # fmt: skip

    def judge_note(self) -> str:
        """How Omni-MATH is judged in this eval, for --dry-run ("" without it)."""
        if not omni.judged(self.chosen):
            return ""
        if self.judge_urls:
            return f"Omni-MATH's judge: {omni.MODEL_ID} at {', '.join(self.judge_urls)}"
        return (f"Omni-MATH's judge: {omni.MODEL_ID}, served on this node once inference is done (the command "
                "runs with `-m infer`, then `-m eval`)")  # fmt: skip

    def stamp(self, action: Action) -> str:
        """The OpenCompass folder this attempt works in: a resumed eval's own (as recorded; for a record older
        than that, the newest folder OpenCompass made), else a new one."""
        old = record.find(self.target.run_dir, self.id) if action == "resume" else None
        recorded = old.get("stamp") if old is not None else None
        if isinstance(recorded, str) and render.STAMP.fullmatch(recorded):
            return recorded
        made = self.layout.stamps() if action == "resume" else []
        return made[-1] if made else render.new_stamp()


def plan(
    target: Target,
    preset: EvalPreset,
    suite: str,
    chosen: tuple[Benchmark, ...],
    template: str | None = None,
    judge_urls: tuple[str, ...] = (),
) -> EvalPlan:
    """`template`: the chat template, when the caller knows it better (a preview of a run not trained yet);
    `judge_urls`: the Omni-Judge servers --judge-url named (eval/judges/omni.py)."""
    if template is not None:
        pass
    elif target.model_dir is not None:
        template = template_for(target.model_dir, trained=not target.base, era=target.era)
    elif target.era != CURRENT:
        template = ODA_2025
    else:  # the tiny base model in a dry run, not built yet: its EOS token is known without it
        template = default_template(tiny_model.SPECIAL_TOKENS["eos_token"])
    recorded_suite = suite if [b.name for b in chosen] == [b.name for b in _suite(preset, suite)] else "custom"
    settings = render.settings_of(preset, recorded_suite, chosen, template_digest(template), target.era)
    urls = tuple(omni.check_url(u) for u in judge_urls)
    if urls and not omni.judged(chosen):
        raise UsageError("--judge-url is Omni-MATH's judge, and omni_math is not among these benchmarks: leave it out")
    return EvalPlan(target, preset, recorded_suite, chosen, template, settings, render.settings_id(settings), urls)


def _suite(preset: EvalPreset, suite: str) -> tuple[Benchmark, ...]:
    return preset.suite(suite)


def check(plan: EvalPlan, install: Install) -> None:
    """What would stop OpenCompass after it started: each a one-line refusal, before anything is written."""
    check_install(plan.preset, plan.chosen, install, plan.layout.work_dir)
    preset = plan.preset
    have = visible_gpu_count()
    if preset.num_gpus > have:
        raise UsageError(f"the {preset.name} evaluation runs on {preset.num_gpus} GPU(s) and this node has {have} "
                         "visible: run it on a GPU node")  # fmt: skip
    if omni.judged(plan.chosen):
        omni.check(plan.judge_urls, have, omni.lmdeploy_program(install))


def check_install(
    preset: EvalPreset, chosen: tuple[Benchmark, ...], install: Install, work_dir: Path | None = None
) -> None:
    """The checks that hold on any node sharing the OpenCompass environment and the Hugging Face cache (a Slurm
    login node too): the dataset configs, the engines, the judge models, the benchmark data."""
    check_configs(install, [preset.config(b) for b in chosen if not b.custom])
    needs = {"transformers", "torch"} if not preset.accelerator else {preset.accelerator}
    judges = sorted({preset.judge(b) for b in chosen} & set(JUDGE_MODELS))
    if judges and preset.judged:
        needs.add("lmdeploy")  # the fork's judge model configs run on LMDeploy (TurboMind)
    missing = sorted(needs - install.engines)
    if missing:
        command = shlex.join([str(install.python), "-m", "pip", "install", *missing])
        raise UsageError(f"the OpenCompass environment of {install.program} has no {', '.join(missing)}: install "
                         f"it there (`{command}`)")  # fmt: skip
    if omni.judged(chosen) and not install.lmdeploy_client:
        raise UsageError(omni.client_missing(install))
    scoring = scoring_problem(install, (b.name for b in chosen))
    if scoring:
        raise UsageError(scoring)
    absent = [JUDGE_MODELS[j] for j in judges if cached_snapshot(JUDGE_MODELS[j]) is None]
    if absent:
        raise UsageError(f"judge model {', '.join(absent)} is not in the Hugging Face cache ({hf_cache_dir()}): "
                         f"`huggingface-cli download {absent[0]}` fetches it")  # fmt: skip
    benchmark_data.check(install.package, preset, chosen, work_dir, install.program)


def decide(plan: EvalPlan, force: bool, rerun: str) -> Action:
    """What to do given the run's earlier evals; raises when other settings were evaluated (without --force)."""
    run_dir = plan.target.run_dir
    same = record.find(run_dir, plan.id)
    others = [r for r in record.evals(run_dir) if r.get("id") != plan.id]
    if same is not None and same.get("status") == "finished":
        return "replace" if force else "skip"
    if others and not force:
        ids = ", ".join(f"{r.get('id')} ({(r.get('settings') or {}).get('suite', '?')}, {r.get('status')})"
                        for r in others)  # fmt: skip
        raise RunStateError(f"{run_dir} was evaluated with other settings ({ids}): add --force to evaluate it with "
                            f"these too, keeping those (`{rerun} --force`)")  # fmt: skip
    return "resume" if same is not None else "start"


def run(plan: EvalPlan, install: Install, force: bool, rerun: str) -> int:
    """Carry out the plan; returns the exit status oda-sft exits with."""
    run_dir = plan.target.run_dir
    lock.refuse_if_busy(run_dir, role="eval")
    decide(plan, force, rerun)
    with lock.acquire(run_dir, role="eval") as run_lock:
        action = decide(plan, force, rerun)  # again, now that no other oda-sft can change it
        if action == "skip":
            done = record.find(run_dir, plan.id) or {}
            say(
                f"skipped: {run_dir} was already evaluated with these settings ({plan.id}): {describe_scores(done)}. "
                f"To evaluate it again (the old files are moved aside): `{rerun} --force`"
            )
            return 0
        layout = plan.layout
        stamp = plan.stamp(action)
        judge = plan.judge(install)  # before anything is written: it may refuse
        with signals.critical():
            moved = None
            if action == "replace" and layout.eval_dir.exists():
                moved = set_aside(layout.eval_dir)
                say(f"--force: moved the earlier eval to {moved}")
            if plan.target.base:
                record.ensure_base_manifest(run_dir, plan.target.preset.name, str(plan.target.model_dir))
            assert plan.target.model_dir is not None
            write_model_view(plan.target.model_dir, layout.model_view, plan.template)
            atomic_write_text(layout.model_config(plan.id), plan.config_text())
            if judge is not None:
                judge.write(judge.urls)
            rec = record.new_record(plan.id, plan.settings, install.record(), layout.work_dir, stamp)
            rec.update(omni.record_fields(plan.judge_urls) if judge is not None else {})
            record.put(run_dir, rec, replace_old=action == "replace", moved=(layout.eval_dir, moved))
        argv = plan.command(install.program, stamp)
        if action == "resume":
            say(f"resuming the eval in {layout.work_dir / stamp}: OpenCompass reuses what it finished (-r {stamp})")
        say(f"config kept at {layout.model_config(plan.id)}")
        say(f"command: {shlex.join(argv)}")
        signalled: list[int] = []
        try:
            # In its work dir: OpenCompass writes a .cache/ into the directory it runs in.
            layout.work_dir.mkdir(parents=True, exist_ok=True)
            benchmark_data.link_cwd_data(plan.preset, plan.chosen, layout.work_dir)  # CaLM's ./data/calm
            attempt = layout.work_dir / stamp
            output = progress.Session.open(
                layout.eval_dir / "logs", "opencompass", lambda: summary.progress(attempt), "OpenCompass"
            )
            say(output.announce())
            watch = subproc.Watch(
                signalled.append, run_lock.pass_fds(), run_lock.record_supervisor, "OpenCompass", layout.work_dir
            )
            status = serve.run_opencompass(argv, output.watch(watch), judge, signalled)
            output.ended(status)
        except OSError as exc:
            _end(run_dir, rec, "failed")
            raise LaunchError(f"cannot start {argv[0]}: {exc.strerror or exc}: check --opencompass") from None
        except BaseException:
            asked = signals.received()
            _end(run_dir, rec, "interrupted" if asked is not None else "failed")
            raise
        return _finish(plan, rec, status, signalled, rerun)


def _end(run_dir: Path, rec: dict[str, Any], status: str, **results: Any) -> dict[str, Any]:
    with signals.critical():
        return record.put(run_dir, {**rec, **results, "status": status, "ended_at": utc_now()})


def _finish(plan: EvalPlan, rec: dict[str, Any], status: int, signalled: list[int], rerun: str) -> int:
    run_dir = plan.target.run_dir
    if signalled or status in _SIGNAL_EXITS:
        _end(run_dir, rec, "interrupted")
        say(f"interrupted: {plan.layout.eval_dir} is kept; `{rerun}` resumes it (OpenCompass reuses what it finished)")
        return signals.exit_code(signalled[0]) if signalled else status
    found = _summary_of(plan.layout.work_dir / rec["stamp"])
    results: dict[str, Any] = {}
    if found is not None:
        values = summary.scores(summary.read_rows(found), plan.target.abbr, plan.chosen)
        results = {"scores": values, **summary.record_fields(values, plan.chosen), "summary_csv": str(found)}
        results.update(_keep_questions(plan, found, values))
    missing = [b.name for b in plan.chosen if b.name not in results.get("scores", {})]
    if status != 0 or missing:
        done = _end(run_dir, rec, "failed", **results, missing=missing)
        why = f"OpenCompass exited with status {status}" if status else f"no score for {', '.join(missing)}"
        say(f"failed: {why}; its logs are under {plan.layout.work_dir}; `{rerun}` retries what is missing. "
            f"{describe_scores(done)}")  # fmt: skip
        return status or 1
    done = _end(run_dir, rec, "finished", **results)
    say(f"finished: {describe_scores(done)}; recorded in {record.manifest_path(run_dir)}")
    if plan.target.preset.embedded:
        say(TINY_NOTE)
    tracker.log_eval(run_dir, done)  # the training's tracker run, when it has one, gets the scores too
    cut = questions.cut_warning(done)
    if cut is not None:
        say(f"warning: {cut}")
    return 0


def _summary_of(attempt: Path) -> Path | None:
    """The newest summary OpenCompass wrote in this attempt's folder (each resume adds summary_<its time>.csv),
    never one of another folder's."""
    found = sorted(attempt.glob("summary/summary_*.csv"))
    return found[-1] if found else None


def _keep_questions(plan: EvalPlan, found: Path, values: dict[str, float]) -> dict[str, Any]:
    """Each question's result and each answer's length (eval/stats/questions.py), beside the scores."""
    try:
        return questions.keep(plan.layout.eval_dir, found, plan.target.abbr, plan.chosen, values,
                              plan.preset.max_out_len, plan.layout.model_view)  # fmt: skip
    except Exception as exc:  # the scores stand without it; `rank` then tests from question counts
        say(f"warning: the per-question results were not kept ({type(exc).__name__}: {exc}); `oda-sft rank` "
            "separates this run's rows by question counts only")  # fmt: skip
        return {"per_question": None}


def describe_scores(rec: dict[str, Any]) -> str:
    values = rec.get("scores") or {}
    if not values:
        return "no scores"
    parts = [f"{name} {value:.2f}" for name, value in values.items()]
    if rec.get("overall") is not None:
        parts.append(f"overall {rec['overall']:.2f}")
    return ", ".join(parts)
