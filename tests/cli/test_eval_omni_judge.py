"""Omni-MATH's judge (issue 23 item 3): --judge-url reaches the evaluator's `url`, a server that cannot judge is
one line before OpenCompass starts, and without a URL oda-sft serves Omni-Judge after inference and stops it.

The judge is a stand-in server (tests/judgestub.py: LMDeploy's two endpoints the evaluator uses). OpenCompass is
a stand-in program that, where OpenCompass would score (modes all/eval), reads the URL from the dataset config
oda-sft wrote and asks that server as lmdeploy's APIClient does (POST <url>/v1/completions); the real
OpenCompass's mmengine loads that config in test_the_written_config_sets_the_evaluators_url."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

import judgestub
from oda_sft.errors import LaunchError, UsageError
from oda_sft.eval import opencompass as oc
from oda_sft.eval.benchmarks import PRESETS
from oda_sft.eval.judges import omni, serve

from conftest import REPO, Cli, snapshot
from ocstub import RUN, cache_judges, eval_workspace, finished_run, stub_opencompass
from realproc import free_port, marked, system_missing

JUDGESTUB = Path(judgestub.__file__)
LLAMA_CONFIGS = [PRESETS["llama"].config(b) for b in PRESETS["llama"].benchmarks]

# Records its mode, the judge URLs in oda-sft's Omni-MATH config and the datasets it was given; where it scores
# (all, eval), asks the first URL to judge one answer and writes that score to the summary, as OpenCompass would.
_PROGRAM = """#!{python}
import glob, json, os, re, sys, urllib.request
argv = sys.argv[1:]
mode = argv[argv.index("-m") + 1] if "-m" in argv else "all"
config_dir = argv[argv.index("--config-dir") + 1]
(dataset_config,) = glob.glob(os.path.join(config_dir, "datasets", "oda_sft_omni_math_*.py"))
urls = re.findall(r"'(https?://[^']+)'", open(dataset_config).read())
call = {{"mode": mode, "urls": urls, "datasets": argv[argv.index("--datasets") + 1]}}
if mode in ("all", "eval"):
    (model_config,) = glob.glob(os.path.join(config_dir, "models", "*.py"))
    abbr = re.search(r"'abbr': '([^']+)'", open(model_config).read()).group(1)
    ask = json.dumps({{"model": "KbsdJames/Omni-Judge", "prompt": "REFERENCE: 4 CANDIDATE: 4"}}).encode()
    request = urllib.request.Request(urls[0] + "/v1/completions", data=ask, method="POST")
    text = json.loads(urllib.request.urlopen(request, timeout=10).read())["choices"][0]["text"]
    score = 100.0 if "## Equivalence Judgement\\nTRUE" in text else 0.0
    work = os.path.join(argv[argv.index("-w") + 1], argv[argv.index("-r") + 1], "summary")
    os.makedirs(work, exist_ok=True)
    with open(os.path.join(work, "summary_20260101_000000.csv"), "w") as f:
        f.write("dataset,version,metric,mode," + abbr + "\\nOmniMath,x,accuracy,gen," + str(score) + "\\n")
with open(os.environ["STUB_ARGV"], "a") as log:
    log.write(json.dumps(call) + "\\n")
