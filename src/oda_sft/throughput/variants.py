"""Train one benchmark variant: `raw` (the upstream recipe as upstream wrote it), an oda-sft
profile (the config `oda-sft train --profile VARIANT` renders, planned in-process), or
`fast@NODE`: the fast profile as the memory model decides it for the full-size preset on NODE
(e.g. 8xH100-80GB), applied unchanged to the benchmark's (cut-down) model. Every variant is
launched the way oda-sft launches it, so only the config (and a decision's trainer patches) differ.

The decision/speed split: one GPU cannot hold an 8B rank's run, so the decision is made for the
real run (full depth, 8 GPUs of the card), and the speed of exactly that decision is measured on
the same geometry cut to a few layers. The cut model gets no lever that only fits because it is
small; checkpointing a share of the layers maps to the same share of its layers."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

from oda_sft.cards import parse_node
from oda_sft.cost.estimate import decide_on_card
from oda_sft.runs import trainer_log
from oda_sft.runs.outdir import set_aside
from oda_sft.throughput.fixture import fixture_key
from oda_sft.throughput.metrics import RunResult, read_metrics
from oda_sft.throughput.spec import DATA_MODE, DECIDED, BenchSpec
from oda_sft.train import launcher
from oda_sft.train.patches import trainer_env
from oda_sft.train.plan import plan_train
from oda_sft.train.profile import FastDecision, apply_decision
from oda_sft.train.render import cpu_fallback, dump_yaml
from oda_sft.train.request import LaunchOptions, TrainRequest
from oda_sft.util import subproc
from oda_sft.util.fs import atomic_write_text
from oda_sft.util.paths import train_config_dir


def bench_knobs(spec: BenchSpec, data: str) -> dict[str, Any]:
    """Settings every variant gets alike, passed as ordinary `-- key=value` overrides."""
    knobs: dict[str, Any] = {
        "max_steps": spec.steps,
        "logging_steps": 1,
        "report_to": "none",
        # Preprocessing is outside the measured window; more workers than cores only slows it.
        "preprocessing_num_workers": max(1, min(16, os.cpu_count() or 1)),
    }
    if spec.scale > 1:
        knobs["cutoff_len"] = int(spec.upstream(data)["cutoff_len"]) // spec.scale
    return knobs


def measurement_knobs(run_dir: Path) -> dict[str, Any]:
    """What makes a run measurable; set on the final config, since oda-sft reserves tokenized_path."""
    return {
        # Saving a random model measures the disk, not training (and checkpointing is not an override
        # `oda-sft train` takes, so it is set here, on every variant's final config alike).
        "save_strategy": "no",
        # Counts attention_mask: exact real tokens, except the padding of packed rows (corrected below).
        "include_num_input_tokens_seen": "non_padding",
        # Kept to count real tokens and attention spans per row, exactly as LLaMA-Factory built them.
        "tokenized_path": str(run_dir / "tokenized"),
    }


def raw_config(spec: BenchSpec, data: str, fixture: Path, run_dir: Path, cpu: bool) -> dict[str, Any]:
    upstream = spec.upstream(data)
    config: dict[str, Any] = {
        "model_name_or_path": str(fixture / "model"),
        **upstream,
        # Upstream points at a LLaMA-Factory checkout's examples/; the file content is the same.
        "deepspeed": str(train_config_dir() / upstream["deepspeed"]),
        "dataset": data,
        "dataset_dir": str(fixture / "data"),
        "output_dir": str(run_dir / "output"),
    }
    if cpu:
        config = cpu_fallback(config)
    config.update(bench_knobs(spec, data))
    return config


def oda_config(spec: BenchSpec, data: str, variant: str, fixture: Path, run_dir: Path) -> dict[str, Any]:
    """The config `oda-sft train --profile VARIANT` renders, with its notes kept beside it."""
    plan = plan_train(_request(spec, data, "fast" if variant == "fast" else "default", fixture, run_dir))
    atomic_write_text(run_dir / "oda_sft_notes.txt", "".join(f"oda-sft: {note}\n" for note in plan.notes))
    return dict(plan.config)


def _request(spec: BenchSpec, data: str, profile: str, fixture: Path, run_dir: Path) -> TrainRequest:
    return TrainRequest(
        model=spec.preset_name,
        dataset=data,
        seed=spec.seed,
        mode=DATA_MODE[data],
        model_path=fixture / "model",
        dataset_dir=fixture / "data",
        output_root=run_dir / "output",
        launch=LaunchOptions(spec.nproc_per_node),
        overrides=[f"{k}={v}" for k, v in bench_knobs(spec, data).items()],
        profile="fast" if profile == "fast" else "default",
    )


def decided(spec: BenchSpec, data: str, node: str, fixture: Path, samples: int) -> tuple[dict[str, Any], FastDecision]:
    """(config, decision) of fast@NODE: oda-sft's default config for the benchmark's model, with
    the fast decision made for the full-size preset on NODE (full depth, NODE's GPUs and memory,
    `samples` per epoch) and mapped onto the benchmark model's layers."""
    gpus, card = parse_node(node)
    plan = plan_train(_request(spec, data, "default", fixture, spec.out_dir / "plan"))
    full = spec.recipe.shape
    source = f"--decide-for {node}: {card.name}, idle"
    decision = decide_on_card(plan.config, full, gpus, card, samples, source=source, allow_partial=True)
    proxy = decision.for_layers(spec.model_shape().num_layers)
    return apply_decision(plan.config, proxy), proxy


