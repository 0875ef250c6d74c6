"""A preset is one record (oda_sft/catalog.py): every registry derives from it, and each is held to it here.

The eval settings ids below were computed before the evaluation settings moved to eval profiles (issue 24):
they are recorded in users' manifests, so a change of any of them would make every earlier eval look like
other settings (refused without --force)."""

from __future__ import annotations

import pytest

from oda_sft.eval import render
from oda_sft.eval.benchmarks import PRESETS as EVAL_PRESETS

DIGEST = "0" * 64  # a chat template's sha256 (any fixed value: the ids only have to stay put)
# (preset, suite or era) -> settings id, for the preset's benchmarks of that suite. The tiny preset's general
# and all suites are left out: its benchmark set grows (DROP), which is a change of settings.
PINNED = {
    ("llama", "general"): "6d00604cfffc",
    ("llama", "math"): "b39e1ca92858",
    ("llama", "code"): "5b895cbbb60b",
    ("llama", "reasoning"): "ea0342847c3e",
    ("llama", "all"): "65f30fcbc520",
    ("llama", "2025"): "1c0521a18597",
    ("qwen", "general"): "0e8ba46c63db",
    ("qwen", "math"): "a6f734f7686c",
    ("qwen", "code"): "f32828b27fea",
    ("qwen", "reasoning"): "2d310e384f08",
    ("qwen", "all"): "7e23b9b1cee3",
    ("qwen", "2025"): "97fdff9921be",
    ("qwen3", "general"): "9e8e432c43ab",
    ("qwen3", "math"): "89fbb20c3fbe",
    ("qwen3", "code"): "63b79ba83000",
    ("qwen3", "reasoning"): "c8ca0b025646",
    ("qwen3", "all"): "4bb268571e75",
    ("qwen3", "2025"): "84ccfa810c3a",
    ("tiny", "math"): "231d0d159aba",
    ("tiny", "2025"): "26d89bc1581c",  # its math suite in the 2025 era
}


@pytest.mark.parametrize(("name", "suite"), sorted(PINNED))
def test_eval_settings_ids_of_the_shipped_presets_are_unchanged(name: str, suite: str) -> None:
    preset = EVAL_PRESETS[name]
    era = "2025" if suite == "2025" else "2026"
    domain = ("all" if name != "tiny" else "math") if suite == "2025" else suite
    chosen = tuple(b for b in preset.benchmarks if domain == "all" or b.domain == domain)
    settings = render.settings_of(preset, domain, chosen, DIGEST, era)  # type: ignore[arg-type]
    assert render.settings_id(settings) == PINNED[(name, suite)]
