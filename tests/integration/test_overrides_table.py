"""The checked-in table of LLaMA-Factory's argument fields is what the installed LLaMA-Factory has
(slow: it imports llamafactory.hparams, and with it torch)."""

from __future__ import annotations

import json

from oda_sft.train import overrides


def test_the_fields_table_matches_the_installed_llamafactory() -> None:
    generated = overrides.generate()
    kept = json.loads(overrides.TABLE.read_text(encoding="utf-8"))
    missing, extra = sorted(set(generated) - set(kept)), sorted(set(kept) - set(generated))
    changed = sorted(k for k in set(generated) & set(kept) if generated[k] != kept[k])
    assert not (missing or extra or changed), (
        f"{overrides.TABLE.name} is out of date (missing {missing}, gone {extra}, changed {changed}): "
        "run `python -m oda_sft.train.overrides` and review the diff"
    )
    # The fields the recipe itself sets are all there, with the types the recipe gives them.
    assert kept["learning_rate"]["kinds"] == ["float"] and kept["cutoff_len"]["kinds"] == ["int"]
    assert "cosine" in kept["lr_scheduler_type"]["choices"] and kept["use_liger_kernel"]["kinds"] == ["bool"]
    # Names LLaMA-Factory looks up in its registries: the templates the presets use among them.
    assert {"default", "llama3", "qwen3"} <= set(kept["template"]["choices"])
    assert "qwen" in kept["tool_format"]["choices"]
