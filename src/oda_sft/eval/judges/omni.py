"""Omni-MATH's judge, Omni-Judge, reached by URL: its dataset config, the URL's checks, the server's command.

What the fork's evaluator does (OpenDataArena/opencompass at a58c9cb; opencompass 0.5.4 on PyPI the same):
- configs/datasets/omni_math/omni_math_gen_18cc08.py:30-34 is `OmniMathEvaluator(url=[''])  # your server url`
  (c33bc16 named two internal addresses); omni_math/README.md serves the judge with `lmdeploy serve api_server
  KbsdJames/Omni-Judge --server-port 8000 --tp 1 ...` and sets `url` through read_base, as config_text does.
- datasets/omni_math.py:31-47: one TurboMindAPIModel per URL in `url` (a str becomes [str]), each asking for
  the model 'KbsdJames/Omni-Judge'; the predictions are split evenly between them (49-65). Its tokenizer
  (Omni-Judge's own code: get_context writes the judge's prompt) loads from the Hugging Face cache.
- models/turbomind_api.py:53-54, 133-142: lmdeploy's APIClient(url).completions_v1(model=..., prompt=...):
  POST {url}/v1/completions, the answer's choices[0].text, whose `## Equivalence Judgement` line scores it
  (omni_math.py:67-93: TRUE is right, anything else wrong).
So a URL is a base (http://HOST:PORT, no /v1), and its server must list the model as KbsdJames/Omni-Judge.
"""

from __future__ import annotations

import json
import re
import shlex
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

from oda_sft.errors import UsageError
from oda_sft.eval.benchmarks import JUDGE_MODELS, Benchmark
from oda_sft.eval.opencompass import Install, find_config

NODEPS = Path(__file__).resolve().parents[1] / "data" / "opencompass-nodeps.txt"  # LMDeploy's client, pinned
BENCHMARK = "omni_math"
MODEL_ID = JUDGE_MODELS["Omni-Judge"]
DATASETS_KEY = "omni_math_datasets"  # the name the fork's config defines (OpenCompass reads every *_datasets)
PROBE_TIMEOUT_S = 5.0
DEFAULT_PORT = 23333  # lmdeploy api_server's --server-port default
# The share of free GPU memory lmdeploy keeps for its KV cache (its default is 0.8): the eval phase also loads
# xVerify / CompassVerifier in-process (the fork's lmdeploy_*.py model configs) on the same GPU.
CACHE_SHARE = "0.3"
_MODULE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*")


def judged(chosen: tuple[Benchmark, ...]) -> bool:
    return any(b.name == BENCHMARK for b in chosen)


def check_url(url: str) -> str:
    """The base URL the evaluator is given (a trailing / or /v1 dropped), or a one-line UsageError."""
    text = url.strip().rstrip("/")
    text = text[: -len("/v1")] if text.endswith("/v1") else text
    parts = urllib.parse.urlsplit(text)
    try:
        port_ok = parts.port is None or parts.port > 0
    except ValueError:
        port_ok = False
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.query or parts.fragment or not port_ok:
        raise UsageError(f"--judge-url {url!r} is not the http://HOST:PORT address of an Omni-Judge server "
                         "(the evaluator adds /v1/completions itself)")  # fmt: skip
    return text


def config_name(eval_id: str) -> str:
    """The dataset config oda-sft writes into the eval's --config-dir datasets/ (OpenCompass looks there first)."""
    return f"oda_sft_omni_math_{eval_id}"


def config_path(config_dir: Path, eval_id: str) -> Path:
    return config_dir / "datasets" / f"{config_name(eval_id)}.py"


def fork_module(install: Install, fork_config: str) -> str:
    """The module path of the install's own Omni-MATH config (`omni_math_gen`), for read_base to import."""
    found = find_config(install.package, fork_config)
    if len(found) != 1:
        raise UsageError(f"OpenCompass at {install.package} has {len(found)} configs named {fork_config}: "
                         "install ODA's fork")  # fmt: skip
    module = ".".join(found[0].relative_to(install.package.parent).with_suffix("").parts)
    if not _MODULE.fullmatch(module):
        raise UsageError(f"{found[0]} cannot be imported as a module ({module}): install ODA's fork")
    return module


def config_text(eval_id: str, module: str, urls: list[str]) -> str:
    """The install's own config with only the evaluator's url set; urls are written with repr(), never as code."""
    if not _MODULE.fullmatch(module):
        raise UsageError(f"{module!r} is not a module path")
    return "\n".join([
        f"# Written by oda-sft for one evaluation (settings {eval_id}): {module} with its judge's URL set.",
        "from mmengine.config import read_base",
        "",
        "with read_base():",
        f"    from {module} import {DATASETS_KEY}",
        "",
        f"for _dataset in {DATASETS_KEY}:",
        f"    _dataset['eval_cfg']['evaluator']['url'] = {[str(u) for u in urls]!r}",
        "del _dataset",
        "",
    ])  # fmt: skip


