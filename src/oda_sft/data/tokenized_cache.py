"""Tokenize once per (dataset content, tokenizer, every setting that changes tokens), via LLaMA-Factory's
`tokenized_path`: a run that finds a complete entry loads it; a run that does not writes a staging
copy, which oda-sft promotes once LLaMA-Factory has finished writing it, and only if the data file is
still the content the key was made from.

What changes tokens is read off LLaMA-Factory 0.9.4's own code, field by field: every field of its
DataArguments and ModelArguments is listed below as keyed or not, and a test fails on any field in
neither list, so a setting a new LLaMA-Factory adds cannot be missed silently.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from oda_sft.data.registry import hashing
from oda_sft.data.registry.dataset_dir import META_KEY, ResolvedDataset
from oda_sft.util.paths import cache_dir

# DataArguments (hparams/data_args.py) read by data/loader.py, converter.py, template.py and the processors.
DATA_KEYED = (
    "template",  # the prompt format
    "dataset",  # which datasets (oda-sft trains one; its content is keyed by sha256 below)
    "media_dir",  # where media paths resolve
    "cutoff_len",
    "train_on_prompt",
    "mask_history",
    "mix_strategy",
    "interleave_probs",
    "preprocessing_batch_size",  # packing packs within a batch
    "preprocessing_num_workers",  # ...and each worker's shard has its own batches
    "max_samples",
    "val_size",
    "eval_on_each_dataset",
    "packing",
    "neat_packing",
    "tool_format",
    "default_system",
    "enable_thinking",
)
DATA_NOT_KEYED = (
    "dataset_dir",  # where the file is; its content and entry are keyed instead
    "buffer_size",  # streaming only, and streaming turns the cache off
    "overwrite_cache",  # the datasets library's own cache
    "eval_num_beams",  # generation
    "ignore_pad_token_for_loss",  # the collator, after the tokenized data is loaded
    "data_shared_file_system",  # which process preprocesses, not what it produces
)
# With any of these set, oda-sft's cache stays out of the way.
CACHE_OFF = {
    "streaming": "streaming datasets cannot be saved tokenized",
    "eval_dataset": "an eval dataset is not keyed by its content",
    "tokenized_path": "tokenized_path is set by hand",
}
# ModelArguments (hparams/model_args.py) read by model/loader.py: load_tokenizer, patch_tokenizer, patch_processor.
MODEL_KEYED = (
    "model_name_or_path",  # keyed by its tokenizer files (tokenizer_fingerprint)
    "model_revision",
    "trust_remote_code",  # may load another tokenizer class
    "use_fast_tokenizer",
    "split_special_tokens",
    "add_tokens",
    "add_special_tokens",
    "new_special_tokens_config",  # keyed by the file's content
    "image_max_pixels",
    "image_min_pixels",
    "image_do_pan_and_scan",
    "crop_to_patches",
    "video_max_pixels",
    "video_min_pixels",
    "video_fps",
    "video_maxlen",
    "use_audio_in_video",
    "audio_sampling_rate",
)
MODEL_NOT_KEYED = (
    # Where and how a tokenizer is fetched, not which one it is.
    "cache_dir", "hf_hub_token", "ms_hub_token", "om_hub_token",
    # Derived from data arguments already keyed (cutoff_len, neat_packing), or not settable.
    "model_max_length", "block_diag_attn", "compute_dtype", "device_map",
    # The model, its training, export and inference: nothing preprocessing reads.
    "adapter_name_or_path", "adapter_folder", "resize_vocab", "init_special_tokens", "low_cpu_mem_usage",
    "rope_scaling", "flash_attn", "shift_attn", "mixture_of_depths", "use_unsloth", "use_unsloth_gc",
    "enable_liger_kernel", "moe_aux_loss_coef", "disable_gradient_checkpointing", "use_reentrant_gc",
    "upcast_layernorm", "upcast_lmhead_output", "train_from_scratch", "infer_backend", "offload_folder",
    "use_kv_cache", "use_v1_kernels", "infer_dtype", "print_param_status",
    "quantization_method", "quantization_bit", "quantization_type", "double_quantization",
    "quantization_device_map", "fp8", "fp8_backend", "fp8_enable_fsdp_float8_all_gather",
    "export_dir", "export_size", "export_device", "export_quantization_bit", "export_quantization_dataset",
    "export_quantization_nsamples", "export_quantization_maxlen", "export_legacy_format", "export_hub_model_id",
    "use_kt", "kt_optimize_rule", "cpu_infer", "chunk_size", "mode", "kt_maxlen", "kt_use_cuda_graph",
    "kt_mode", "kt_force_think",
    "vllm_maxlen", "vllm_gpu_util", "vllm_enforce_eager", "vllm_max_lora_rank", "vllm_config",
    "sglang_maxlen", "sglang_mem_fraction", "sglang_tp_size", "sglang_config", "sglang_lora_backend",
)  # fmt: skip
# Other arguments data/loader.py reads: the stage picks the processor; generation shapes eval data.
OTHER_KEYED = ("stage", "predict_with_generate")
# The seed shapes the data only where LLaMA-Factory samples or splits it.
SEEDED_WHEN = ("val_size", "interleave_probs")
LIBRARIES = ("llamafactory", "datasets", "transformers", "tokenizers")
# A local model directory is keyed by every file in it but the weights: which files a tokenizer reads is
# its class's to say (qwen.tiktoken, spiece.model, emoji.json ...), config.json picks the class, and with
# trust_remote_code any *.py there may be the tokenizer's code or import it. Subdirectories are not read,
# but for the chat templates transformers loads from one.
_WEIGHTS = (".safetensors", ".bin", ".pt", ".pth", ".ckpt", ".h5", ".msgpack", ".gguf", ".onnx", ".npz")
_WEIGHT_INDEXES = (".safetensors.index.json", ".bin.index.json")
_READ_SUBDIRS = ("additional_chat_templates",)


@dataclass(frozen=True)
class CacheEntry:
    key: str
    path: Path  # the complete entry
    hit: bool
    run_id: str  # one staging copy per output_dir, so concurrent runs never share a half-written one
    data_file: Path | None = None  # checked again before a staging copy is kept

    @property
    def staging(self) -> Path:
        return self.path.with_name(f"{self.path.name}.staging-{self.run_id}")

    @property
    def source(self) -> Path:
        """Beside the staging copy (LLaMA-Factory loads any non-empty directory): what it was keyed on."""
        return self.staging.with_name(f"{self.staging.name}.source.json")

    @property
    def tokenized_path(self) -> Path:
        """What LLaMA-Factory is told: the entry on a hit, the staging copy on a miss."""
        return self.path if self.hit else self.staging


@dataclass(frozen=True)
class Promotion:
    saved: bool
    note: str | None = None  # why a staging copy was not kept, for the person and the manifest


def tokenizer_fingerprint(model_path: str) -> str:
    path = Path(model_path)
    if not path.is_dir():
        return f"hub:{model_path}"  # a hub id (and model_revision, keyed too) names a fixed tokenizer
    digest = hashlib.sha256()
    for file in _tokenizer_files(path):
        with file.open("rb") as handle:
            content = hashlib.file_digest(handle, "sha256").digest()
        digest.update(file.relative_to(path).as_posix().encode() + b"\0" + content)
    return f"files:{digest.hexdigest()}"


def _tokenizer_files(model_dir: Path) -> list[Path]:
    """The files of a model directory that may shape its tokenization, in a fixed order."""
    found = [f for f in model_dir.iterdir() if f.is_file()]
    for sub in _READ_SUBDIRS:
        if (model_dir / sub).is_dir():
            found.extend(f for f in (model_dir / sub).iterdir() if f.is_file())
    return sorted(f for f in found if not f.name.endswith(_WEIGHTS + _WEIGHT_INDEXES))


def _file_content(value: Any) -> Any:
    """A setting that names a file is keyed by what the file holds."""
    if isinstance(value, str) and os.path.isfile(value):
        return {"path": value, "sha256": hashlib.sha256(Path(value).read_bytes()).hexdigest()}
    return value


def off_reason(config: dict[str, Any]) -> str | None:
    """Why the cache cannot be used with this config, or None."""
    for key, why in CACHE_OFF.items():
        if config.get(key) not in (None, False, ""):
            return f"tokenized cache off: {why}"
    model = Path(str(config.get("model_name_or_path", "")))
    if config.get("trust_remote_code") and model.is_dir() and _code_elsewhere(model):
        return "tokenized cache off: the tokenizer's code comes from another repository (auto_map), not keyed"
    return None


def _code_elsewhere(model_dir: Path) -> bool:
    """An auto_map entry names code in another repository ("owner/repo--module.Class"), fetched at load."""
    for name in ("tokenizer_config.json", "config.json", "processor_config.json", "preprocessor_config.json"):
        try:
            auto_map = json.loads((model_dir / name).read_text(encoding="utf-8")).get("auto_map") or {}
        except (OSError, ValueError, AttributeError):
            continue
        if not isinstance(auto_map, dict):
            continue
        refs = [r for v in auto_map.values() for r in (v if isinstance(v, list) else [v])]
        if any(isinstance(r, str) and "--" in r for r in refs):
            return True
    return False


def cache_key(config: dict[str, Any], dataset_sha256: str, dataset_entry: dict[str, Any]) -> str:
    seeded = any(config.get(k) for k in SEEDED_WHEN) or "num_samples" in dataset_entry
    parts = {
        "dataset_sha256": dataset_sha256,
        # How LLaMA-Factory reads the file (columns, formatting, tags); oda-sft's own notes do not count.
        "dataset_entry": {k: v for k, v in dataset_entry.items() if k != META_KEY},
        "tokenizer": tokenizer_fingerprint(str(config["model_name_or_path"])),
        "data_args": {k: config.get(k) for k in DATA_KEYED},
        "model_args": {
            k: _file_content(config.get(k)) if k == "new_special_tokens_config" else config.get(k)
            for k in MODEL_KEYED
            if k != "model_name_or_path"
        },
        "other_args": {k: config.get(k) for k in OTHER_KEYED},
        "seed": config.get("seed") if seeded else None,
        "libraries": {name: _version(name) for name in LIBRARIES},
    }
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:20]


def _version(name: str) -> str | None:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return None


def root() -> Path:
    return cache_dir() / "tokenized"


def is_complete(path: Path) -> bool:
    """A `DatasetDict.save_to_disk` tree whose every split wrote state.json (its last file)."""
    try:
        splits = json.loads((path / "dataset_dict.json").read_text())["splits"]
    except (OSError, ValueError, KeyError, TypeError):
        return False
    return bool(splits) and all((path / split / "state.json").is_file() for split in splits)


def prepare(config: dict[str, Any], dataset: ResolvedDataset) -> CacheEntry:
    """Find the entry for this config and content; finish or discard what an earlier attempt left."""
    assert dataset.identity is not None, "the cache is keyed by the data file's content"
    key = cache_key(config, dataset.identity.sha256, dict(dataset.entry or {}))
    run_id = hashlib.sha256(str(config["output_dir"]).encode()).hexdigest()[:10]
    entry = CacheEntry(key, root() / key, False, run_id, dataset.file)
    if is_complete(entry.path):
        return CacheEntry(key, entry.path, True, run_id, dataset.file)
    if entry.staging.exists():
        promote(entry)  # an interrupted attempt may have finished tokenizing before it stopped
    if is_complete(entry.path):
        return CacheEntry(key, entry.path, True, run_id, dataset.file)
    # What this staging copy will be tokenized from: checked again before the copy is kept.
    entry.source.parent.mkdir(parents=True, exist_ok=True)
    stamp = dataset.identity.stamp
    entry.source.write_text(json.dumps({"file": str(dataset.file), "sha256": dataset.identity.sha256,
                                        "stamp": stamp.as_list()}))  # fmt: skip
    return entry


def _discard(entry: CacheEntry) -> None:
    shutil.rmtree(entry.staging, ignore_errors=True)
    entry.source.unlink(missing_ok=True)


def promote(entry: CacheEntry) -> Promotion:
    """Keep a complete staging copy if the data file is still what it was keyed on; else remove it."""
    staging = entry.staging
    if entry.hit or not staging.exists():
        entry.source.unlink(missing_ok=True)
        return Promotion(False)
    if not is_complete(staging):
        _discard(entry)  # incomplete copies are ours: a later run tokenizes again
        return Promotion(False)
    note = _changed_since_keyed(entry)
    if note is not None:
        _discard(entry)
        return Promotion(False, note)
    try:
        os.rename(staging, entry.path)
    except OSError:  # another run promoted the same content first
        shutil.rmtree(staging, ignore_errors=True)
        entry.source.unlink(missing_ok=True)
        return Promotion(False)
    entry.source.unlink(missing_ok=True)
    return Promotion(True)


def _changed_since_keyed(entry: CacheEntry) -> str | None:
    """Why the staging copy may hold other content than its key says; None when the file is unchanged."""
    try:
        source = json.loads(entry.source.read_text())
        file, sha, stamp = Path(source["file"]), source["sha256"], source["stamp"]
    except (OSError, ValueError, KeyError, TypeError):
        return f"the tokenized copy {entry.staging.name} has no record of the content it was made from; removed"
    now = hashing.current_stamp(file)
    same = now is not None and now.as_list() == stamp
    if same and hashing.identify(file).sha256 == sha:
        return None
    return (
        f"{file} changed while the run preprocessed it (sha256 {sha[:12]} when the run started): its tokenized copy "
        "was not kept, so no later run can load tokens of other content under this key; this run's manifest says so"
    )


def count_tokens(path: Path) -> int | None:
    """Real (unpadded) tokens in the train split of a tokenized entry, read straight from its Arrow files."""
    import pyarrow as pa
    import pyarrow.compute as pc

    files = sorted((path / "train").glob("*.arrow"))
    if not files:
        return None
    total = 0
    for file in files:
        with pa.memory_map(str(file)) as source:
            table = pa.ipc.open_stream(source).read_all()
        if "input_ids" not in table.column_names:
            return None
        total += int(pc.sum(pc.list_value_length(table["input_ids"])).as_py() or 0)
    return total