def decision_label(decision: FastDecision) -> str:
    ck = decision.describe_checkpointing()
    return f"{decision.micro_batch}x{decision.accumulation}, ckpt {ck}" + (", overlap" if decision.overlap_comm else "")


RUN_ENV = {
    "RECORD_VRAM": "1",  # LLaMA-Factory logs torch's peak allocated/reserved GiB per step
    "HF_HUB_OFFLINE": "1",
    "HF_DATASETS_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
    "WANDB_MODE": "disabled",
    "PYTHONUNBUFFERED": "1",
}


def variant_config(
    spec: BenchSpec, data: str, variant: str, fixture: Path, gpu_count: int, run_dir: Path, samples: int
) -> tuple[dict[str, Any], dict[str, str], FastDecision | None]:
    """(config, trainer patches' environment, decision) of one variant."""
    if variant == "raw":
        return raw_config(spec, data, fixture, run_dir, cpu=gpu_count == 0), {}, None
    if variant.startswith(DECIDED):
        node = variant[len(DECIDED) :]
        config, decision = decided(spec, data, node, fixture, samples)
        notes = [f"decision for {spec.recipe.shape.name} on {node}:", *decision.notes]
        notes.append(f"applied to {spec.model_shape().name}: {decision_label(decision)}")
        atomic_write_text(run_dir / "oda_sft_notes.txt", "".join(f"oda-sft: {n}\n" for n in notes))
        return config, trainer_env(decision.trainer_patches, os.environ.get("PYTHONPATH")), decision
    return oda_config(spec, data, variant, fixture, run_dir), {}, None


def run_dir_for(spec: BenchSpec, data: str, variant: str, fixture: Path) -> Path:
    return spec.out_dir / "runs" / fixture_key(spec) / data / variant.replace("@", "-at-")


def run_variant(
    spec: BenchSpec,
    data: str,
    variant: str,
    fixture: Path,
    gpu_count: int,
    prepared: tuple[dict[str, Any], dict[str, str], FastDecision | None],
) -> RunResult:
    """Train one variant. oda-sft's variants train exactly what `oda-sft train` renders, launched
    as oda-sft launches it; tokens/s is measured inside the trainer, so the wrapper process itself
    cannot show in it, only what it does to the config."""
    run_dir = run_dir_for(spec, data, variant, fixture)
    config, patch_env, decision = prepared
    config = dict(config)
    config.update(measurement_knobs(run_dir))
    config_path = run_dir / "config.yaml"
    atomic_write_text(config_path, dump_yaml(config))
    # The launcher decision oda-sft makes, for every variant, so only the config differs.
    options = LaunchOptions(spec.nproc_per_node)
    argv, launch_env = launcher.build_command(config_path, options, gpu_count, deepspeed=bool(config.get("deepspeed")))
    log_path = run_dir / "train.log"
    t0 = time.time()
    rc = subproc.run_logged(argv, {**RUN_ENV, **launch_env, **patch_env}, log_path, spec.run_timeout_s)
    result = RunResult(data, variant, rc, round(time.time() - t0, 1), str(log_path), config=config)
    result.trainer_env = {k: v for k, v in patch_env.items() if k != "PYTHONPATH"}
    if decision is not None:
        result.decision = decision_label(decision)
        result.decision_notes = list(decision.notes)
    read_metrics(result, Path(config["output_dir"]) / trainer_log.LOG_NAME, run_dir / "tokenized", spec)
    return result


def fresh_run_dir(spec: BenchSpec, data: str, variant: str, fixture: Path) -> Path:
    run_dir = run_dir_for(spec, data, variant, fixture)
    if run_dir.exists():
        set_aside(run_dir, label="old")
    run_dir.mkdir(parents=True)
    return run_dir
