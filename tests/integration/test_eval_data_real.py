"""Benchmark data against the real OpenCompass (.venv-opencompass, or $ODA_SFT_OPENCOMPASS): oda-sft looks for
each file where OpenCompass's own get_data_path finds it, and `oda-sft eval-data fetch` downloads through
OpenCompass's download table and md5 check, here from a server on 127.0.0.1 (OpenCompass reads extra table
entries from ~/.OPENCOMPASS_INTERNAL_DATA_URL.json: opencompass/utils/datasets.py download_dataset)."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import threading
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from oda_sft.eval import benchmark_data as bd
from oda_sft.eval.benchmarks import PRESETS

from conftest import REPO
from realproc import system_missing

FIXTURE = REPO / "tests" / "fixtures" / "opencompass_data"
DROP_FILE = FIXTURE / "data" / "drop_simple_eval" / "dev.jsonl"


def _opencompass_python() -> Path:
    given = os.environ.get("ODA_SFT_OPENCOMPASS")
    venv = Path(given) if given else REPO / ".venv-opencompass"
    python = (venv.parent if venv.is_file() else venv / "bin") / "python"
    if not python.exists():
        system_missing(f"OpenCompass is not installed at {venv}: `oda-sft setup-eval` builds it")
    return python


def _package(python: Path) -> Path:
    out = subprocess.run([str(python), "-c", "import importlib.util as u; print(u.find_spec('opencompass').origin)"],
                         capture_output=True, text=True, check=True)  # fmt: skip
    return Path(out.stdout.strip()).parent


_RESOLVE = """
import json, os, sys
from opencompass.utils.datasets import get_data_path
print(json.dumps([get_data_path(p, local_mode=m) for p, m in json.loads(sys.argv[1])]))
"""


def _real_paths(python: Path, needs: list[bd.Need], env: dict[str, str], cwd: Path) -> list[Path]:
    argv = [str(python), "-c", _RESOLVE, json.dumps([[n.path, n.local_mode] for n in needs])]
    done = subprocess.run(argv, env={**os.environ, **env}, cwd=cwd, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    return [cwd / os.path.normpath(p) for p in json.loads(done.stdout.strip().splitlines()[-1])]


def test_the_check_looks_where_opencompass_finds_the_data(tmp_path: Path) -> None:
    python = _opencompass_python()
    table = bd.tables(_package(python))
    needs = {n for p in PRESETS.values() for n in bd.needs(p, p.benchmarks)}
    wanted = sorted((n for n in needs if n.path and n.dataset_class not in bd.CWD_ONLY), key=lambda n: str(n.path))
    for variant, env in (
        ("cache", {"COMPASS_DATA_CACHE": str(tmp_path / "cache"), "HOME": str(tmp_path / "home")}),
        ("home", {"COMPASS_DATA_CACHE": "", "HOME": str(tmp_path / "home")}),  # unset: the work dir, then ~
    ):
        work = tmp_path / variant / "work"
        work.mkdir(parents=True)
        ours = []
        for need in wanted:
            looked, _ = bd.locate(need, table, work, env)
            place = looked[-1]  # the last place OpenCompass tries before it downloads
            place.parent.mkdir(parents=True, exist_ok=True)
            if not place.exists():
                place.write_text("") if place.suffix else place.mkdir()
            ours.append(place)
        assert _real_paths(python, wanted, env, work) == ours, variant


@contextmanager
def _serving(files: dict[str, bytes]) -> Iterator[str]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = files.get(self.path.lstrip("/"))
            self.send_response(200 if body is not None else 404)
            self.send_header("Content-Length", str(len(body or b"")))
            self.end_headers()
            self.wfile.write(body or b"")

        def log_message(self, *_args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def _fetch(home: Path, cache: Path, python: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "HOME": str(home), "NO_PROXY": "127.0.0.1", "no_proxy": "127.0.0.1"}
    env.pop("COMPASS_DATA_CACHE", None)
    argv = ["eval-data", "fetch", "-m", "tiny", "--benchmarks", "drop", "--cache", str(cache)]
    argv += ["--opencompass", str(python.parent / "opencompass")]
    return subprocess.run([sys.executable, "-m", "oda_sft", *argv], env=env, capture_output=True, text=True,
                          timeout=300)  # fmt: skip


def test_fetch_downloads_through_opencompass_with_its_checksum(tmp_path: Path) -> None:
    python = _opencompass_python()
    archive = tmp_path / "drop_simple_eval.zip"
    with zipfile.ZipFile(archive, "w") as z:
        z.write(DROP_FILE, "drop_simple_eval/dev.jsonl")
    body = archive.read_bytes()
    home = tmp_path / "home"
    home.mkdir()
    cache = tmp_path / "cache"
    with _serving({"drop_simple_eval.zip": body}) as url:
        entry = {"/drop_simple_eval/": {"url": f"{url}/drop_simple_eval.zip", "md5": "0" * 32}}
        (home / ".OPENCOMPASS_INTERNAL_DATA_URL.json").write_text(json.dumps(entry))
        bad = _fetch(home, cache, python)
        assert bad.returncode == 1, bad.stderr[-3000:]
        assert "RuntimeError: File not found or corrupted." in bad.stdout + bad.stderr  # OpenCompass's md5 check
        assert "missing: drop (data/drop_simple_eval/dev.jsonl)" in bad.stderr
        assert not (cache / "data" / "drop_simple_eval" / "dev.jsonl").exists()

        entry["/drop_simple_eval/"]["md5"] = hashlib.md5(body).hexdigest()
        (home / ".OPENCOMPASS_INTERNAL_DATA_URL.json").write_text(json.dumps(entry))
        good = _fetch(home, cache, python)
        assert good.returncode == 0, good.stdout[-3000:] + good.stderr[-3000:]
    assert (cache / "data" / "drop_simple_eval" / "dev.jsonl").read_bytes() == DROP_FILE.read_bytes()
    assert f"the benchmark data of drop is in {cache}" in good.stderr
    assert f"run evals with COMPASS_DATA_CACHE={cache}" in good.stderr


def test_each_loader_calls_get_data_path_as_recorded() -> None:
    """benchmark_data's table of loaders (read off the fork at a58c9cb), against the installed loaders' source.
    PyPI's IFEvalDataset calls get_data_path(path) where the fork passes local_mode=True: for a path that is no id
    of the table the two are the same (0.5.4 falls back to the path), which is what this allows."""
    package = _package(_opencompass_python())
    datasets, ids = package / "datasets", bd.tables(package).mapping
    paths = {n.dataset_class: n.path for p in PRESETS.values() for n in bd.needs(p, p.benchmarks)}
    sources = {p: p.read_text(encoding="utf-8", errors="replace") for p in datasets.rglob("*.py")}
    for cls in bd.LOCAL_MODE | bd.BY_ID | bd.CWD_ONLY | set(bd.HF_REPOS):
        found = [text for text in sources.values() if f"class {cls}(" in text]
        if not found:
            continue  # a fork-only loader (PyPI's OpenCompass has no such class)
        (text,) = found
        body = text.split(f"class {cls}(", 1)[1].split("\nclass ", 1)[0]
        if cls in bd.LOCAL_MODE:
            assert "get_data_path(path, local_mode=True)" in body or (
                "get_data_path(path)" in body and paths[cls] not in ids
            ), cls
        elif cls in bd.BY_ID:
            assert "get_data_path(path)" in body or "local_mode=local_mode" in body, cls
        elif cls in bd.CWD_ONLY:
            assert "get_data_path" not in body, cls
        else:
            assert f"load_dataset('{bd.HF_REPOS[cls]}')" in body, cls
