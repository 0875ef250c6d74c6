"""From what the user asked for to everything a run needs, checked before anything starts."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from oda_sft import tiny
from oda_sft.catalog import DATASETS, PRESETS, ModelPreset
from oda_sft.errors import DatasetError, UsageError
from oda_sft.hardware import visible_gpu_count
from oda_sft.launch import LaunchOptions
from oda_sft.modes import ModeDecision, RequestedMode, decide_mode
from oda_sft.names import check_name, suggest
from oda_sft.outputs import CONFIG_NAME
from oda_sft.profiles import Profile, apply_profile
from oda_sft.recipe import RenderSpec, make_resumable, parse_overrides, render
from oda_sft.registry import DatasetDir


@dataclass(frozen=True)
class TrainRequest:
    model: str
    dataset: str
    seed: int = 42
    mode: RequestedMode = "auto"
    model_path: Path | None = None
    dataset_dir: Path = Path("data")
    output_root: Path = Path("saves")
    launch: LaunchOptions = field(default_factory=LaunchOptions)
    overrides: list[str] = field(default_factory=list)
    profile: Profile = "default"
    resumable: bool = False
    save_steps: int | None = None


@dataclass(frozen=True)
class TrainPlan:
    request: TrainRequest
    preset: ModelPreset
    decision: ModeDecision
    config: dict[str, Any]
    gpu_count: int
    registered: bool
    notes: list[str]

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
        raise UsageError(f"unknown model {name!r}{suggest(name, PRESETS)}: use one of {', '.join(PRESETS)}")
    return preset


def plan_train(request: TrainRequest, measure: bool = True, decided: ModeDecision | None = None) -> TrainPlan:
    """Validate everything and render the config. Reads files, writes nothing.

    measure=False (a dry run) never tokenizes to decide the mode; `decided` reuses a decision already
    made for this dataset (a sweep measures each dataset once, not once per seed)."""
    preset = resolve_preset(request.model)
    check_name("dataset", request.dataset)
    if not 0 <= request.seed < 2**32:
        raise UsageError(f"--seed {request.seed} must be an integer from 0 to 4294967295 (numpy's seed range)")
    overrides = parse_overrides(request.overrides)
    request.launch.validate()
    if request.save_steps is not None and (not request.resumable or request.save_steps < 1):
        raise UsageError("--save-steps N needs --resumable and N >= 1: e.g. --resumable --save-steps 500")
    if request.model_path is not None and not request.model_path.expanduser().exists():
        raise UsageError(f"--model-path {request.model_path} does not exist: give a local model directory")

    datasets = DatasetDir.load(request.dataset_dir)
    registered = datasets.entry(request.dataset) is not None
    notes: list[str] = []
    if not registered:
        if request.dataset not in DATASETS:
            known = sorted(set(DATASETS) | set(datasets.names()))
            raise DatasetError(
                f"unknown dataset {request.dataset!r}{suggest(request.dataset, known)}: "
                f"register it in {datasets.info_path} (`oda-sft list-datasets` shows what is known)"
            )
        notes.append(
            f"warning: {request.dataset} is in the catalog but not registered in {datasets.info_path}; "
            f"training needs it there (source: {DATASETS[request.dataset].hf_id})"
        )

    decision = decided or decide_mode(
        request.mode, preset, request.dataset, datasets, model_path=request.model_path, measure=measure
    )
    notes.extend(decision.notes)
    gpu_count = visible_gpu_count()
    cpu_fallback = preset.embedded and gpu_count == 0
    if request.model_path is not None:
        model_path = str(request.model_path.expanduser().resolve())
    elif preset.embedded:
        model_path = str(tiny.model_dir())
    else:
        model_path = preset.base_model

    config = render(
        RenderSpec(
            preset=preset,
            mode=decision.mode,
            dataset=request.dataset,
            seed=request.seed,
            dataset_dir=datasets.path,
            output_root=request.output_root.expanduser().resolve(),
            model_path=model_path,
            cpu_fallback=cpu_fallback,
            overrides=overrides,
        )
    )
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
        preset_name=preset.name,
        gpu_count=gpu_count,
        launch=request.launch,
        user_keys=frozenset(overrides),
        cpu_run=cpu_fallback,
    )
    config = profiled.config
    notes.extend(profiled.notes)
    if request.resumable:
        config = make_resumable(config, request.save_steps)
        notes.append(
            f"resumable: full checkpoints (optimizer, scheduler, RNG) every {config['save_steps']} steps, "
            f"newest {config['save_total_limit']} kept; the training math is unchanged"
        )
    return TrainPlan(request, preset, decision, config, gpu_count, registered, notes)
