"""The model card `oda-sft push` uploads as the repo's README.md: what the run is, from its manifest alone.

The front matter is what the Hub reads (its model card metadata: huggingface_hub 0.36, repocard_data.py,
ModelCardData: base_model, datasets, license, tags, library_name, pipeline_tag), written by ModelCardData
itself so its conventions are the Hub client's. The body says what a reader needs to trust and repeat the
run: the data (Hub commit or sha256), the recipe and its era, the seed, the results over all attempts,
every finished evaluation with its settings, and the oda-sft commands that train and evaluate it again.
Nothing in it comes from the environment: no path of this machine, no token.
"""

from __future__ import annotations

from typing import Any

from oda_sft.datasets_catalog import DATASETS
from oda_sft.eras import era_of
from oda_sft.presets import PRESETS

TAGS = ("oda-sft", "llama-factory", "opendataarena", "sft", "full")
# The recipe's values a reader compares first (the rest are in the config, which the card does not carry).
RECIPE_KEYS = (
    "learning_rate",
    "num_train_epochs",
    "lr_scheduler_type",
    "warmup_ratio",
    "cutoff_len",
    "packing",
    "per_device_train_batch_size",
    "gradient_accumulation_steps",
    "bf16",
)


def base_model_id(manifest: dict[str, Any]) -> str | None:
    """The Hub id of the model the run started from; None for a local checkpoint or the embedded tiny model."""
    model = manifest.get("model") or {}
    preset = PRESETS.get(str(model.get("preset")))
    path = model.get("path")
    if preset is not None and preset.base_model and path == preset.base_model:
        return preset.base_model
    return None


def dataset_hub_id(manifest: dict[str, Any]) -> str | None:
    found = DATASETS.get(str((manifest.get("dataset") or {}).get("name")))
    return found.hf_id if found is not None else None


def front_matter(manifest: dict[str, Any], license: str) -> str:
    from huggingface_hub import ModelCardData

    base, data = base_model_id(manifest), dataset_hub_id(manifest)
    card = ModelCardData(
        base_model=base,
        datasets=[data] if data else None,
        license=license,
        library_name="transformers",
        pipeline_tag="text-generation",
        tags=list(TAGS),
    )
    return card.to_yaml()


def render(manifest: dict[str, Any], config: dict[str, Any], repo_id: str, license: str) -> str:
    """The whole card: front matter, then the body."""
    return f"---\n{front_matter(manifest, license)}\n---\n\n{body(manifest, config, repo_id, license)}"


def body(manifest: dict[str, Any], config: dict[str, Any], repo_id: str, license: str) -> str:
    model = manifest.get("model") or {}
    preset = str(model.get("preset", "?"))
    dataset = manifest.get("dataset") or {}
    name = str(dataset.get("name", "?"))
    base = base_model_id(manifest)
    start = f"[{base}](https://huggingface.co/{base})" if base else _local_base(preset)
    lines = [
        f"# {repo_id.split('/')[-1]}",
        "",
        f"{start}, fully fine-tuned on **{name}** with oda-sft (OpenDataArena's SFT recipe, trained by LLaMA-Factory).",
        "",
        *_data(manifest, dataset),
        *_recipe(manifest, config, preset),
        *_results(manifest),
        *_evals(manifest),
        *_reproduce(manifest, preset, name),
        "## License",
        "",
        f"`{license}`" + (f": the weights are a fine-tune of {base}, whose license applies." if base else ""),
        "",
    ]
    return "\n".join(lines)


def _local_base(preset: str) -> str:
    if preset in PRESETS and PRESETS[preset].embedded:
        return f"oda-sft's embedded `{preset}` model (random weights, for tests and demos)"
    return f"A local checkpoint under the `{preset}` preset's recipe"


def _data(manifest: dict[str, Any], dataset: dict[str, Any]) -> list[str]:
    hub, revision = dataset_hub_id(manifest), dataset.get("revision")
    lines = ["## Training data", "", f"- dataset: `{dataset.get('name')}`"]
    if hub:
        at = f" at commit `{revision}`" if revision else ""
        lines.append(f"- source: [{hub}](https://huggingface.co/datasets/{hub}){at}, converted by `oda-sft data add`")
    lines.append(f"- sha256 of the file trained on: `{dataset.get('sha256') or 'not recorded'}`")
    tokens = (manifest.get("results") or {}).get("dataset_tokens_per_epoch")
    if tokens:
        lines.append(f"- tokens per epoch: {tokens:,}")
    return [*lines, ""]


