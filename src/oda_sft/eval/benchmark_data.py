"""Benchmark data, looked for before OpenCompass starts, where OpenCompass itself would look.

OpenCompass opens a benchmark's files in each task, after the model is loaded, and downloads what it cannot find
from its own servers; GPU nodes are often offline. So the eval and the Slurm eval job check first, here, without
importing OpenCompass (it takes seconds): the data paths come from data/fork_record.json (each config's dataset
class and path, read off the fork), and the id table from the install's own utils/datasets_info.py, parsed as
data. The rules copy OpenCompass's `get_data_path` and `download_dataset` (opencompass/utils/datasets.py, lines
10-109 in PyPI 0.5.4 and in ODA's fork at a58c9cb; docs/eval.md names the two differences). `oda-sft eval-data
fetch` downloads what is missing through those functions themselves, with their md5 checks.
"""

from __future__ import annotations

import ast
import functools
import json
import os
import re
import shlex
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from oda_sft.errors import UsageError
from oda_sft.eval.benchmarks import Benchmark, EvalPreset

RECORD = Path(__file__).with_name("data") / "fork_record.json"
DEFAULT_CACHE = "~/.cache/opencompass/"  # OpenCompass's DEFAULT_DATA_FOLDER

# How each loader of the fork's configs (opencompass/datasets/*.py at a58c9cb) reaches its data.
# get_data_path(path, local_mode=True): the path is joined to the cache as written.
LOCAL_MODE = frozenset({"IFEvalDataset", "DropOpenAIDataset", "GPQADataset"})
# get_data_path(path): the path is an id of DATASETS_MAPPING, whose 'local' entry is joined to the cache.
BY_ID = frozenset({
    "ARCDataset", "OlympiadBenchDataset", "AGIEvalDataset_v2", "Aime2024Dataset", "CustomDataset", "BBHDataset",
    "GSM8KDataset", "HumanevalDataset", "korbenchDataset", "LCBCodeExecutionDataset", "LCBCodeGenerationDataset",
    "LCBTestOutputPredictionDataset", "MATHDataset", "MMLUProDataset", "SanitizedMBPPDataset",
})  # fmt: skip
# No get_data_path at all: the path is opened as written, relative to the directory OpenCompass runs in
# (datasets/calm/calm.py). oda-sft runs it in the eval's work dir, which does not exist before the eval: a copy in
# the cache is linked into it there (link_cwd_data), so these are looked for in the cache too.
CWD_ONLY = frozenset({"CaLMDataset"})
# No path: datasets.load_dataset(REPO) from the Hugging Face Hub (datasets/math_arena.py, datasets/omni_math.py).
HF_REPOS = {
    "Hmmt2025Dataset": "MathArena/hmmt_feb_2025",
    "Cmimc2025Dataset": "MathArena/cmimc_2025",
    "Brumo2025Dataset": "MathArena/brumo_2025",
    "OmniMathDataset": "KbsdJames/Omni-MATH",
}


@dataclass(frozen=True)
class Need:
    """One file or directory a chosen benchmark's loader opens, or one Hub dataset it loads."""

    benchmark: str
    dataset_class: str
    path: str | None  # as the config writes it
    hf_repo: str | None = None

    @property
    def local_mode(self) -> bool:
        return self.dataset_class in LOCAL_MODE or self.dataset_class in CWD_ONLY

    def as_json(self) -> dict[str, Any]:
        return {"benchmark": self.benchmark, "path": self.path, "local_mode": self.local_mode, "hf_repo": self.hf_repo}


@dataclass(frozen=True)
class Missing:
    need: Need
    looked: tuple[str, ...]  # where it was looked for
    download: str | None  # the name in OpenCompass's download table that fetches it; None: none does

    @property
    def fetchable(self) -> bool:
        return self.need.hf_repo is not None or self.download is not None


@functools.cache
def _record() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(RECORD.read_text(encoding="utf-8"))
    return loaded


def needs(preset: EvalPreset, chosen: tuple[Benchmark, ...]) -> list[Need]:
    """What the chosen benchmarks' configs load, from the fork's record; oda-sft's own data is shipped with it."""
    found: dict[tuple[str, str | None], Need] = {}
    for bench in chosen:
        entry = _record()["configs"].get(preset.config(bench)) if not bench.custom else None
        for dataset in (entry or {}).get("datasets", []):
            cls, path = dataset["dataset"], dataset["path"]
            need = Need(bench.name, cls, path, HF_REPOS.get(cls))
            found.setdefault((cls, path), need)
    return list(found.values())


@dataclass(frozen=True)
class Tables:
    mapping: Mapping[str, Mapping[str, Any]]  # DATASETS_MAPPING: id -> {'local': path, 'ms_id', 'hf_id'}
    urls: Mapping[str, Mapping[str, str]]  # DATASETS_URL: name -> {'url', 'md5'}