def server_argv(lmdeploy: str, model: str, port: int, host: str | None = None, share: str | None = None) -> list[str]:
    """LMDeploy's OpenAI-style server for Omni-Judge, named as the evaluator asks for it (the fork's README's
    command, plus --model-name: served from a local path, the model would otherwise be named by that path)."""
    argv = [lmdeploy, "serve", "api_server", model, "--model-name", MODEL_ID]
    if host is not None:
        argv += ["--server-name", host]
    argv += ["--server-port", str(port), "--tp", "1"]
    if share is not None:
        argv += ["--cache-max-entry-count", share]
    return argv


def advice(url: str) -> str:
    """How to start the server a URL names, on its host."""
    port = urllib.parse.urlsplit(url).port or DEFAULT_PORT
    return shlex.join(server_argv("lmdeploy", MODEL_ID, port))


def probe(url: str, timeout_s: float = PROBE_TIMEOUT_S) -> str | None:
    """None when the server at url lists Omni-Judge (GET /v1/models, which LMDeploy's and vLLM's OpenAI
    servers answer); else why it is of no use, in a few words."""
    try:
        with urllib.request.urlopen(f"{url}/v1/models", timeout=timeout_s) as answer:
            body = answer.read(1_000_000)
    except urllib.error.HTTPError as exc:
        return f"GET /v1/models: HTTP {exc.code}"
    except (urllib.error.URLError, OSError, ValueError) as exc:
        reason: Any = getattr(exc, "reason", None) or exc
        return str(getattr(reason, "strerror", None) or reason)
    try:
        ids = [str(m["id"]) for m in json.loads(body)["data"]]
    except (ValueError, KeyError, TypeError):
        return "GET /v1/models did not answer with a model list"
    if MODEL_ID not in ids:
        return f"it serves {', '.join(ids) or 'no model'}, not {MODEL_ID}"
    return None


def refusal(url: str, why: str) -> str:
    """The one line for a URL whose server cannot judge."""
    if why.startswith("it serves"):
        return (f"the server at {url} does not serve Omni-Judge ({why}): start it with `--model-name {MODEL_ID}` "
                f"(`{advice(url)}`) or pass another --judge-url")  # fmt: skip
    return f"the Omni-Judge server at {url} does not answer ({why}): start it (`{advice(url)}`) or pass --judge-url"


def check(urls: tuple[str, ...], gpus: int, lmdeploy: Path) -> None:
    """Before anything is written: every named server answers with Omni-Judge; or, with none named, this node
    can serve it (a GPU, and LMDeploy's program beside OpenCompass)."""
    for url in urls:
        why = probe(url)
        if why is not None:
            raise UsageError(refusal(url, why))
    if urls:
        return
    if gpus < 1:
        start = advice("http://HOST")
        raise UsageError(f"Omni-MATH is scored by Omni-Judge through a server, and this node has no GPU to serve it "
                         f"on: pass --judge-url http://HOST:PORT (a server started with `{start}`)")  # fmt: skip
    if not lmdeploy.is_file():
        raise UsageError(f"Omni-MATH's judge is served with LMDeploy, and {lmdeploy} does not exist: install lmdeploy "
                         "beside OpenCompass, or pass --judge-url http://HOST:PORT")  # fmt: skip


def client_missing(install: Install) -> str:
    """The evaluator sends with LMDeploy's APIClient (models/turbomind_api.py:70-71), which lmdeploy 0.18 removed."""
    which = "has lmdeploy 0.18 or later, which removed it" if "lmdeploy" in install.engines else "has no lmdeploy"
    lines = NODEPS.read_text(encoding="utf-8").splitlines()
    pins = " ".join(ln.strip() for ln in lines if ln.strip() and not ln.startswith("#"))  # what setup-eval installs
    python = shlex.quote(str(install.python))  # the advice is pasted into a shell: a path may hold a space
    return (
        f"Omni-MATH's evaluator sends its prompts with LMDeploy's client (lmdeploy.serve.openai.api_client), and "
        f"the OpenCompass environment of {install.program} {which}: install it there "
        f"(`{python} -m pip install --no-deps {pins}`), or leave omni_math out of --benchmarks"
    )


def lmdeploy_program(install: Install) -> Path:
    return install.program.parent / "lmdeploy"  # installed beside the opencompass program, in its environment


def record_fields(urls: tuple[str, ...]) -> dict[str, Any]:
    """What the eval record says of the judge's endpoint (not in the settings: the judge model is)."""
    return {"omni_judge": {"model": MODEL_ID, "urls": list(urls), "served_by": "user" if urls else "oda-sft"}}
