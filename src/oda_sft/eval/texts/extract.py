"""The questions of each benchmark an evaluation runs, as OpenCompass's own loaders read them.

oc_extract.py runs in the OpenCompass environment (eval/opencompass.py finds it) and writes each
benchmark's questions (its reader_cfg input columns, test split) as JSON Lines. They are kept under
<oda-sft cache>/benchmark-texts/, with the sha256 of the config file and of every data file the
loader read; they are reused while all of those are unchanged, so OpenCompass is started only when a
benchmark is new or its data changed. Nothing is downloaded: missing data is one line naming what to fetch.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from oda_sft.data.registry import hashing
from oda_sft.errors import UsageError
from oda_sft.eval.benchmarks import Benchmark, EvalPreset
from oda_sft.eval.opencompass import Install, find_config
from oda_sft.eval.render import CUSTOM_DATA
from oda_sft.util.console import say
from oda_sft.util.fs import atomic_write_json
from oda_sft.util.paths import cache_dir

SCRIPT = Path(__file__).with_name("oc_extract.py")
EXTRACT_TIMEOUT_S = 1800.0  # loading every benchmark of a suite with OpenCompass's loaders
INDEX = "index.json"


@dataclass(frozen=True)
class BenchmarkTexts:
    name: str
    items: list[str]
    sha256: str  # of the extracted questions: what a stored overlap result is keyed by
    files: dict[str, str]  # data file -> sha256, as read by OpenCompass


def store_dir() -> Path:
    return cache_dir() / "benchmark-texts"


def _tree(path: Path) -> dict[str, str]:
    """sha256 of a data file, or of every file under a data directory."""
    if path.is_file():
        return {str(path): hashing.identify(path, "benchmark data file").sha256}
    found: dict[str, str] = {}
    for folder, dirs, names in os.walk(path):
        dirs.sort()
        for name in sorted(names):
            file = Path(folder) / name
            found[str(file)] = hashing.identify(file, "benchmark data file").sha256
    return found


def _source(preset: EvalPreset, bench: Benchmark, install: Install) -> tuple[dict[str, Any], Path]:
    """(the request entry for oc_extract.py, the file that defines the benchmark)."""
    if bench.custom:
        path = CUSTOM_DATA[bench.name]
        return {"name": bench.name, "config": None, "custom": str(path)}, path
    config = preset.config(bench)
    found = find_config(install.package, config)
    if not found:
        raise UsageError(
            f"benchmark {bench.name}: OpenCompass {install.version} at {install.package} has no dataset config "
            f"{config}: install ODA's fork (https://github.com/OpenDataArena/opencompass), or choose other --benchmarks"
        )
    return {"name": bench.name, "config": str(found[0]), "custom": None}, found[0]


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _cached(record: Any, defined: Path, install: Install) -> BenchmarkTexts | None:
    """The stored texts when the config, OpenCompass and every data file are as they were."""
    if not isinstance(record, dict) or record.get("config_sha256") != _sha(defined):
        return None
    if record.get("opencompass") != install.version:
        return None
    files = record.get("files")
    texts = store_dir() / str(record.get("texts", ""))
    if not isinstance(files, dict) or not texts.is_file():
        return None
    for path, sha in files.items():
        now = hashing.identify(path, missing_ok=True)
        if now is None or now.sha256 != sha:
            return None
    if _sha(texts) != record.get("sha256"):
        return None
    items = [json.loads(line)["text"] for line in texts.read_text(encoding="utf-8").splitlines() if line]
    return BenchmarkTexts(str(record["name"]), items, str(record["sha256"]), dict(files))


def _missing_line(answer: dict[str, Any]) -> str:
    looked = answer.get("looked") or []
    where = " or ".join(dict.fromkeys(str(p) for p in looked))
    url = answer.get("url")
    fetch = (
        f"download {url} and unzip it into ~/.cache/opencompass/data/ (or into $COMPASS_DATA_CACHE/data/); "
        "`oda-sft eval` on this benchmark also fetches it"
        if url
        else "put the data there (OpenCompass has no download for it)"
    )
    return f"benchmark {answer['name']}: its data {answer.get('path')} is not at {where}: {fetch}"


def load(preset: EvalPreset, chosen: tuple[Benchmark, ...], install: Install) -> dict[str, BenchmarkTexts]:
    """Each chosen benchmark's questions, from the store or read afresh by OpenCompass."""
    root = store_dir()
    index_path = root / INDEX
    try:
        index = json.loads(index_path.read_text(encoding="utf-8")) if index_path.is_file() else {}
    except ValueError:
        index = {}
    out: dict[str, BenchmarkTexts] = {}
    wanted: list[tuple[dict[str, Any], Path]] = []
    for bench in chosen:
        entry, defined = _source(preset, bench, install)
        key = f"{bench.name}:{defined}"
        hit = _cached(index.get(key), defined, install)
        if hit is not None:
            out[bench.name] = hit
        else:
            wanted.append((entry, defined))
    if wanted:
        say(f"reading {', '.join(e['name'] for e, _ in wanted)} with OpenCompass's loaders ({install.python})")
        root.mkdir(parents=True, exist_ok=True)
        answers = _run(install, [e for e, _ in wanted], root)
        problems = [a for a in answers.values() if a.get("status") != "ok"]
        if problems:
            first = problems[0]
            if first.get("status") == "missing":
                raise UsageError(_missing_line(first))
            raise UsageError(f"benchmark {first['name']}: OpenCompass could not read it: {first.get('message')}")
        for entry, defined in wanted:
            answer = answers[entry["name"]]
            texts = Path(answer["texts"])
            sha = _sha(texts)
            kept = root / f"{entry['name']}-{sha[:16]}.jsonl"
            os.replace(texts, kept)
            files: dict[str, str] = {}
            for data in answer.get("files", []):
                files.update(_tree(Path(data)))
            record = {"name": entry["name"], "config_sha256": _sha(defined), "opencompass": install.version,
                      "files": files, "texts": kept.name, "sha256": sha}  # fmt: skip
            index[f"{entry['name']}:{defined}"] = record
            cached = _cached(record, defined, install)
            assert cached is not None
            out[entry["name"]] = cached
        atomic_write_json(index_path, index)
    return {b.name: out[b.name] for b in chosen}


