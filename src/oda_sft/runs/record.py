"""The part of a run's manifest that says what the run is: model, data, mode, seed, config, cache.

train/run.py gathers the facts from its plan; this module owns their shape in oda_sft_run.json, so
`runs`, the sweep and a rerun read one layout.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from oda_sft.data.registry.dataset_dir import ResolvedDataset
from oda_sft.data.registry.hashing import file_sha256
from oda_sft.eras import CURRENT, MANIFEST_KEY, RecipeEra


@dataclass(frozen=True)
class RunFacts:
    preset: str
    model_path: str
    dataset: ResolvedDataset
    mode: str
    mode_source: str
    mode_reason: str
    seed: int
    profile: str
    resumable: bool
    patches: tuple[str, ...]
    config_path: Path  # the config node rank 0 keeps
    tokenized_cache: dict[str, Any] | None  # {"key", "hit"} when the cache is used
    output_dir: Path
    nnodes: int
    rerun: str  # the whole command that starts this run again
    recipe_era: RecipeEra = CURRENT  # whose tokens it trained on (oda_sft/eras.py)
    tracker: dict[str, Any] | None = None  # runs/tracker.py record: the tracker the trainer logs to


def run_record(facts: RunFacts) -> dict[str, Any]:
    dataset = facts.dataset
    return {
        "model": {"preset": facts.preset, "path": facts.model_path},
        "dataset": {
            "name": dataset.name,
            "dir": str(dataset.dir),
            "file": str(dataset.file) if dataset.file else None,
            "sha256": dataset.sha256,
            # the source commit a fetched catalog dataset was converted from
            "revision": dataset.revision,
        },
        "mode": {"mode": facts.mode, "source": facts.mode_source, "reason": facts.mode_reason},
        "seed": facts.seed,
        "profile": facts.profile,
        "resumable": facts.resumable,
        "patches": list(facts.patches),
        "config": {"path": str(facts.config_path), "sha256": file_sha256(facts.config_path)},
        "tokenized_cache": facts.tokenized_cache,
        "output_dir": str(facts.output_dir),
        "nnodes": facts.nnodes,
        "rerun": facts.rerun,
        MANIFEST_KEY: facts.recipe_era,
        "tracker": facts.tracker,
    }
