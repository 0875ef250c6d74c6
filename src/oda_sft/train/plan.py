"""From what the user asked for to everything a run needs, checked before anything starts.

`plan_train` reads and decides; it writes nothing of the user's. What it reads: the registry and
the data file (hashed through oda-sft's own sha256 cache in ~/.cache/oda-sft, which it may
refresh), the templates, and for --profile fast the GPUs' free memory (nvidia-smi).

`settle_mode` is the one planning step that writes: when --mode auto can only be answered by
measuring the data, it measures it once, stores the analysis in the dataset's dataset_info.json
entry (so every later run, sweep cell, Slurm node and preflight reads the answer instead of
tokenizing again), and plans with it. Measuring loads the preset's tokenizer, which may build the
tiny model or download the base model's tokenizer.json.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from functools import cached_property
from pathlib import Path
from typing import Any

from oda_sft import tiny_model
from oda_sft.data.measure.length_rule import Rule
from oda_sft.data.measure.token_counter import tokenizer_ident
from oda_sft.data.registry.dataset_dir import DatasetDir, ResolvedDataset, builtin_names
from oda_sft.datasets_catalog import DATASETS
from oda_sft.datasets_catalog.advice import add_command, fetchable
from oda_sft.eras import UNSUPPORTED_2025
from oda_sft.errors import DatasetError, OdaSftError, UsageError
from oda_sft.names import check_name, suggest
from oda_sft.presets import PRESETS, ModelPreset, preset_names
from oda_sft.runs import tracker
from oda_sft.runs.outdir import CONFIG_NAME, continued_output_dir
from oda_sft.train.mode import ModeDecision, decide_mode
from oda_sft.train.overrides import template_tokens
from oda_sft.train.profile import apply_profile, known_sample_count
from oda_sft.train.render import RenderSpec, make_resumable, parse_overrides, render
from oda_sft.train.request import TrainRequest
from oda_sft.util.console import say
from oda_sft.util.hardware import visible_gpu_count


@dataclass(frozen=True)
class TrainPlan:
    """What a run needs, decided once. The config is rendered from these on first use, so a plan whose
    mode is settled by measuring (settle_mode) is rendered once, with the mode it will train in."""

    request: TrainRequest
    preset: ModelPreset
    dataset: ResolvedDataset
    decision: ModeDecision
    overrides: dict[str, Any]  # the request's `-- key=value` overrides, parsed and checked
    gpu_count: int
    planning_notes: tuple[str, ...] = ()  # what resolving the request found (before rendering)
    checked: bool = False  # train/run.prepare_launch has checked that it can start

    @cached_property
    def _rendered(self) -> tuple[dict[str, Any], list[str]]:
        return _render(self)

    @property
    def config(self) -> dict[str, Any]:
        return self._rendered[0]

    @property
    def notes(self) -> list[str]:
        return self._rendered[1]

    @property
    def output_dir(self) -> Path:
        return Path(self.config["output_dir"])

    @property
    def config_path(self) -> Path:
        return self.output_dir / CONFIG_NAME

    @property
    def needs_tiny_model(self) -> bool:
        return self.preset.embedded and self.request.model_path is None


def resolve_preset(name: str) -> ModelPreset:
    preset = PRESETS.get(name)
    if preset is None:
        raise UsageError(f"unknown model {name!r}{suggest(name, PRESETS)}: use one of {preset_names()}")
    return preset


def check_request(request: TrainRequest) -> tuple[ModelPreset, dict[str, Any]]:
    """What can be checked without the dataset: the preset and the overrides, parsed."""
    preset = resolve_preset(request.model)
    check_name("dataset", request.dataset)
    if not 0 <= request.seed < 2**32:
        raise UsageError(f"--seed {request.seed} must be an integer from 0 to 4294967295 (numpy's seed range)")
    overrides = parse_overrides(request.overrides)
    if preset.embedded and request.model_path is None:
        _check_tiny_template(overrides)
    if request.recipe == "2025" and preset.name in UNSUPPORTED_2025:
        raise UsageError(f"--recipe 2025 cannot train --model {preset.name}: {UNSUPPORTED_2025[preset.name]}; "
                         f"train it with --recipe 2026")  # fmt: skip
    request.launch.validate()
    if request.save_steps is not None and (not request.resumable or request.save_steps < 1):
        raise UsageError("--save-steps N needs --resumable and N >= 1: e.g. --resumable --save-steps 500")
    if request.report_to is not None:
        if "report_to" in overrides:
            raise UsageError("--report-to and the override report_to= both name a tracker: keep --report-to")
        tracker.require(request.report_to)
    if request.model_path is not None and not request.model_path.expanduser().exists():
        raise UsageError(f"--model-path {request.model_path} does not exist: give a local model directory")
    return preset, overrides


def _check_tiny_template(overrides: dict[str, Any]) -> None:
    """The tiny model's tokenizer has only its own special tokens: a template whose stop words it lacks
    makes LLaMA-Factory add them past the embedding's last row, and training ends in an IndexError."""
    template = overrides.get("template")
    if not isinstance(template, str) or overrides.get("resize_vocab") is True:
        return
    lacking = [t for t in template_tokens(template) if t not in tiny_model.SPECIAL_TOKENS.values()]
    if lacking:
        raise UsageError(
            f"override template={template} needs the special token(s) {', '.join(lacking)}, which the tiny model's "
            f"tokenizer lacks: LLaMA-Factory would add them past its {tiny_model.VOCAB_SIZE}-row embedding and "
            "training would fail; use template=default (the recipe's), or add resize_vocab=true to grow the embedding"
        )


