"""Recipe eras: which LLaMA-Factory's behaviour a run reproduces (docs/recipe_eras.md lists every difference).

ODA's published leaderboard of July 2025 was trained with LLaMA-Factory 0.9.2, the version its training README
installed until January 2026 (OpenDataArena-Tool 97ae150); oda-sft runs 0.9.4. Three things of 0.9.2 change the
tokens this recipe trains on, and the 2025 era brings them back under 0.9.4 (train/patches/, as oda-sft's other
trainer corrections):
  - the `default` template without an EOS token after the user and system turns (0.9.4 adds one);
  - packed sequences (long-CoT) without position_ids, so positions run on across a pack (0.9.4 restarts them);
  - with packing, cutoff_len as written (0.9.4 lowers it by one).
At evaluation, ODA's scripts of that time rewrote the checkpoint's chat template to `Human: {q}\\nAssistant:`
(eval/template.py holds it). The current era, 2026, is 0.9.4 as it is.

A run records its era in its manifest as `recipe_era`; a manifest without it reads as 2026.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal, cast

from oda_sft.errors import RunStateError

RecipeEra = Literal["2025", "2026"]
CURRENT: RecipeEra = "2026"
MANIFEST_KEY = "recipe_era"
# The LLaMA-Factory template name the 2025 era trains with: registered in the trainer by
# train/patches/template_2025.py, absent from an unpatched LLaMA-Factory.
TEMPLATE_2025 = "oda_default_2025"


@dataclass(frozen=True)
class Era:
    name: RecipeEra
    template: str  # the LLaMA-Factory template it trains with, in place of the recipe's `default`
    patches: tuple[str, ...]  # trainer patches (train/patches/) that reproduce it under 0.9.4
    summary: str


ERAS: dict[RecipeEra, Era] = {
    "2025": Era(
        "2025",
        TEMPLATE_2025,
        ("template_2025", "packing_2025", "cutoff_2025"),
        "ODA's published leaderboard (July 2025): LLaMA-Factory 0.9.2's tokens (no EOS after user and system "
        "turns; packed positions not restarted; packs of the full cutoff_len), evaluated with the "
        "`Human: {q}\\nAssistant:` template of the time",
    ),
    "2026": Era("2026", "default", (), "the current recipe: LLaMA-Factory 0.9.4 as it is"),
}
ERA_NAMES: tuple[RecipeEra, ...] = tuple(ERAS)
HELP = (
    "Recipe era: 2026 (default) trains and evaluates as LLaMA-Factory 0.9.4 does today; 2025 reproduces the "
    "tokens of ODA's published July 2025 leaderboard (LLaMA-Factory 0.9.2). Runs of different eras are not "
    "comparable (README: Recipe eras)."
)
# Presets the 2025 era cannot train: LLaMA-Factory 0.9.2 allows transformers <= 4.49.0 (requirements.txt),
# and transformers has had Qwen3 only since 4.51.0.
UNSUPPORTED_2025 = {"qwen3": "LLaMA-Factory 0.9.2 (transformers <= 4.49) cannot load Qwen3 (transformers >= 4.51)"}


def era_of(record: dict[str, Any] | None, where: str = "the run's manifest") -> RecipeEra:
    """The era a run's manifest records; 2026 when it records none (every run before eras existed)."""
    value = (record or {}).get(MANIFEST_KEY, CURRENT)
    if value not in ERAS:
        raise RunStateError(f"{where} records {MANIFEST_KEY} {value!r}, an era this oda-sft does not know "
                            f"({', '.join(ERA_NAMES)}): use the oda-sft that trained it")  # fmt: skip
    return cast(RecipeEra, value)
