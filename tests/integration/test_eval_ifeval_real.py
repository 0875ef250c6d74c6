"""IFEval on the CPU (issue 23 item 5): the embedded tiny base model answers `IFEval_gen` (0.5.4's config; the
fork's at a58c9cb differs only in how its data path is spelled, and its evaluator code not at all: docs/eval.md),
from a test data cache in IFEval's real layout (tests/fixtures/opencompass_data), scored by the real IFEvaluator,
which calls langdetect and nltk's punkt_tab model. Both are checked before anything starts: without them the eval
would fail after inference.

Stand-in: nltk's punkt_tab English model, which nltk's downloader fetches from GitHub (unreachable here). The stand-in
is the same four files with no learned abbreviations, so a sentence after "Mr." counts as two; what is proven is the
lookup and the scoring path, not ODA's exact sentence counts."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from oda_sft.eval import opencompass as oc

from conftest import REPO
from realproc import manifest, oda_sft, opencompass_program

DATA_CACHE = REPO / "tests" / "fixtures" / "opencompass_data"
PUNKT_FILES = ("abbrev_types.txt", "collocations.tab", "sent_starters.txt", "ortho_context.tab")


def _punkt_tab(root: Path) -> Path:
    english = root / "tokenizers" / "punkt_tab" / "english"
    english.mkdir(parents=True)
    for name in PUNKT_FILES:
        (english / name).write_text("")
    return root


def test_the_probe_lists_the_folders_nltk_itself_reads(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """eval's check looks where nltk looks, read without importing nltk; nltk's own list, in the same environment."""
    program = opencompass_program()
    monkeypatch.setenv("NLTK_DATA", f"{tmp_path / 'a'}:{tmp_path / 'b'}")
    ask = "import json, nltk; print(json.dumps(nltk.data.path))"
    listed = subprocess.run([str(program.parent / "python"), "-c", ask], capture_output=True, text=True, check=True)
    assert list(oc.describe(program).nltk_data) == json.loads(listed.stdout)


def test_ifeval_is_checked_then_scored_by_the_real_evaluator(tmp_path: Path) -> None:
    oc = str(opencompass_program())
    args = ("eval", "-m", "tiny", "--base", "--benchmarks", "ifeval", "--output-root", "saves", "--opencompass", oc)
    home = tmp_path / "home"  # no ~/nltk_data of the machine's
    env = {"COMPASS_DATA_CACHE": str(DATA_CACHE), "HOME": str(home), "NLTK_DATA": str(tmp_path / "nltk")}
    base = tmp_path / "saves" / "tiny" / "base"

    refused = oda_sft(*args, cwd=tmp_path, **env)
    assert refused.returncode == 2, refused.stderr[-3000:]
    (line,) = [ln for ln in refused.stderr.splitlines() if ln.startswith("error:")]
    assert "IFEval counts sentences with nltk's punkt_tab model" in line and str(tmp_path / "nltk") in line
    assert f"-m nltk.downloader -d {tmp_path / 'nltk'} punkt_tab`" in line
    assert not (base / "eval").exists()

    _punkt_tab(tmp_path / "nltk")
    done = oda_sft(*args, cwd=tmp_path, **env)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    (record,) = manifest(base)["evals"]
    assert record["status"] == "finished" and set(record["scores"]) == {"ifeval"}
    (result,) = Path(record["work_dir"]).glob("*/results/tiny-base/IFEval.json")
    scored = json.loads(result.read_text())  # IFEvaluator.score's own output over the fixture's four prompts
    metrics = ["Prompt-level-strict-accuracy", "Inst-level-strict-accuracy", "Prompt-level-loose-accuracy",
               "Inst-level-loose-accuracy"]  # fmt: skip
    assert set(metrics) <= set(scored) and len(scored["details"]) == 4
    # oda-sft's rule for IFEval (run_summary.py's): the mean of the IFEval rows of the summary
    assert abs(record["scores"]["ifeval"] - sum(scored[m] for m in metrics) / 4) < 0.01
    assert record["domains"] == {"general": record["scores"]["ifeval"]}
