"""The fast profile's levers as pure decisions: the micro-batch split and when it is exact, the
decisions for the full-size presets on 8 GPUs of a named card, overlap_comm, and what a run
comparison may ignore."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from oda_sft.cards import CARDS, card_of_device, parse_node
from oda_sft.errors import UsageError
from oda_sft.presets import PRESETS
from oda_sft.train.memory import GIB
from oda_sft.train.profile import (
    BATCH_KEYS,
    FAST_KEYS,
    PROFILE_KEYS,
    apply_decision,
    decide_fast,
    known_sample_count,
    recipe_equivalent,
    split_micro_batch,
)
from oda_sft.train.render import RenderSpec, render
from oda_sft.util.paths import train_config_dir

from conftest import Cli


def recipe(model: str, mode: str) -> dict[str, Any]:
    preset = PRESETS[model]
    spec = RenderSpec(preset, mode, "X", 42, Path("/d"), Path("/o"), preset.base_model, False, {})  # type: ignore[arg-type]
    return render(spec)


def accelerate_steps(n: int, micro: int, accum: int, world: int) -> list[list[int]]:
    """The samples of each optimizer step, cut by the real accelerate (1.11) sharding.

    Each rank iterates accelerate's BatchSamplerShard (even_batches, as the HF Trainer prepares
    it) over the shuffled order (here the identity: the order does not depend on the split); the
    trainer (transformers 4.57 `_inner_training_loop`) steps every `accum` micro-batches per rank
    and takes what is left at the end of an epoch. One rank is not sharded at all."""
    from accelerate.data_loader import BatchSamplerShard
    from torch.utils.data import BatchSampler, SequentialSampler

    def batches(rank: int) -> list[list[int]]:
        inner = BatchSampler(SequentialSampler(range(n)), micro, drop_last=False)
        if world == 1:
            return list(inner)
        return list(BatchSamplerShard(inner, num_processes=world, process_index=rank, even_batches=True))

    per_rank = [batches(r) for r in range(world)]
    assert len({len(b) for b in per_rank}) == 1
    steps = []
    for start in range(0, len(per_rank[0]), accum):
        steps.append(sorted(s for rank in per_rank for b in rank[start : start + accum] for s in b))
    return steps


@pytest.mark.parametrize("world", [1, 2, 8])
@pytest.mark.parametrize("n", [1, 5, 31, 32, 100, 127, 128, 129, 250, 1000, 1017, 1024])
def test_the_split_is_chosen_only_when_every_step_trains_the_same_samples(n: int, world: int) -> None:
    micro, why = split_micro_batch(4, 4, world, n)
    assert why
    recipe_steps = accelerate_steps(n, 4, 4, world)
    assert accelerate_steps(n, micro, 4 * 4 // micro, world) == recipe_steps
    # And the rule is not needlessly strict: a smaller exact split is never skipped.
    for smaller in (m for m in (1, 2) if m < micro):
        assert accelerate_steps(n, smaller, 16 // smaller, world) != recipe_steps


def test_the_split_needs_the_sample_count_on_more_than_one_rank() -> None:
    assert split_micro_batch(4, 4, 1, None)[0] == 1
    micro, why = split_micro_batch(4, 4, 8, None)
    assert micro == 4 and "oda-sft data add" in why
    assert split_micro_batch(1, 2, 8, 100)[0] == 1


def test_sample_count_comes_only_from_records_of_this_very_file() -> None:
    analysis = {"sha256": "b" * 64, "mode": "standard", "count": 7}
    meta = {"sha256": "a" * 64, "records": 1000, "analyses": {"tok": analysis}}
    assert known_sample_count(meta, "a" * 64) == 1000
    assert known_sample_count(meta, "b" * 64) == 7
    assert known_sample_count(meta, "c" * 64) is None
    assert known_sample_count(meta, None) is None


@pytest.mark.parametrize(
    ("model", "mode", "node", "micro", "checkpointing"),
    [
        # std: one sample per micro-batch removes the padding and shrinks activations 4x, so even
        # an 80 GB card holds a whole rank without checkpointing.
        ("llama", "standard", "8xH100-80GB", 1, False),
        ("llama", "standard", "8xH200", 1, False),
        ("qwen", "standard", "8xH100-80GB", 1, False),
        ("qwen", "standard", "8xH200", 1, False),
        # long: a 32k packed row without checkpointing needs about 200 GiB a rank; it stays on.
        ("llama", "long", "8xH100-80GB", 1, True),
        ("llama", "long", "8xH200", 1, True),
        ("qwen", "long", "8xH100-80GB", 1, True),
        ("qwen", "long", "8xH200", 1, True),
    ],
)
def test_decisions_for_the_full_size_presets_on_8_gpus(
    model: str, mode: str, node: str, micro: int, checkpointing: bool
) -> None:
    gpus, card = parse_node(node)
    config = recipe(model, mode)
    decision = decide_fast(
        config,
        PRESETS[model].shape,
        world=gpus,
        gpu_count=gpus,
        device=lambda: card.memory(f"--decide-for {node}"),
        samples=64_000,  # a multiple of 4 x 8: the split is exact
    )
    assert (decision.micro_batch, decision.checkpointing, decision.overlap_comm) == (micro, checkpointing, True)
    assert decision.micro_batch * decision.accumulation == int(config["per_device_train_batch_size"]) * int(
        config["gradient_accumulation_steps"]
    )
    fast = apply_decision(config, decision)
    changed = {k for k in set(config) | set(fast) if config.get(k) != fast.get(k)}
    assert changed <= set(PROFILE_KEYS)
    assert Path(fast["deepspeed"]).name == "ds_z2_fast_config.json"
    assert decision.memory is not None and (decision.memory.fits(card.memory("").free_bytes) != checkpointing)


def test_without_a_known_sample_count_8_ranks_keep_the_recipe_micro_batch() -> None:
    card = CARDS["H200"]
    decision = decide_fast(
        recipe("llama", "standard"), PRESETS["llama"].shape, world=8, gpu_count=8, device=lambda: card.memory("t")
    )
    # 4 samples x 4096 tokens without checkpointing: about 119 GiB a rank, which an H200 still holds.
    assert decision.micro_batch == 4 and not decision.checkpointing
    assert decision.memory is not None and decision.memory.required > 100 * GIB
    assert any("sample count, which is unknown" in n for n in decision.notes)


def test_overlap_comm_only_on_more_than_one_rank_and_never_over_an_override() -> None:
    config = recipe("llama", "standard")
    one = decide_fast(config, PRESETS["llama"].shape, world=1, gpu_count=1, device=lambda: None)
    assert not one.overlap_comm and "deepspeed" not in {
        k for k in config if apply_decision(config, one).get(k) != config[k]
    }
    kept = decide_fast(
        config, PRESETS["llama"].shape, world=8, gpu_count=8, device=lambda: None, user_keys=frozenset({"deepspeed"})
    )
    assert not kept.overlap_comm


def test_overrides_of_the_batch_keep_the_recipe_split() -> None:
    config = recipe("qwen", "standard")
    decision = decide_fast(
        config, PRESETS["qwen"].shape, world=1, gpu_count=1, device=lambda: None, user_keys=frozenset(BATCH_KEYS[:1])
    )
    assert decision.micro_batch == 4 and any("kept from your override" in n for n in decision.notes)


def test_the_fast_deepspeed_file_is_the_recipe_with_overlap_comm_alone() -> None:
    recipe_ds = json.loads((train_config_dir() / "ds_z2_config.json").read_text())
    fast_ds = json.loads((train_config_dir() / "ds_z2_fast_config.json").read_text())
    assert recipe_ds["zero_optimization"]["overlap_comm"] is False
    fast_ds["zero_optimization"]["overlap_comm"] = False
    assert fast_ds == recipe_ds


def test_a_run_comparison_sees_the_fast_deepspeed_file_as_the_recipes_but_not_the_split() -> None:
    config = recipe("llama", "standard")
    fast = {**config, "deepspeed": str(Path(config["deepspeed"]).with_name("ds_z2_fast_config.json"))}
    assert recipe_equivalent(fast) == config
    assert not set(BATCH_KEYS) & set(FAST_KEYS)  # train/run.py compares the split


def test_cards_and_node_names() -> None:
    assert parse_node("8xH100-80GB") == (8, CARDS["H100-80GB"])
    assert parse_node("8xh200") == (8, CARDS["H200"])
    for bad in ("H200", "0xH200", "8xV100"):
        with pytest.raises(UsageError):
            parse_node(bad)
    assert card_of_device("NVIDIA H200") is CARDS["H200"]
    assert card_of_device("NVIDIA H100 80GB HBM3") is CARDS["H100-80GB"]
    assert card_of_device("NVIDIA H100 PCIe") is None
    assert card_of_device("Tesla V100") is None


def test_train_dry_run_on_8_gpus_splits_a_registered_dataset(
    cli: Cli, data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Through the real `train --profile fast --dry-run`: with the record count `data add` keeps for
    this very file, 8 ranks of an 80 GB card get 1 x 16, checkpointing off and overlap_comm."""
    import hashlib

    data = (data_dir / "oda_demo.json").read_bytes()
    info = json.loads((data_dir / "dataset_info.json").read_text())
    records = len(json.loads(data))
    info["oda_demo"]["oda_sft"] = {
        **info["oda_demo"]["oda_sft"],
        "sha256": hashlib.sha256(data).hexdigest(),
        "records": records,
    }
    (data_dir / "dataset_info.json").write_text(json.dumps(info))
    monkeypatch.setenv("ODA_SFT_GPU_COUNT", "8")
    monkeypatch.setenv("ODA_SFT_GPU_FREE_MIB", str(81559 - 512))
    args = ["train", "--model", "llama", "--mode", "standard", "--dataset", "oda_demo", "--dataset-dir", str(data_dir)]
    fast = cli(*args, "--profile", "fast", "--dry-run")
    default = cli(*args, "--dry-run")
    assert fast.code == default.code == 0, fast.err
    fast_cfg, default_cfg = yaml.safe_load(fast.out), yaml.safe_load(default.out)
    assert records == 128  # a multiple of 4 x 8: the split is exact
    assert (fast_cfg["per_device_train_batch_size"], fast_cfg["gradient_accumulation_steps"]) == (1, 16)
    assert fast_cfg["disable_gradient_checkpointing"] is True
    assert Path(fast_cfg["deepspeed"]).name == "ds_z2_fast_config.json"
    assert Path(default_cfg["deepspeed"]).name == "ds_z2_config.json"
    assert {k for k in set(fast_cfg) | set(default_cfg) if fast_cfg.get(k) != default_cfg.get(k)} <= set(PROFILE_KEYS)
    assert "micro-batch 1 x accumulation 16 instead of 4 x 4" in fast.err and "overlap_comm on" in fast.err


def test_a_kept_config_differs_from_fast_in_the_split_but_not_in_speed_keys() -> None:
    from oda_sft.train.outdir_policy import _config_changes

    config = recipe("llama", "standard")
    decision = decide_fast(config, PRESETS["llama"].shape, world=8, gpu_count=8, device=lambda: None, samples=128)
    fast = apply_decision(config, decision)
    assert _config_changes(config, fast) == sorted(BATCH_KEYS)
    only_speed = {**config, "flash_attn": "sdpa", "deepspeed": fast["deepspeed"]}
    assert _config_changes(config, only_speed) == []