@functools.cache
def tables(package: Path) -> Tables:
    """The install's utils/datasets_info.py, read as the literals it is (never executed)."""
    found: dict[str, Any] = {}
    try:
        tree = ast.parse((package / "utils" / "datasets_info.py").read_text(encoding="utf-8"))
    except (OSError, SyntaxError):
        return Tables({}, {})
    for node in tree.body:
        if not (isinstance(node, ast.Assign) and len(node.targets) == 1):
            continue
        name = node.targets[0]
        if isinstance(name, ast.Name) and name.id in ("DATASETS_MAPPING", "DATASETS_URL"):
            try:
                found[name.id] = ast.literal_eval(node.value)
            except ValueError:
                continue
    return Tables(found.get("DATASETS_MAPPING", {}), found.get("DATASETS_URL", {}))


def _join(*parts: str) -> str:
    return os.path.join(*parts)


def locate(need: Need, table: Tables, work_dir: Path | None, env: Mapping[str, str]) -> tuple[list[Path], str]:
    """Where OpenCompass looks for `need`, in its order, and the path it then downloads to (get_data_path).
    A relative place is relative to the work dir OpenCompass runs in; unknown (None): not looked at."""
    assert need.path is not None
    home = Path(env.get("HOME") or Path.home())
    default = DEFAULT_CACHE.replace("~", str(home), 1)
    if need.path.startswith("/"):
        return [Path(need.path)], need.path
    cache = env.get("COMPASS_DATA_CACHE", "")
    local = need.path if need.local_mode else str(table.mapping.get(need.path, {}).get("local", need.path))
    data_path = _join(cache, local)
    places = [data_path, _join(default, data_path)]  # the second is the first when the cache is absolute
    if need.dataset_class in CWD_ONLY:
        places = [need.path, *places]
    out: list[Path] = []
    for place in places:
        path = Path(os.path.normpath(place))
        if not path.is_absolute():
            if work_dir is None:
                continue
            path = work_dir / path
        if path not in out:
            out.append(path)
    return out, data_path


def download_name(data_path: str, table: Tables) -> str | None:
    """The entry of DATASETS_URL that download_dataset picks: the last name contained in the path."""
    chosen = None
    for name in table.urls:
        if name in data_path:
            chosen = name
    return chosen


def _snake(name: str) -> str:
    """datasets' camelcase_to_snakecase (datasets 3.6.0 naming.py:23-38): the cache folder's spelling of a name."""
    name = re.sub(r"([A-Z]+)([A-Z][a-z])", r"\1_\2", name)
    return re.sub(r"([a-z\d])([A-Z])", r"\1_\2", name).lower()


def _expanduser(path: str, env: Mapping[str, str]) -> str:
    """os.path.expanduser for `~` and `~/...`, with env's HOME."""
    if path == "~" or path.startswith("~/"):
        return str(Path(env.get("HOME") or Path.home())) + path[1:]
    return path


def hf_datasets_place(repo: str, env: Mapping[str, str], work_dir: Path | None = None) -> Path:
    """Where datasets.load_dataset(repo) finds a copy offline (datasets 3.6.0 load.py, CachedDatasetModuleFactory,
    lines 1359-1368): HF_DATASETS_CACHE/<owner>___<snake-cased name>/<config>/<version>/<hash>/. Only there: with
    HF_HUB_OFFLINE it never reads the Hub cache's snapshot (it raises `Couldn't reach ... on the Hub`). The cache
    as datasets' config.py (lines 153-159) spells it, `~` expanded (load.py:1359); a relative one is relative to
    the work dir OpenCompass runs in."""
    home = _expanduser(env.get("HF_HOME", os.path.join(env.get("XDG_CACHE_HOME", "~/.cache"), "huggingface")), env)
    datasets_cache = Path(_expanduser(env.get("HF_DATASETS_CACHE", os.path.join(home, "datasets")), env))
    if not datasets_cache.is_absolute() and work_dir is not None:
        datasets_cache = work_dir / datasets_cache
    owner, _, name = repo.partition("/")
    return datasets_cache / f"{owner}___{_snake(name)}"


def _prepared(place: Path) -> bool:
    return any(p.is_dir() for p in place.glob("*/*/*"))


def missing(
    package: Path, preset: EvalPreset, chosen: tuple[Benchmark, ...], work_dir: Path | None, env: Mapping[str, str]
) -> list[Missing]:
    table = tables(package)
    out = []
    for need in needs(preset, chosen):
        if need.hf_repo is not None:
            place = hf_datasets_place(need.hf_repo, env, work_dir)
            if not _prepared(place):
                out.append(Missing(need, (str(place),), None))
        elif need.path is not None:
            looked, data_path = locate(need, table, work_dir, env)
            if not any(p.exists() for p in looked):
                name = download_name(data_path, table) if need.dataset_class not in CWD_ONLY else None
                out.append(Missing(need, tuple(map(str, looked)), name))
    return out