"""


@pytest.fixture
def where(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    eval_workspace(tmp_path, monkeypatch, gpus=1)
    monkeypatch.setenv("STUB_ARGV", str(tmp_path / "argv.jsonl"))
    finished_run(tmp_path)
    cache_judges(tmp_path / "hf")
    return tmp_path


def _oc(where: Path, lmdeploy: bool = True) -> Path:
    root = stub_opencompass(where / "oc", LLAMA_CONFIGS, ("vllm", "lmdeploy"))
    (root / "bin" / "opencompass").write_text(_PROGRAM.format(python=sys.executable))
    server = root / "bin" / "lmdeploy"
    if lmdeploy:  # the stand-in judge takes lmdeploy's command line
        server.write_text(f'#!/bin/sh\nexec {sys.executable} {JUDGESTUB} "$@"\n')
    else:
        server.unlink()
    return root


def _calls(where: Path) -> list[dict[str, object]]:
    path = where / "argv.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def _record(where: Path) -> dict[str, object]:
    (rec,) = json.loads((where / RUN / "oda_sft_run.json").read_text())["evals"]
    return rec  # type: ignore[no-any-return]


def _refused(cli: Cli, where: Path, *args: str) -> str:
    before = snapshot(where)
    r = cli("eval", "-m", "llama", "-d", "d1", "--benchmarks", "omni_math", *args)
    assert r.code == 2, (r.code, r.out, r.err)
    errors = [line for line in r.err.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, r.err
    assert snapshot(where) == before and _calls(where) == []  # nothing written, OpenCompass never started
    return errors[0]


def test_a_judge_url_reaches_the_evaluator_and_is_recorded(cli: Cli, where: Path) -> None:
    root = _oc(where)
    with judgestub.serving(omni.MODEL_ID) as (url, seen):
        r = cli("eval", "-m", "llama", "-d", "d1", "--benchmarks", "omni_math", "--opencompass", str(root),
                "--judge-url", url + "/v1/")  # fmt: skip
    assert r.code == 0, r.err
    (call,) = _calls(where)  # one OpenCompass run: the judge is already there
    assert call["mode"] == "all" and call["urls"] == [url] and str(call["datasets"]).startswith("oda_sft_omni_math_")
    assert [s["path"] for s in seen] == ["/v1/models", "/v1/completions"]  # oda-sft's probe, then the scoring
    rec = _record(where)
    assert rec["status"] == "finished" and rec["scores"] == {"omni_math": 100.0}
    assert rec["omni_judge"] == {"model": omni.MODEL_ID, "urls": [url], "served_by": "user"}
    assert "judge" not in json.dumps(rec["settings"]).replace('"judges"', "")  # the endpoint is not a setting


def test_without_a_url_the_judge_is_served_after_inference_and_stopped(
    cli: Cli, where: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    mark = uuid.uuid4().hex
    monkeypatch.setenv("ODA_SFT_TEST_MARK", mark)
    root = _oc(where)
    r = cli("eval", "-m", "llama", "-d", "d1", "--benchmarks", "omni_math", "--opencompass", str(root))
    assert r.code == 0, r.err
    infer, scoring = _calls(where)
    assert infer["mode"] == "infer" and infer["urls"] == []  # no judge while the model infers
    assert scoring["mode"] == "eval" and len(scoring["urls"]) == 1  # type: ignore[arg-type]
    assert str(scoring["urls"][0]).startswith("http://127.0.0.1:")  # type: ignore[index]
    assert marked(mark) == set()  # the server and its supervisor are gone
    rec = _record(where)
    assert rec["status"] == "finished" and rec["scores"] == {"omni_math": 100.0}
    assert rec["omni_judge"] == {"model": omni.MODEL_ID, "urls": [], "served_by": "oda-sft"}
    log = (where / RUN / "eval" / str(rec["id"]) / "omni_judge_server.log").read_text()
    assert "stand-in Omni-Judge on 127.0.0.1:" in log and "'--cache-max-entry-count', '0.3'" in log
    assert "serving Omni-Judge at http://127.0.0.1:" in r.err and "stopped the Omni-Judge server" in r.err


def test_a_dead_or_wrong_server_is_one_line_before_opencompass_starts(cli: Cli, where: Path) -> None:
    root = str(_oc(where))
    dead = f"http://127.0.0.1:{free_port()}"
    line = _refused(cli, where, "--opencompass", root, "--judge-url", dead)
    assert f"the Omni-Judge server at {dead} does not answer (" in line
    assert "`lmdeploy serve api_server KbsdJames/Omni-Judge --model-name KbsdJames/Omni-Judge --server-port" in line
    with judgestub.serving("some/other-model") as (url, _seen):
        line = _refused(cli, where, "--opencompass", root, "--judge-url", url)
    assert f"the server at {url} does not serve Omni-Judge (it serves some/other-model, not {omni.MODEL_ID})" in line
    assert "not the http://HOST:PORT address" in _refused(cli, where, "--opencompass", root, "--judge-url", "ftp://x")
    line = _refused(cli, where, "--opencompass", root, "--benchmarks", "gsm8k", "--judge-url", dead)
    assert "omni_math is not among these benchmarks" in line


def test_an_environment_without_lmdeploys_client_is_one_line(cli: Cli, where: Path) -> None:
    """LMDeploy 0.18 removed lmdeploy.serve.openai.api_client, which the evaluator sends with."""
    root = _oc(where)
    (root / "site" / "lmdeploy" / "serve" / "openai" / "api_client.py").unlink()
    with judgestub.serving(omni.MODEL_ID) as (url, seen):
        line = _refused(cli, where, "--opencompass", str(root), "--judge-url", url)
    assert "LMDeploy's client (lmdeploy.serve.openai.api_client)" in line and "0.18 or later" in line
    assert f"`{root / 'bin' / 'python'} -m pip install --no-deps lmdeploy==0.17.0 pybase64==1.5.1`" in line
    assert seen == []  # refused before the judge is asked
    shutil.rmtree(root / "site" / "lmdeploy")
    assert "has no lmdeploy" in _refused(cli, where, "--opencompass", str(root), "--judge-url", url)


def test_a_node_that_cannot_serve_the_judge_says_so(cli: Cli, where: Path) -> None:
    line = _refused(cli, where, "--opencompass", str(_oc(where, lmdeploy=False)))
    assert "served with LMDeploy" in line and "--judge-url" in line
    with pytest.raises(UsageError, match="no GPU to serve it on: pass --judge-url http://HOST:PORT"):
        omni.check((), 0, Path(sys.executable))


def test_the_served_judge_is_awaited_and_leaves_nothing_behind(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    mark = uuid.uuid4().hex
    monkeypatch.setenv("ODA_SFT_TEST_MARK", mark)

    def stand_in(port: int) -> list[str]:  # oda-sft's LMDeploy command line, run by the stand-in
        return [sys.executable, *omni.server_argv(str(JUDGESTUB), "model-dir", port, host="127.0.0.1")]

    with serve.serving(stand_in, tmp_path / "judge.log", timeout_s=30) as url:
        assert omni.probe(url) is None and marked(mark)  # ready, and running
    assert marked(mark) == set()
    # A server that exits at once, or never answers: one line naming its log, and nothing left behind.
    exits = [sys.executable, "-c", "raise SystemExit(3)"]
    with (
        pytest.raises(LaunchError, match=r"exited \(status 3\) before it answered: its output is in"),
        serve.serving(lambda _port: exits, tmp_path / "x.log", 30),
    ):
        pass
    silent = [sys.executable, "-c", "import time; time.sleep(60)"]
    with (
        pytest.raises(LaunchError, match=r"did not answer in 1 s"),
        serve.serving(lambda _port: silent, tmp_path / "y.log", 1),
    ):
        pass
    assert marked(mark) == set()


def test_the_forks_config_leaves_the_url_to_oda_sft() -> None:
    """fork_record.json (generated from the fork's configs): Omni-MATH's evaluator takes `url`, left empty."""
    record = json.loads((REPO / "src" / "oda_sft" / "eval" / "data" / "fork_record.json").read_text())
    (dataset,) = record["configs"][PRESETS["llama"].config(PRESETS["llama"].benchmarks[4])]["datasets"]
    assert PRESETS["llama"].benchmarks[4].name == omni.BENCHMARK and dataset["abbr"] == "OmniMath"
    assert dataset["evaluator"] == "OmniMathEvaluator" and dataset["judge_url"] == [""]


@pytest.mark.integration  # the real OpenCompass's imports: tens of seconds
def test_the_written_config_sets_the_evaluators_url(tmp_path: Path) -> None:
    """The real OpenCompass finds oda-sft's config by name and its mmengine loads it: OmniMathEvaluator, url set."""
    program = REPO / ".venv-opencompass" / "bin" / "opencompass"
    if not program.is_file():
        system_missing(f"OpenCompass is not installed at {program}: `bash scripts/dev.sh setup` builds it")
    install = oc.describe(program)
    module = omni.fork_module(install, "omni_math_gen")
    path = omni.config_path(tmp_path, "0123456789ab")
    path.parent.mkdir(parents=True)
    path.write_text(omni.config_text("0123456789ab", module, ["http://10.0.0.1:8000", "http://10.0.0.2:8000"]))
    read = (
        "import json, sys\n"
        "from opencompass.utils.run import match_cfg_file\n"
        "from mmengine.config import Config\n"
        "((_, found),) = match_cfg_file([sys.argv[1]], [sys.argv[2]])\n"
        "cfg = Config.fromfile(found)\n"
        "keys = [k for k in cfg.keys() if k.endswith('_datasets')]\n"
        "(d,) = cfg[keys[0]]\n"
        "e = d['eval_cfg']['evaluator']\n"
        "print(json.dumps({'keys': keys, 'type': e['type'].__name__, 'url': e['url'], 'abbr': d['abbr']}))\n"
    )
    argv = [str(install.python), "-c", read, str(tmp_path / "datasets"), omni.config_name("0123456789ab")]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=120, env={**os.environ, "HF_HUB_OFFLINE": "1"})
    assert done.returncode == 0, done.stderr[-3000:]
    seen = json.loads(done.stdout.strip().splitlines()[-1])
    assert seen == {"keys": ["omni_math_datasets"], "type": "OmniMathEvaluator", "abbr": "OmniMath",
                    "url": ["http://10.0.0.1:8000", "http://10.0.0.2:8000"]}  # fmt: skip


def test_an_eval_job_passes_the_judge_url_on(cli: Cli, where: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`oda-sft slurm -- eval --judge-url URL`: checked on the login node as eval checks it, run on the node as given
    (the server is probed there: a login node may not reach it)."""
    monkeypatch.setenv("ODA_SFT_GPU_COUNT", "0")
    root = str(_oc(where))
    args = ["-m", "llama", "-d", "d1", "--benchmarks", "omni_math", "--opencompass", root, "--judge-url"]
    r = cli("slurm", "--", "eval", *args, "http://judge.example:8000")
    assert r.code == 0, r.err
    assert r.out.rstrip("\n").endswith(" ".join([*args, "http://judge.example:8000"]))
    bad = cli("slurm", "--", "eval", *args, "judge.example:8000")
    assert bad.code == 2 and "not the http://HOST:PORT address" in bad.err and bad.out == ""