def _run(install: Install, entries: list[dict[str, Any]], root: Path) -> dict[str, dict[str, Any]]:
    with tempfile.TemporaryDirectory(prefix="extract-", dir=root) as work:
        request = Path(work) / "request.json"
        request.write_text(json.dumps({"out": work, "benchmarks": entries}), encoding="utf-8")
        # In a fresh directory, as an eval runs in its own work dir: a relative data path means the same.
        argv = [str(install.python), str(SCRIPT), str(request)]
        try:
            done = subprocess.run(
                argv, capture_output=True, text=True, timeout=EXTRACT_TIMEOUT_S, cwd=work, check=False
            )
        except subprocess.TimeoutExpired:
            raise UsageError(
                f"OpenCompass did not finish reading the benchmarks in {EXTRACT_TIMEOUT_S:.0f} s"
            ) from None
        except OSError as exc:
            raise UsageError(f"cannot start {install.python}: {exc.strerror or exc}: check --opencompass") from None
        answers: dict[str, dict[str, Any]] = {}
        for line in done.stdout.splitlines():
            if line.startswith("{"):
                answer = json.loads(line)
                answers[answer["name"]] = answer
        lost = [e["name"] for e in entries if e["name"] not in answers]
        if lost:
            tail = (done.stderr.strip().splitlines() or ["no output"])[-1]
            raise UsageError(f"OpenCompass failed reading {', '.join(lost)}: {tail}")
        for answer in answers.values():  # move the texts out before the work dir goes
            if answer.get("status") == "ok":
                kept = root / f".{answer['name']}.{os.getpid()}.jsonl"
                os.replace(answer["texts"], kept)
                answer["texts"] = str(kept)
        return answers
