"""Token lengths equal LLaMA-Factory's own preprocessing; the decision rule at its boundaries; an eval's answer lengths
equal AutoTokenizer's."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from oda_sft import tiny_model
from oda_sft.data.formats import alpaca
from oda_sft.data.measure.length_rule import Rule
from oda_sft.data.measure.lengths import measure_file
from oda_sft.data.measure.token_counter import LengthCounter
from oda_sft.presets import PRESETS

from length_fixtures import COLS, FIXTURES, sample_of, write_records
from realproc import offline_env


@pytest.fixture(scope="module")
def counter() -> LengthCounter:
    return LengthCounter.load(PRESETS["tiny"])


def test_lengths_equal_llamafactory_preprocessing(counter: LengthCounter) -> None:
    expected = _llamafactory_lengths(FIXTURES)
    assert counter.lengths([alpaca.turns(r, COLS) for r in FIXTURES]) == expected


@pytest.mark.parametrize("exact", [False, True])
def test_exactly_4096_tokens_is_not_over_but_4097_is(tmp_path: Path, counter: LengthCounter, exact: bool) -> None:
    at = sample_of(counter, 4096)
    assert _llamafactory_lengths([at]) == [4096]
    over = sample_of(counter, 4097)
    # 1 sample in 1: 4096 fits the standard cutoff, 4097 does not.
    r = measure_file(write_records(tmp_path / "a.json", [at]), counter, Rule(), COLS, exact=exact)
    assert (r.over, r.mode) == (0, "standard")
    r = measure_file(write_records(tmp_path / "b.json", [over]), counter, Rule(), COLS, exact=exact)
    assert (r.over, r.mode) == (1, "long")


def _llamafactory_lengths(records: list[dict[str, Any]]) -> list[int]:
    """LLaMA-Factory's own path: its alpaca converter, `default` template and supervised processor."""
    from llamafactory.data.converter import AlpacaDatasetConverter
    from llamafactory.data.parser import DatasetAttr
    from llamafactory.data.processor.supervised import SupervisedDatasetProcessor
    from llamafactory.data.template import get_template_and_fix_tokenizer
    from llamafactory.hparams import DataArguments
    from transformers import AutoTokenizer

    from oda_sft import tiny_model as tiny

    tokenizer = AutoTokenizer.from_pretrained(tiny.ensure_model())
    data_args = DataArguments(template="default", cutoff_len=10**9)  # no truncation
    template = get_template_and_fix_tokenizer(tokenizer, data_args)
    processor = SupervisedDatasetProcessor(template=template, tokenizer=tokenizer, processor=None, data_args=data_args)
    attr = DatasetAttr("file", "fixture")
    attr.join({"columns": COLS.entry_columns()})
    converter = AlpacaDatasetConverter(attr, data_args)
    out = []
    for record in records:
        full = {k: record.get(k) for k in alpaca.FIELDS}
        ex = converter(full)
        ids, _ = processor._encode_data_example(ex["_prompt"], ex["_response"], ex["_system"], None, [], [], [])
        out.append(len(ids))
    return out


ANSWERS = ["22", " 14\n", "207<|end_of_text|>", "The answer is 3.5 ± 0.1, 数学", "", "x" * 300, "\n\n  \t-7"]


def test_an_evals_answer_lengths_equal_autotokenizers_without_importing_transformers(tmp_path: Path) -> None:
    """eval counts each answer's tokens from the checkpoint's tokenizer.json with `tokenizers` itself: the counts
    AutoTokenizer gives (also where the file turns padding and truncation on), and neither transformers nor torch
    is imported (5 s of each eval)."""
    from transformers import AutoTokenizer

    model = tmp_path / "model"
    shutil.copytree(tiny_model.ensure_model(), model)
    data = json.loads((model / "tokenizer.json").read_text())
    data["padding"] = {"strategy": "BatchLongest", "direction": "Right", "pad_to_multiple_of": None, "pad_id": 0,
                       "pad_type_id": 0, "pad_token": "<|end_of_text|>"}  # fmt: skip
    data["truncation"] = {"direction": "Right", "max_length": 8, "strategy": "LongestFirst", "stride": 0}
    (model / "tokenizer.json").write_text(json.dumps(data))
    expected = [
        len(ids) for ids in AutoTokenizer.from_pretrained(str(model))(ANSWERS, add_special_tokens=False)["input_ids"]
    ]
    assert max(expected) > 8 and min(expected) == 0  # the file's truncation and padding would change these
    probe = (
        "import json, sys; from pathlib import Path; from oda_sft.eval.stats.questions import token_counter; "
        f"print(json.dumps([token_counter(Path(sys.argv[1]))({ANSWERS!r}), "
        "sorted(m for m in ('transformers', 'torch') if m in sys.modules)]))"
    )
    done = subprocess.run([sys.executable, "-c", probe, str(model)], capture_output=True, text=True, env=offline_env())
    assert done.returncode == 0, done.stderr[-3000:]
    assert json.loads(done.stdout) == [expected, []]
