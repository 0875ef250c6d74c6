"""Benchmark data is looked for where OpenCompass looks (get_data_path, download_dataset), before anything starts.
tests/integration/test_eval_data_real.py holds these rules to OpenCompass's own functions."""

from __future__ import annotations

import shlex
from pathlib import Path

import pytest

from oda_sft.errors import UsageError
from oda_sft.eval import benchmark_data as bd
from oda_sft.eval.benchmarks import BY_NAME, PRESETS

TABLE = bd.Tables(
    {"opencompass/gsm8k": {"local": "./data/gsm8k/"}},
    {"/gsm8k/": {"url": "http://x/gsm8k.zip", "md5": "0"}, "/drop_simple_eval/": {"url": "http://x/d.zip", "md5": "0"}},
)
DROP = bd.Need("drop", "DropOpenAIDataset", "data/drop_simple_eval/dev.jsonl")
GSM8K = bd.Need("gsm8k", "GSM8KDataset", "opencompass/gsm8k")


def test_a_local_mode_path_is_joined_to_the_cache_and_an_id_goes_through_the_table(tmp_path: Path) -> None:
    env = {"COMPASS_DATA_CACHE": str(tmp_path / "c"), "HOME": str(tmp_path / "h")}
    assert bd.locate(DROP, TABLE, None, env) == (
        [tmp_path / "c/data/drop_simple_eval/dev.jsonl"],
        f"{tmp_path}/c/data/drop_simple_eval/dev.jsonl",
    )
    looked, data_path = bd.locate(GSM8K, TABLE, None, env)
    assert looked == [tmp_path / "c/data/gsm8k"] and bd.download_name(data_path, TABLE) == "/gsm8k/"


def test_without_a_cache_the_work_dir_then_the_home_cache(tmp_path: Path) -> None:
    env = {"HOME": str(tmp_path / "h")}
    looked, _ = bd.locate(DROP, TABLE, tmp_path / "w", env)
    home = tmp_path / "h/.cache/opencompass/data/drop_simple_eval/dev.jsonl"
    assert looked == [tmp_path / "w/data/drop_simple_eval/dev.jsonl", home]
    # a Slurm login node plans before the work dir exists: only the home cache
    assert bd.locate(DROP, TABLE, None, env)[0] == looked[1:]
    assert bd.locate(bd.Need("x", "GPQADataset", "/abs/gpqa"), TABLE, None, env)[0] == [Path("/abs/gpqa")]


def test_needs_come_from_the_forks_record() -> None:
    qwen3 = bd.needs(PRESETS["qwen3"], PRESETS["qwen3"].benchmarks)
    repos = {n.hf_repo for n in qwen3 if n.hf_repo}
    assert repos == {"MathArena/hmmt_feb_2025", "MathArena/cmimc_2025", "MathArena/brumo_2025", "KbsdJames/Omni-MATH"}
    assert DROP in bd.needs(PRESETS["tiny"], (BY_NAME["drop"],))
    assert bd.needs(PRESETS["tiny"], (BY_NAME["arithmetic"],)) == []  # shipped with oda-sft
    every = {n.dataset_class for p in PRESETS.values() for n in bd.needs(p, p.benchmarks)}
    assert every <= bd.LOCAL_MODE | bd.BY_ID | bd.CWD_ONLY | set(bd.HF_REPOS), "a loader nobody read"


def test_the_table_is_read_as_data_never_run(tmp_path: Path) -> None:
    utils = tmp_path / "opencompass" / "utils"
    utils.mkdir(parents=True)
    (utils / "datasets_info.py").write_text(
        f"open({str(tmp_path / 'ran')!r}, 'w')\nDATASETS_MAPPING = {{'a/b': {{'local': './data/b'}}}}\n"
        "DATASETS_URL = {'/b': {'url': 'u', 'md5': 'm'}}\n"
    )
    table = bd.tables(tmp_path / "opencompass")
    assert table.mapping == {"a/b": {"local": "./data/b"}} and table.urls == {"/b": {"url": "u", "md5": "m"}}
    assert not (tmp_path / "ran").exists()


def _check(tmp_path: Path, env: dict[str, str], names: tuple[str, ...], preset: str = "qwen3") -> None:
    """As eval checks it, with an OpenCompass whose download table has DROP's entry (and no CaLM, like the real)."""
    package = tmp_path / "pkg" / "opencompass"
    if not package.exists():
        (package / "utils").mkdir(parents=True)
        (package / "utils" / "datasets_info.py").write_text(f"DATASETS_MAPPING = {{}}\nDATASETS_URL = {TABLE.urls!r}\n")
    chosen = tuple(BY_NAME[n] for n in names)
    bd.check(package, PRESETS[preset], chosen, None, Path("/oc/bin/opencompass"), env)