def _recipe(manifest: dict[str, Any], config: dict[str, Any], preset: str) -> list[str]:
    mode = manifest.get("mode") or {}
    era = era_of(manifest)
    lines = [
        "## Recipe",
        "",
        f"- preset: `{preset}`; mode: `{mode.get('mode', '?')}`: {mode.get('reason', 'no reason recorded')}",
        f"- recipe era: {era}; profile: `{manifest.get('profile', 'default')}`",
        f"- seed: {manifest.get('seed', '?')}",
        f"- hardware: {_hardware(manifest)}",
    ]
    lines += [f"- {key}: {config[key]}" for key in RECIPE_KEYS if key in config]
    versions = manifest.get("versions") or {}
    shown = ", ".join(f"{k} {v}" for k, v in versions.items() if v)
    if shown:
        lines.append(f"- versions: {shown}")
    return [*lines, ""]


def _hardware(manifest: dict[str, Any]) -> str:
    gpus = manifest.get("gpus") or {}
    names = sorted({str(n) for n in gpus.get("names") or []})
    per_node = f"{gpus['count']} x {', '.join(names) or 'GPU'}" if gpus.get("count") else "CPU"
    nodes = manifest.get("nnodes") or 1
    return f"{per_node} on each of {nodes} nodes" if nodes > 1 else per_node


def _results(manifest: dict[str, Any]) -> list[str]:
    results = manifest.get("results") or {}
    attempts = [a for a in manifest.get("attempts") or [] if isinstance(a, dict)]
    lines = ["## Training results", "", f"Status: {manifest.get('status')}, over {len(attempts)} attempt(s).", ""]
    rows = [
        ("train loss (mean over the run)", results.get("train_loss")),
        ("final logged loss", results.get("final_loss")),
        ("epochs", results.get("epoch")),
        ("steps", results.get("train_loss_steps")),
        ("runtime (s)", results.get("train_runtime")),
        ("tokens/s", results.get("tokens_per_second")),
    ]
    lines += ["| result | value |", "| --- | --- |", *(f"| {k} | {_number(v)} |" for k, v in rows if v is not None)]
    lines += ["", "| attempt | started | ended | status |", "| --- | --- | --- | --- |"]
    for i, a in enumerate(attempts, 1):
        resumed = " (resumed)" if a.get("resumed_from") else ""
        lines.append(f"| {i} | {a.get('started_at')} | {a.get('ended_at')} | {a.get('status')}{resumed} |")
    return [*lines, ""]


def _evals(manifest: dict[str, Any]) -> list[str]:
    records = [r for r in manifest.get("evals") or [] if isinstance(r, dict) and r.get("status") == "finished"]
    lines = ["## Evaluation", ""]
    if not records:
        return [*lines, "Not evaluated yet (`oda-sft eval`).", ""]
    for record in records:
        settings = record.get("settings") or {}
        oc = record.get("opencompass") or {}
        fork = "ODA's fork of " if oc.get("fork") else ""
        lines += [
            f"Settings `{record.get('id')}`: suite `{settings.get('suite')}`, {fork}OpenCompass "
            f"{oc.get('version', '?')}, generation {_generation(settings)}.",
            "",
            "| benchmark | score |",
            "| --- | --- |",
        ]
        lines += [f"| {b} | {_score(s)} |" for b, s in sorted((record.get("scores") or {}).items())]
        lines += [f"| domain: {d} | {_score(s)} |" for d, s in sorted((record.get("domains") or {}).items())]
        lines += [f"| **overall** | {_score(record.get('overall'))} |", ""]
    return lines


def _generation(settings: dict[str, Any]) -> str:
    gen = settings.get("generation") or {}
    kwargs = gen.get("generation_kwargs") or {}
    sampled = ", ".join(f"{k}={v}" for k, v in sorted(kwargs.items())) or "greedy"
    return f"max_out_len {gen.get('max_out_len', '?')}, {sampled}"


def _number(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def _score(value: Any) -> str:
    return f"{value:.2f}" if isinstance(value, int | float) else "-"


def _reproduce(manifest: dict[str, Any], preset: str, name: str) -> list[str]:
    seed = manifest.get("seed", 42)
    mode = (manifest.get("mode") or {}).get("mode")
    train = f"oda-sft train --model {preset} --dataset {name} --seed {seed}"
    if mode:
        train += f" --mode {mode}"
    if manifest.get("profile") not in (None, "default"):
        train += f" --profile {manifest['profile']}"
    lines = ["## Reproduce", "", "```bash", "pip install oda-sft"]
    if name in DATASETS:
        lines.append(f"oda-sft data add {name}")
    lines += [train, f"oda-sft eval --model {preset} --dataset {name} --seed {seed}", "```", ""]
    sha = (manifest.get("dataset") or {}).get("sha256")
    if sha:
        lines += [f"The data file must have sha256 `{sha}` (`oda-sft train` records it in the run's manifest).", ""]
    return lines
