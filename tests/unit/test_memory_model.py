"""The memory model: parameter counts, the gpu-kit's measured peaks, and the fit decision."""

from __future__ import annotations

import pytest

from oda_sft.shapes import ModelShape, shape_from_hf_config
from oda_sft.throughput.spec import SHAPES as BENCH_SHAPES
from oda_sft.train.memory import CONTEXT_BYTES, GIB, TrainShape, estimate, train_shape_from_config

from hf_configs import QWEN25_05B

SHAPES = {name: shape for name, (shape, _) in BENCH_SHAPES.items()}
QWEN05 = SHAPES["qwen2.5-0.5b"]


def z2(tokens: int, micro_batch: int, ckpt: bool, world: int = 1, liger: bool = True) -> TrainShape:
    return TrainShape(tokens, micro_batch, 2, world, ckpt, liger, bf16=True)


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("qwen2.5-0.5b", 494_032_768),  # the kit's fixture reports 494M; the published model card says 0.49B
        ("qwen2.5-1.5b", 1_543_714_304),  # published: 1.54B
        ("qwen2.5-7b", 7_615_616_512),  # published: 7.61B
        ("llama3.1-8b", 8_030_261_248),  # published: 8.03B
    ],
)
def test_parameter_counts_match_the_published_models(name: str, expected: int) -> None:
    assert SHAPES[name].params == expected


# Peaks of torch.cuda.max_memory_allocated measured by the gpu-kit on one H200 (2026-11-27),
# Qwen2.5-0.5B shape, ZeRO-2, liger, bf16 (../shared/gpu-kit/README.md). Standard rows are padded
# to the longest sample in the micro-batch: 3,125 tokens, 3,128 after padding to a multiple of 8.
KIT_PEAKS = [
    ("long, checkpointing on", z2(32769, 1, True), 11.5),
    ("long, checkpointing off", z2(32769, 1, False), 38.7),
    ("standard, checkpointing on", z2(3128, 4, True), 10.2),
    ("standard, checkpointing off", z2(3128, 4, False), 21.8),
]


@pytest.mark.parametrize(("label", "train", "measured_gib"), KIT_PEAKS, ids=[k[0] for k in KIT_PEAKS])
def test_reproduces_the_kit_peaks_within_the_issue_target(label: str, train: TrainShape, measured_gib: float) -> None:
    predicted = estimate(QWEN05, train).peak_allocated / GIB
    assert abs(predicted / measured_gib - 1) <= 0.15, f"{label}: predicted {predicted:.2f} GiB"


def test_checkpointing_off_costs_what_the_kit_measured() -> None:
    """The difference between the two long runs is activations alone: 27.2 GiB measured."""
    delta = estimate(QWEN05, z2(32769, 1, False)).peak_allocated - estimate(QWEN05, z2(32769, 1, True)).peak_allocated
    assert abs(delta / GIB / (38.7 - 11.5) - 1) <= 0.15