def test_missing_data_is_one_line_with_the_command_that_fetches_it(tmp_path: Path) -> None:
    env = {"COMPASS_DATA_CACHE": str(tmp_path / "c"), "HOME": str(tmp_path), "HF_HOME": str(tmp_path / "hf")}
    with pytest.raises(UsageError) as caught:
        _check(tmp_path, env, ("drop", "hmmt2025", "calm"))
    line = str(caught.value)
    assert "\n" not in line and "drop (data/drop_simple_eval/dev.jsonl)" in line and "MathArena/hmmt_feb_2025" in line
    command = line.split("`")[1]
    assert shlex.split(command) == ["oda-sft", "eval-data", "fetch", "--model", "qwen3", "--benchmarks",
                                    "drop,hmmt2025", "--cache", str(tmp_path / "c"), "--opencompass",
                                    "/oc/bin/opencompass"]  # fmt: skip
    assert "no download for calm" in line  # calm.py reads ./data/calm; OpenCompass's table has no entry
    # found: nothing to say
    (tmp_path / "c/data/drop_simple_eval").mkdir(parents=True)
    (tmp_path / "c/data/drop_simple_eval/dev.jsonl").write_text("{}\n")
    (tmp_path / "hf/datasets/MathArena___hmmt_feb_2025/default/0.0.0/abc").mkdir(parents=True)
    _check(tmp_path, env, ("drop", "hmmt2025"))
    # OpenCompass loading from ModelScope or the Hub: not its cache's business
    _check(tmp_path, {**env, "DATASET_SOURCE": "ModelScope"}, ("gsm8k",))


def test_a_hub_dataset_counts_only_where_datasets_reads_it_offline(tmp_path: Path) -> None:
    """datasets 3.6.0 offline reads HF_DATASETS_CACHE/<owner>___<snake-cased name>/<config>/<version>/<hash>/ and
    nothing else (load.py:1359-1368; tests/integration/test_eval_omni_real.py loads such a copy for real)."""
    env = {"COMPASS_DATA_CACHE": str(tmp_path / "c"), "HOME": str(tmp_path), "HF_HOME": str(tmp_path / "hf")}
    not_read = [
        "hf/hub/datasets--KbsdJames--Omni-MATH/snapshots/abc",  # the Hub cache: offline, datasets never looks
        "hf/datasets/KbsdJames___Omni-MATH/default/0.0.0/abc",  # the repo's own spelling: the folder is snake-cased
        "hf/datasets/KbsdJames___omni-math/default",  # no prepared copy under it
    ]
    for folder in not_read:
        (tmp_path / folder).mkdir(parents=True)
        with pytest.raises(UsageError, match="KbsdJames/Omni-MATH"):
            _check(tmp_path, env, ("omni_math",))
    (tmp_path / "hf/datasets/KbsdJames___omni-math/default/0.0.0/abc").mkdir(parents=True)
    _check(tmp_path, env, ("omni_math",))
    # HF_DATASETS_CACHE wins over HF_HOME, as in datasets' config.py
    with pytest.raises(UsageError, match="KbsdJames/Omni-MATH"):
        _check(tmp_path, {**env, "HF_DATASETS_CACHE": str(tmp_path / "elsewhere")}, ("omni_math",))


def test_the_datasets_cache_is_found_as_datasets_spells_it(tmp_path: Path) -> None:
    """datasets 3.6.0 config.py:153-159: HF_HOME defaults to $XDG_CACHE_HOME/huggingface, `~` is expanded
    (config.py:156, load.py:1359); a relative cache is relative to the work dir OpenCompass runs in."""
    env = {"COMPASS_DATA_CACHE": str(tmp_path / "c"), "HOME": str(tmp_path)}
    prepared = "KbsdJames___omni-math/default/0.0.0/abc"
    (tmp_path / "hfd" / prepared).mkdir(parents=True)
    _check(tmp_path, {**env, "HF_DATASETS_CACHE": "~/hfd"}, ("omni_math",))
    (tmp_path / "hf" / "datasets" / prepared).mkdir(parents=True)
    _check(tmp_path, {**env, "HF_HOME": "~/hf"}, ("omni_math",))
    (tmp_path / "xdg" / "huggingface" / "datasets" / prepared).mkdir(parents=True)
    _check(tmp_path, {**env, "XDG_CACHE_HOME": str(tmp_path / "xdg")}, ("omni_math",))
    with pytest.raises(UsageError, match="KbsdJames/Omni-MATH"):
        _check(tmp_path, env, ("omni_math",))  # ~/.cache/huggingface/datasets: empty
    work = tmp_path / "work"
    place = bd.hf_datasets_place("KbsdJames/Omni-MATH", {**env, "HF_DATASETS_CACHE": "rel"}, work)
    assert place == work / "rel" / "KbsdJames___omni-math"


def test_calm_is_linked_from_the_cache_into_the_work_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COMPASS_DATA_CACHE", str(tmp_path / "c"))
    monkeypatch.setenv("HOME", str(tmp_path))
    calm = (BY_NAME["calm"],)
    needs = bd.needs(PRESETS["llama"], calm)
    for need in needs:
        assert need.path is not None
        target = tmp_path / "c" / need.path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text("[]")
    _check(tmp_path, {"COMPASS_DATA_CACHE": str(tmp_path / "c"), "HOME": str(tmp_path)}, ("calm",), "llama")
    work = tmp_path / "w"
    assert bd.link_cwd_data(PRESETS["llama"], calm, work) == [work / "data" / "calm"]
    assert (work / "data/calm").resolve() == (tmp_path / "c/data/calm").resolve()
    assert all((work / n.path).is_file() for n in needs if n.path)
    assert bd.link_cwd_data(PRESETS["llama"], calm, work) == []  # there already: left alone
