"""The tokenized-cache key covers everything that changes tokens, checked against LLaMA-Factory's own
argument dataclasses; a staging copy is kept only while the data file is what the key was made from."""

from __future__ import annotations

import json
import os
from dataclasses import fields
from pathlib import Path
from typing import Any

import pytest

from oda_sft.data import tokenized_cache as tc
from oda_sft.data.registry.dataset_dir import DatasetDir
from oda_sft.train.plan import plan_train
from oda_sft.train.request import TrainRequest


@pytest.fixture(autouse=True)
def _own_cache(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(tc, "root", lambda: tmp_path / "tokenized")


def test_every_llamafactory_data_and_model_argument_is_classified() -> None:
    from llamafactory.hparams import DataArguments, FinetuningArguments, ModelArguments
    from transformers import Seq2SeqTrainingArguments

    data = {f.name for f in fields(DataArguments)}
    keyed, not_keyed, off = set(tc.DATA_KEYED), set(tc.DATA_NOT_KEYED), set(tc.CACHE_OFF)
    assert not (keyed & not_keyed or keyed & off or not_keyed & off)
    assert data - (keyed | not_keyed | off) == set(), "a DataArguments field nobody classified: keyed or not?"
    assert (keyed | not_keyed | off) - data == set(), "a classified field LLaMA-Factory no longer has"

    model = {f.name for f in fields(ModelArguments)}
    m_keyed, m_not = set(tc.MODEL_KEYED), set(tc.MODEL_NOT_KEYED)
    assert not m_keyed & m_not
    assert model - (m_keyed | m_not) == set(), "a ModelArguments field nobody classified: keyed or not?"
    assert (m_keyed | m_not) - model == set()

    others = {f.name for f in fields(FinetuningArguments)} | {f.name for f in fields(Seq2SeqTrainingArguments)}
    assert set(tc.OTHER_KEYED) | {"seed"} <= others


@pytest.fixture
def config(data_dir: Path, tmp_path: Path) -> dict[str, Any]:
    plan = plan_train(TrainRequest(model="tiny", dataset="oda_demo", dataset_dir=data_dir, output_root=tmp_path))
    return dict(plan.config)


def _key(config: dict[str, Any], **changes: Any) -> str:
    return tc.cache_key({**config, **changes}, "abc", {"file_name": "d.json"})


# A value unlike what any config holds, per type of default.
def _other(value: Any) -> Any:
    if isinstance(value, bool):
        return not value
    if isinstance(value, int | float):
        return value + 7
    return "something-else"


def test_every_keyed_setting_changes_the_key_and_the_others_do_not(config: dict[str, Any]) -> None:
    plain = _key(config)
    for name in (*tc.DATA_KEYED, *tc.MODEL_KEYED, *tc.OTHER_KEYED):
        assert _key(config, **{name: _other(config.get(name))}) != plain, name
    for name in (*tc.DATA_NOT_KEYED, *tc.MODEL_NOT_KEYED):
        if name != "model_name_or_path":
            assert _key(config, **{name: _other(config.get(name))}) == plain, name
    # The overrides a hostile test found still hitting: each is a different tokenization now.
    for override in ({"add_special_tokens": "<x>"}, {"add_tokens": "abc"}, {"split_special_tokens": True},
                     {"use_fast_tokenizer": False}):  # fmt: skip
        assert _key(config, **override) != plain, override


def test_the_seed_counts_only_where_llamafactory_samples_or_splits(config: dict[str, Any]) -> None:
    assert _key(config, seed=7) == _key(config, seed=8)
    assert _key(config, seed=7, val_size=0.1) != _key(config, seed=8, val_size=0.1)
    entry = {"file_name": "d.json", "num_samples": 50}
    assert tc.cache_key({**config, "seed": 7}, "abc", entry) != tc.cache_key({**config, "seed": 8}, "abc", entry)


def test_a_special_tokens_file_is_keyed_by_what_it_holds(config: dict[str, Any], tmp_path: Path) -> None:
    tokens = tmp_path / "tokens.yaml"
    tokens.write_text("'<a>': first\n")
    first = _key(config, new_special_tokens_config=str(tokens))
    tokens.write_text("'<b>': second\n")
    assert _key(config, new_special_tokens_config=str(tokens)) != first


def _remote_code_model(root: Path) -> Path:
    """A model directory whose tokenizer is its own code, as trust_remote_code loads it."""
    model = root / "model"
    (model / "additional_chat_templates").mkdir(parents=True)
    auto_map = {"AutoTokenizer": ["tokenization_mine.MineTokenizer", None]}
    (model / "tokenizer_config.json").write_text(json.dumps({"auto_map": auto_map}))
    (model / "config.json").write_text(json.dumps({"model_type": "mine", "auto_map": {}}))
    (model / "tokenization_mine.py").write_text("from .mine_utils import split\nclass MineTokenizer: ...\n")
    (model / "mine_utils.py").write_text("def split(text): return text.split()\n")  # imported by the tokenizer
    (model / "mine.tiktoken").write_text("IQ== 0\n")  # a vocabulary file only the class names
    (model / "additional_chat_templates" / "tools.jinja").write_text("{{ messages }}")
    (model / "model.safetensors").write_bytes(b"weights")
    (model / "model.safetensors.index.json").write_text("{}")
    return model


def test_every_file_that_shapes_tokenization_is_keyed_and_the_weights_are_not(
    config: dict[str, Any], tmp_path: Path
) -> None:
    model = _remote_code_model(tmp_path)
    config = {**config, "model_name_or_path": str(model), "trust_remote_code": True}
    assert tc.off_reason(config) is None
    keyed = _key(config)
    for name in ("tokenization_mine.py", "mine_utils.py", "mine.tiktoken", "config.json",
                 "additional_chat_templates/tools.jinja", "tokenizer_config.json"):  # fmt: skip
        file = model / name
        before = file.read_bytes()
        file.write_bytes(before + b"\n# edited\n")
        assert _key(config) != keyed, f"an edited {name} still hits the cache"
        file.write_bytes(before)
        assert _key(config) == keyed
    (model / "model.safetensors").write_bytes(b"trained further")
    (model / "model.safetensors.index.json").write_text('{"weight_map": {}}')
    assert _key(config) == keyed  # the weights do not change tokens


def test_tokenizer_code_from_another_repository_turns_the_cache_off(config: dict[str, Any], tmp_path: Path) -> None:
    model = _remote_code_model(tmp_path)
    auto_map = {"AutoTokenizer": ["someone/their-model--tokenization_theirs.TheirTokenizer", None]}
    (model / "tokenizer_config.json").write_text(json.dumps({"auto_map": auto_map}))
    config = {**config, "model_name_or_path": str(model)}
    assert tc.off_reason({**config, "trust_remote_code": False}) is None  # then the code is never run
    reason = tc.off_reason({**config, "trust_remote_code": True}) or ""
    assert reason.startswith("tokenized cache off: ") and "another repository" in reason


@pytest.mark.parametrize("setting", [{"streaming": True}, {"eval_dataset": "x"}, {"tokenized_path": "/mine"}])
def test_the_cache_stays_out_of_the_way_of_settings_it_cannot_key(config: dict[str, Any], setting: Any) -> None:
    assert tc.off_reason(config) is None
    assert (tc.off_reason({**config, **setting}) or "").startswith("tokenized cache off: ")


def _complete(path: Path) -> None:
    (path / "train").mkdir(parents=True)
    (path / "dataset_dict.json").write_text(json.dumps({"splits": ["train"]}))
    (path / "train" / "state.json").write_text("{}")


def test_a_staging_copy_is_kept_only_while_the_file_is_what_it_was_keyed_on(
    config: dict[str, Any], data_dir: Path
) -> None:
    dataset = DatasetDir.load(data_dir).resolve("oda_demo")
    entry = tc.prepare(config, dataset)
    assert not entry.hit and json.loads(entry.source.read_text())["sha256"] == dataset.sha256
    _complete(entry.staging)  # as LLaMA-Factory leaves it
    assert tc.promote(entry) == tc.Promotion(True) and tc.is_complete(entry.path)
    assert not entry.source.exists()
    assert tc.prepare(config, dataset).hit

    # Another config, and the file is replaced (`data add --force`) while the run preprocesses.
    config = {**config, "cutoff_len": 1024}
    entry = tc.prepare(config, dataset)
    _complete(entry.staging)
    new = data_dir / "new.json"
    new.write_text(json.dumps([{"instruction": "other", "output": "content"}]))
    os.replace(new, data_dir / "oda_demo.json")
    kept = tc.promote(entry)
    assert not kept.saved and kept.note is not None and "changed while the run preprocessed it" in kept.note
    assert not entry.path.exists() and not entry.staging.exists() and not entry.source.exists()


def test_a_staging_copy_without_a_record_of_its_source_is_not_trusted(config: dict[str, Any], data_dir: Path) -> None:
    dataset = DatasetDir.load(data_dir).resolve("oda_demo")
    entry = tc.prepare(config, dataset)
    _complete(entry.staging)
    entry.source.unlink()  # e.g. left by an older oda-sft
    kept = tc.promote(entry)
    assert not kept.saved and "has no record of the content it was made from" in (kept.note or "")
    assert not entry.path.exists()