def test_zero_stages_partition_what_they_should() -> None:
    shape = SHAPES["llama3.1-8b"]

    def states(stage: int, world: int) -> int:
        parts = estimate(shape, TrainShape(1, 1, stage, world, True, True, True)).parts
        return sum(v for k, v in parts.items() if k not in ("activations", "recomputed layer", "loss"))

    p = shape.params
    assert states(1, 1) == states(2, 1) == 20 * p  # one rank holds everything
    assert states(1, 8) > states(2, 8) > states(3, 8)
    # ZeRO-3: everything partitioned, plus the gathered working set (embedding and two layers, bf16).
    assert states(3, 8) == -(-20 * p // 8) + 2 * (shape.embedding_params + 2 * shape.layer_params)
    assert estimate(shape, TrainShape(1, 1, 0, 1, True, False, False)).parts == {
        "weights+grads+adam": 16 * p,
        "activations": shape.num_layers * shape.hidden_size * 4,
        "recomputed layer": estimate(shape, TrainShape(1, 1, 0, 1, True, False, False)).parts["recomputed layer"],
        "loss": 14 * shape.vocab_size,
    }


def test_activations_scale_with_tokens_and_liger_saves_memory() -> None:
    short = estimate(QWEN05, z2(4096, 1, False)).parts["activations"]
    assert estimate(QWEN05, z2(4096, 4, False)).parts["activations"] == 4 * short
    assert estimate(QWEN05, z2(8192, 1, False)).parts["activations"] == 2 * short
    plain = estimate(QWEN05, z2(32769, 1, False, liger=False))
    fused = estimate(QWEN05, z2(32769, 1, False))
    # Without the fused loss the fp32 logits of a 32k row (x 151,936 vocab) alone need ~65 GiB.
    assert plain.parts["loss"] > 60 * GIB > fused.parts["loss"] * 100
    assert plain.parts["activations"] > fused.parts["activations"]


def test_fit_keeps_a_margin_for_what_torch_does_not_count() -> None:
    est = estimate(QWEN05, z2(32769, 1, False))
    assert est.required > est.peak_allocated + CONTEXT_BYTES
    assert est.fits(80 * GIB) and not est.fits(est.peak_allocated)
    # An 8B model at 32k without checkpointing does not fit an 80 GiB GPU on 8 ranks.
    big = estimate(SHAPES["llama3.1-8b"], z2(32769, 1, False, world=8))
    assert not big.fits(80 * GIB)
    assert estimate(SHAPES["llama3.1-8b"], z2(32769, 1, True, world=8)).fits(80 * GIB)


def test_train_shape_from_a_rendered_config() -> None:
    packed = {
        "cutoff_len": 32768,
        "packing": True,
        "per_device_train_batch_size": 1,
        "bf16": True,
        "use_liger_kernel": True,
    }
    shape = train_shape_from_config(packed, 2, 8)
    assert (shape.tokens_per_row, shape.micro_batch, shape.gradient_checkpointing, shape.liger) == (
        32769,
        1,
        True,
        True,
    )
    padded = {"cutoff_len": 4096, "per_device_train_batch_size": 4, "disable_gradient_checkpointing": True}
    shape = train_shape_from_config(padded, 0, 1)
    assert (shape.tokens_per_row, shape.gradient_checkpointing, shape.liger, shape.bf16) == (4096, False, False, False)


def test_shape_from_a_checkpoint_config() -> None:
    assert shape_from_hf_config("qwen2.5-0.5b", QWEN25_05B) == QWEN05
    with pytest.raises(KeyError):
        shape_from_hf_config("broken", {"hidden_size": 8})
    assert isinstance(QWEN05.with_layers(4), ModelShape) and QWEN05.with_layers(4).num_layers == 4


# Issue 13's table: oda-sft's own bench on one H200 (qwen2.5-0.5b fixture v1), peaks in GiB.
# std rows are padded to the micro-batch's longest sample, at most the fixture's longest (rebuilt
# in tests/data/bench_h200_qwen05_issue13.json), rounded up to 8.
ISSUE13_PEAKS = [
    ("long raw/default", "long", True, 11.53),
    ("long fast", "long", False, 38.65),
    ("std raw/default", "std", True, 10.23),
    ("std fast", "std", False, 24.37),
]


@pytest.mark.parametrize(("label", "data", "ckpt", "measured"), ISSUE13_PEAKS, ids=[p[0] for p in ISSUE13_PEAKS])
def test_reproduces_issue_13s_peaks(label: str, data: str, ckpt: bool, measured: float) -> None:
    import json
    from pathlib import Path

    stored = Path(__file__).resolve().parents[1] / "data" / "bench_h200_qwen05_issue13.json"
    longest = max(json.loads(stored.read_text())["fixture"]["lengths"]["std"])
    train = z2(32769, 1, ckpt) if data == "long" else z2(-(-longest // 8) * 8, 4, ckpt)
    predicted = estimate(QWEN05, train).peak_allocated / GIB
    assert abs(predicted / measured - 1) <= 0.15, f"{label}: predicted {predicted:.2f} GiB, measured {measured}"


def test_partial_checkpointing_lies_between_all_and_none() -> None:
    shape = SHAPES["llama3.1-8b"]
    full = estimate(shape, z2(32769, 1, True, world=8)).peak_allocated
    none = estimate(shape, z2(32769, 1, False, world=8)).peak_allocated
    kept = [
        estimate(shape, TrainShape(32769, 1, 2, 8, True, True, True, kept_layers=k)).peak_allocated for k in (0, 5, 18)
    ]
    assert kept[0] == full < kept[1] < kept[2] < none
    # Each layer that keeps its activations adds one layer's activations minus its checkpointed input.
    per_layer = estimate(shape, z2(32769, 1, True, world=8)).parts["recomputed layer"]
    step = per_layer - shape.hidden_size * 2 * 32769
    assert kept[1] - kept[0] == 5 * step


def test_overlap_comm_double_buffers_the_reduce_bucket() -> None:
    shape = SHAPES["llama3.1-8b"]
    plain = estimate(shape, z2(4096, 1, False, world=8))
    overlapped = estimate(shape, TrainShape(4096, 1, 2, 8, False, True, True, overlap_comm=True))
    assert overlapped.parts["reduce bucket"] == 2 * plain.parts["reduce bucket"]
    one_rank = estimate(shape, TrainShape(4096, 1, 2, 1, False, True, True, overlap_comm=True))
    assert one_rank.parts["reduce bucket"] == plain.parts["reduce bucket"]  # the second buffer, on one rank too


def test_one_sample_per_micro_batch_is_what_lets_an_8b_rank_drop_checkpointing_on_80gb() -> None:
    shape = SHAPES["llama3.1-8b"]
    h100_free = (81559 - 512) * 1024**2
    recipe = estimate(shape, TrainShape(4096, 4, 2, 8, False, True, True, overlap_comm=True))
    split = estimate(shape, TrainShape(4096, 1, 2, 8, False, True, True, overlap_comm=True))
    assert not recipe.fits(h100_free) and split.fits(h100_free)
