"""A preset is one record (oda_sft/presets.py): every registry derives from it, and each is held to it here
(tests/cli/test_add_preset.py adds one and shows that nothing else has to change).

The eval settings ids below were computed before the evaluation settings moved to eval profiles (issue 24):
they are recorded in users' manifests, so a change of any of them would make every earlier eval look like
other settings (refused without --force)."""

from __future__ import annotations

import json
from dataclasses import replace
from importlib import resources
from pathlib import Path

import pytest

from oda_sft import eras
from oda_sft.cli.data import INSPECT_MODEL
from oda_sft.cost import table
from oda_sft.errors import UsageError
from oda_sft.eval import benchmarks, render
from oda_sft.eval.benchmarks import PRESETS as EVAL_PRESETS
from oda_sft.eval.oda_site.rules import MODEL_ROWS
from oda_sft.presets import PRESETS, preset_help, preset_names
from oda_sft.throughput.spec import SHAPES
from oda_sft.train.render import load_template

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
    chosen = preset.suite(domain)
    settings = render.settings_of(preset, domain, chosen, DIGEST, era)  # type: ignore[arg-type]
    assert render.settings_id(settings) == PINNED[(name, suite)]


@pytest.mark.parametrize("name", list(PRESETS))
def test_every_registry_holds_every_preset(name: str) -> None:
    preset = PRESETS[name]
    evaluated = benchmarks.for_preset(preset)  # its evaluation: its profile, under its own name
    assert (evaluated.name, evaluated.profile) == (name, preset.eval_profile) and evaluated.benchmarks
    assert EVAL_PRESETS[name] == evaluated
    for mode in preset.modes:  # its recipe file, for every mode it has
        assert load_template(preset, mode)
    assert SHAPES[preset.shape.name] == (preset.shape, name)  # bench and estimate build its shape
    assert f"{name} ({preset.base_model or 'embedded tiny model'})" in preset_help()
    assert name in preset_names().split(", ")


def test_no_two_presets_share_a_run_dir_or_a_shape() -> None:
    """save_name is the first component of a run's output_dir: two presets with one would train into each
    other's runs; a shape name picks the preset bench trains it with."""
    assert len({p.save_name for p in PRESETS.values()}) == len(PRESETS)
    assert len({p.shape.name for p in PRESETS.values()}) == len(PRESETS)


def test_every_table_keyed_by_preset_names_only_presets() -> None:
    """The tables that hold some presets (not all): each key is a preset, so a rename or removal fails here."""
    shipped = Path(str(resources.files("oda_sft.cost") / table.TABLE_FILE))
    measured = {m["preset"] for m in json.loads(shipped.read_text(encoding="utf-8"))["measurements"]}
    for keys in (set(eras.UNSUPPORTED_2025), set(MODEL_ROWS), {INSPECT_MODEL}, measured):
        assert keys <= set(PRESETS), keys - set(PRESETS)


def test_a_preset_naming_an_unknown_eval_profile_is_one_clear_error() -> None:
    with pytest.raises(UsageError, match=r"names eval profile 'nope'.*use one of llama_qwen, qwen3, tiny"):
        benchmarks.for_preset(replace(PRESETS["qwen"], eval_profile="nope"))


def test_every_profile_is_used_and_every_benchmark_config_belongs_to_a_profile() -> None:
    assert {p.eval_profile for p in PRESETS.values()} == set(benchmarks.PROFILES)
    assert all(set(b.configs) <= set(benchmarks.PROFILES) for b in benchmarks.BENCHMARKS)
    assert all(name == p.profile for name, p in benchmarks.PROFILES.items())


def test_the_tiny_suites_run_what_docs_eval_md_says() -> None:
    """`--suite general` is DROP alone, `all` the arithmetic benchmark; IFEval (nltk's punkt_tab, fetched from
    GitHub) and Omni-MATH (a judge server) run only when named in --benchmarks."""
    tiny = EVAL_PRESETS["tiny"]
    assert [b.name for b in tiny.suite("general")] == ["drop"]
    assert [b.name for b in tiny.suite("all")] == ["arithmetic"]
    assert {"ifeval", "omni_math"} <= {b.name for b in tiny.benchmarks}