def plan_train(request: TrainRequest, decided: ModeDecision | None = None) -> TrainPlan:
    """Validate everything and render the config (see the module docstring for what it reads).

    `decided` reuses a decision already made for this dataset (a sweep decides once per dataset)."""
    preset, overrides = check_request(request)
    datasets = DatasetDir.load(request.dataset_dir)
    dataset = datasets.resolve(request.dataset)
    notes: list[str] = []
    if not dataset.registered:
        if not fetchable(request.dataset):
            known = sorted(set(DATASETS) | set(datasets.names()) | set(builtin_names()))
            raise DatasetError(
                f"unknown dataset {request.dataset!r}{suggest(request.dataset, known)}: register it in "
                f"{dataset.info_path} with `{add_command(request.dataset, request.dataset_dir)}` "
                "(`oda-sft list-datasets` shows what is known)"
            )
        # A catalog dataset or an ODA subset: `data add` fetches it by name (a dry run shows the plan).
        source = dataset.catalog.hf_id if dataset.catalog else "ODA's release"
        notes.append(
            f"warning: {request.dataset} is not registered in {dataset.info_path}; training needs it there: "
            f"`{add_command(request.dataset, request.dataset_dir)}` fetches and converts it (source: {source}), "
            "or pass --fetch"
        )
    decision = decided or decide_mode(
        request.mode,
        preset,
        dataset,
        tokenizer_ident(preset, request.model_path, request.recipe),
        Rule.parse().as_json(),
        request.recipe,
    )
    return TrainPlan(request, preset, dataset, decision, overrides, visible_gpu_count(), tuple(notes))


def _render(plan: TrainPlan) -> tuple[dict[str, Any], list[str]]:
    """The config and the notes that explain it (TrainPlan.config renders through this once)."""
    request, preset, dataset, decision = plan.request, plan.preset, plan.dataset, plan.decision
    overrides, gpu_count = plan.overrides, plan.gpu_count
    notes = [*plan.planning_notes, *decision.notes]
    cpu_fallback = preset.embedded and gpu_count == 0
    if request.model_path is not None:
        model_path = str(request.model_path.expanduser().resolve())
    elif preset.embedded:
        model_path = str(tiny_model.model_dir())
    else:
        model_path = preset.base_model

    config = render(
        RenderSpec(
            preset=preset,
            mode=decision.mode,
            dataset=request.dataset,
            seed=request.seed,
            dataset_dir=dataset.dir,
            output_root=request.output_root.expanduser().resolve(),
            model_path=model_path,
            cpu_fallback=cpu_fallback,
            overrides=overrides,
            era=request.recipe,
        )
    )
    if request.model_path is not None:
        continued = continued_output_dir(Path(config["output_dir"]), request.model_path.expanduser())
        if str(continued) != config["output_dir"]:
            notes.append(
                f"--model-path is inside this run's own output dir: the new run trains from those weights "
                f"into {continued}, and the run it came from stays as it is"
            )
            config["output_dir"] = str(continued)
    notes.append(f"mode: {decision.mode} ({decision.reason})")
    if decision.warning:
        notes.append(f"warning: {decision.warning}")
    if cpu_fallback:
        notes.append("no GPU visible: tiny runs on the CPU with bf16, DeepSpeed and liger kernels off")
    if overrides:
        notes.append("overrides (not the recipe): " + ", ".join(f"{k}={v!r}" for k, v in overrides.items()))
    profiled = apply_profile(
        request.profile,
        config,
        preset=preset,
        gpu_count=gpu_count,
        launch=request.launch,
        user_keys=frozenset(overrides),
        cpu_run=cpu_fallback,
        samples=known_sample_count(dataset.meta, dataset.sha256),
    )
    config = profiled.config
    notes.extend(profiled.notes)
    if request.report_to is not None:
        name = tracker.run_name(preset.name, request.dataset, request.seed)
        config.update(tracker.settings(request.report_to, name, Path(config["output_dir"])))
        notes.append(f"tracker: {request.report_to}, run {name}")
    elif "report_to" not in config:
        # transformers 4.x reads a missing report_to as "all": every tracker installed beside it (tensorboard,
        # wandb, mlflow...) would log, or fail to start (mlflow without a tracking store stopped the trainer).
        config["report_to"] = "none"
    if request.resumable:
        config = make_resumable(config, request.save_steps)
        notes.append(
            f"resumable: full checkpoints (optimizer, scheduler, RNG) every {config['save_steps']} steps, "
            f"newest {config['save_total_limit']} kept; the training math is unchanged"
        )
    return config, notes


def settle_mode(plan: TrainPlan) -> TrainPlan:
    """The plan with its mode measured, when --mode auto needs that; see the module docstring."""
    if not plan.decision.needs_measurement:
        return plan
    # Imported here: measuring needs the tokenizers library; planning alone must stay light.
    from oda_sft.data.measure.token_counter import LengthCounter
    from oda_sft.data.registry import analysis

    preset, request, dataset = plan.preset, plan.request, plan.dataset
    rule = Rule.parse()
    say(f"measuring {dataset.name} with the {preset.name} tokenizer to decide standard or long-CoT (once)")
    try:
        counter = LengthCounter.load(preset, request.model_path, request.recipe)
    except OdaSftError as exc:
        raise type(exc)(
            f"cannot measure {dataset.name} to decide --mode auto: {exc}; or pass --mode standard or --mode long"
        ) from None
    report = analysis.measure(dataset, counter, rule)
    stored = "stored in dataset_info.json for later runs"
    try:
        analysis.store(dataset, report)
    except OSError as exc:  # a read-only dataset dir: the answer holds for this run; later runs measure again
        stored = f"not stored ({exc.strerror or exc}: {dataset.info_path}); later runs measure it again"
    decision = ModeDecision(
        report.mode, "measured", f"fresh analysis with the {counter.ref.label} tokenizer: {report.reason}; {stored}"
    )
    return replace(plan, decision=decision)