def fetch_argv(preset: str, names: list[str], cache: str | None, opencompass: Path | None) -> list[str]:
    argv = ["oda-sft", "eval-data", "fetch", "--model", preset, "--benchmarks", ",".join(names)]
    if cache:
        argv += ["--cache", cache]
    if opencompass is not None:
        argv += ["--opencompass", str(opencompass)]
    return argv


def check(
    package: Path,
    preset: EvalPreset,
    chosen: tuple[Benchmark, ...],
    work_dir: Path | None,
    opencompass: Path | None,
    env: Mapping[str, str] | None = None,
) -> None:
    """Every chosen benchmark's data is where OpenCompass looks, or one line: what is missing, and the command
    that fetches it. With DATASET_SOURCE set, OpenCompass loads from ModelScope or the Hub instead: not checked."""
    env = os.environ if env is None else env
    if env.get("DATASET_SOURCE"):
        return
    gone = missing(package, preset, chosen, work_dir, env)
    if not gone:
        return
    parts = [f"{m.need.benchmark} ({m.need.hf_repo or m.need.path})" for m in gone[:4]]
    more = f" and {len(gone) - 4} more" if len(gone) > 4 else ""
    cache = env.get("COMPASS_DATA_CACHE") or None
    where = f"COMPASS_DATA_CACHE={cache}" if cache else f"{DEFAULT_CACHE} (COMPASS_DATA_CACHE is not set)"
    if any(m.need.hf_repo for m in gone):
        where += ", the Hugging Face datasets cache"
    fetchable = sorted({m.need.benchmark for m in gone if m.fetchable})
    by_hand = sorted({m.need.benchmark for m in gone if not m.fetchable})
    advice = []
    if fetchable:
        cmd = shlex.join(fetch_argv(preset.name, fetchable, cache, opencompass))
        advice.append(f"fetch it on a machine with network (into the same cache): `{cmd}`")
    if by_hand:
        advice.append(f"OpenCompass has no download for {', '.join(by_hand)}: place its files at "
                      f"{gone[[m.need.benchmark for m in gone].index(by_hand[0])].looked[0]} by hand")  # fmt: skip
    raise UsageError(
        f"benchmark data not found for {', '.join(parts)}{more} in {where}; OpenCompass would try to download "
        f"it mid-run, after loading the model: {'; '.join(advice)}"
    )


def link_cwd_data(preset: EvalPreset, chosen: tuple[Benchmark, ...], work_dir: Path) -> list[Path]:
    """Link the cache's copy of each cwd-only benchmark's top folder (data/calm) into the work dir, where its
    loader opens it; an existing entry there is left alone. Returns the links made."""
    made = []
    table = tables(Path("/nonexistent"))  # cwd-only paths are not ids: no table needed
    for need in needs(preset, chosen):
        if need.dataset_class not in CWD_ONLY or need.path is None or need.path.startswith("/"):
            continue
        top = Path(*Path(os.path.normpath(need.path)).parts[:2])  # data/calm
        here = work_dir / top
        if here.exists() or here.is_symlink():
            continue
        looked, _ = locate(need, table, None, os.environ)
        for place in looked:
            if place.exists():
                source = Path(str(place)[: -len(os.path.normpath(need.path))]) / top
                here.parent.mkdir(parents=True, exist_ok=True)
                here.symlink_to(source.absolute(), target_is_directory=True)
                made.append(here)
                break
    return made


# Run by the OpenCompass environment's Python: OpenCompass's own lookup and download (its URL table, its md5
# checks), then datasets.load_dataset for the Hub datasets, as the loaders call it. One line per item.
_FETCH = """
import json, os, sys
from opencompass.utils.datasets import get_data_path
failed = 0
for n in json.loads(sys.argv[1]):
    what = f"{n['benchmark']} ({n['hf_repo'] or n['path']})"
    try:
        if n['hf_repo']:
            import datasets
            datasets.load_dataset(n['hf_repo'])
            at = 'the Hugging Face datasets cache'
        else:
            at = get_data_path(n['path'], local_mode=n['local_mode'])
            if not os.path.exists(at):
                raise FileNotFoundError(at)
        print(f'fetched {what}: {at}', flush=True)
    except Exception as exc:
        failed += 1
        print(f'failed {what}: {type(exc).__name__}: {exc}', flush=True)
sys.exit(1 if failed else 0)
"""


def fetch_script_argv(python: Path, wanted: list[Need]) -> list[str]:
    return [str(python), "-c", _FETCH, json.dumps([n.as_json() for n in wanted])]
