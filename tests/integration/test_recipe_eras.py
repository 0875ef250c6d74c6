"""Recipe eras, token for token: oda-sft's 2025 era under LLaMA-Factory 0.9.4 (its registered template and
packing patch, reaching LLaMA-Factory as the trainer gets them) tokenizes the same records into the same input
ids and labels as LLaMA-Factory 0.9.2 itself (.venv-lf092, which scripts/dev.sh setup builds); the current era
the same as 0.9.4. The eval side: each era's chat template, applied by the tokenizer, gives the prompt tokens
LLaMA-Factory of that era trained on. Without .venv-lf092 the 0.9.2 tests skip, saying why; under CI=true
they fail."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from functools import cache
from pathlib import Path
from typing import Any

from oda_sft import tiny_model
from oda_sft.data.measure.token_counter import LengthCounter
from oda_sft.eras import ERAS, RecipeEra
from oda_sft.eval.template import ODA_2025, default_template
from oda_sft.presets import PRESETS
from oda_sft.train import patches
from oda_sft.train.render import RenderSpec, render

from conftest import REPO
from realproc import system_missing

HERE = Path(__file__).resolve().parent
CUTOFF = 48  # small, so the long record is truncated and the packs hold several records
LONG = " ".join(f"step {i}: add {i} to the running total." for i in range(40))


def _turns(*texts: str) -> list[dict[str, str]]:
    return [{"role": ("user", "assistant")[i % 2], "content": t} for i, t in enumerate(texts)]


def _record(system: str, *texts: str) -> dict[str, Any]:
    turns = _turns(*texts)
    return {"system": system, "prompt": turns[:-1], "response": turns[-1:]}


RECORDS = [
    _record("", "What is 2+3?", "5"),
    _record("You are a careful tutor.", "Name a prime.", "7"),  # a system prompt
    _record("", "hi", "hello", "2*4?", "8"),  # history
    _record("Be brief.", "a", "b", "c", "d", "e", "f"),  # multi-turn with a system prompt
    _record("", "Sum 0..39. " + LONG, LONG + " The answer is 780."),  # long: truncated at CUTOFF
]
CONVERSATIONS = [
    [{"role": "user", "content": "What is 2+3?"}],
    [{"role": "user", "content": "Sum 0..39. " + LONG}],
    [{"role": "system", "content": "You are a careful tutor."}, {"role": "user", "content": "Name a prime."}],
]
# replace_chat_template_to_default.py, line 14, at OpenDataArena/opencompass c33bc16 (removed in db31b81), copied
# here as the fork wrote it: oda-sft's 2025 eval template must be this string.
FORK_TEMPLATE = "{% if messages[0]['role'] == 'system' %}{% set loop_messages = messages[1:] %}{% set system_message = messages[0]['content'] %}{% else %}{% set loop_messages = messages %}{% endif %}{% if system_message is defined %}{{ system_message + '\n' }}{% endif %}{% for message in loop_messages %}{% set content = message['content'] %}{% if message['role'] == 'user' %}{{ 'Human: ' + content + '\nAssistant:' }}{% elif message['role'] == 'assistant' %}{{ content + '<|endoftext|>' + '\n' }}{% endif %}{% endfor %}"  # noqa: E501


def _lf092() -> Path:
    given = os.environ.get("ODA_SFT_LF092")
    python = Path(given) if given else REPO / ".venv-lf092" / "bin" / "python"
    if not python.is_file():
        system_missing(f"LLaMA-Factory 0.9.2 is not installed at {python}: `bash scripts/dev.sh setup` builds it")
    return python


def era_template(era: RecipeEra) -> str:
    """The template oda-sft's rendered config names for this era."""
    spec = RenderSpec(PRESETS["tiny"], "standard", "d", 1, Path("d"), Path("o"), "m", era=era)
    return str(render(spec)["template"])


@cache
def tokens(python: str, template: str, patch_names: tuple[str, ...] = ()) -> Any:
    out = Path(os.environ.get("ODA_SFT_TEST_HOME", "/tmp")) / f"lf-tokens-{abs(hash((python, template, patch_names)))}"
    out.mkdir(parents=True, exist_ok=True)
    current = default_template(tiny_model.SPECIAL_TOKENS["eos_token"])
    request = {"tokenizer": str(tiny_model.ensure_model()), "template": template, "cutoff_len": CUTOFF,
               "records": RECORDS, "conversations": CONVERSATIONS,
               "chat_templates": {"oda_2025": ODA_2025, "current": current}}  # fmt: skip
    (out / "request.json").write_text(json.dumps(request))
    env = {**os.environ, "DISABLE_VERSION_CHECK": "1", "HF_HUB_OFFLINE": "1"}
    env.pop("PYTHONPATH", None)
    env.update(patches.launch_env(patch_names, None))
    done = subprocess.run([python, str(HERE / "lf_tokens.py"), str(out / "request.json"), str(out / "answer.json")],
                          env=env, capture_output=True, text=True, timeout=600)  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads((out / "answer.json").read_text())


def test_the_2025_era_tokenizes_as_llamafactory_092_itself() -> None:
    theirs = tokens(str(_lf092()), "default")
    assert theirs["versions"] == {"llamafactory": "0.9.2", "transformers": "4.49.0"}
    ours = tokens(sys.executable, era_template("2025"), ERAS["2025"].patches)
    assert ours["versions"]["llamafactory"] == "0.9.4"
    assert ours["multiturn"] == theirs["multiturn"]
    assert ours["supervised"] == theirs["supervised"]
    assert ours["packed"] == theirs["packed"]  # no position_ids in either
    assert "position_ids" not in theirs["packed"]
    # ...which 0.9.4's own `default` is not: the EOS after each user and system turn, restarted positions.
    current = tokens(sys.executable, "default")
    assert current["multiturn"] != theirs["multiturn"]
    assert current["supervised"]["labels"] != theirs["supervised"]["labels"]
    assert "position_ids" in current["packed"]


def test_each_eras_length_count_is_the_length_its_llamafactory_trains_on() -> None:
    """train --mode auto decides from these counts: under the 2025 era, 0.9.2's (no EOS after the user and system
    turns), under 2026 0.9.4's; each equal to the untruncated length of LLaMA-Factory's own encoding."""
    samples = []
    for r in RECORDS:
        texts = [t["content"] for t in r["prompt"] + r["response"]]
        samples.append((r["system"], list(zip(texts[0::2], texts[1::2], strict=True))))
    for era, python in (("2025", str(_lf092())), ("2026", sys.executable)):
        counter = LengthCounter.load(PRESETS["tiny"], era=era)  # type: ignore[arg-type]
        theirs = tokens(python, "default")["multiturn"]
        assert counter.lengths(samples) == [sum(len(s) + len(t) for s, t in turns) for turns in theirs], era
        # the upper bound without tokenizing holds too
        for (system, pairs), length in zip(samples, counter.lengths(samples), strict=True):
            assert counter.bound(system, [*pairs[:-1], ("", pairs[-1][1])], pairs[-1][0], "") >= length
    assert LengthCounter.load(PRESETS["tiny"], era="2025").ref.ident.endswith(" (recipe 2025)")


def test_the_current_era_tokenizes_as_llamafactory_094_itself() -> None:
    assert era_template("2026") == "default"
    ours = tokens(sys.executable, era_template("2026"), ERAS["2026"].patches)
    theirs = tokens(sys.executable, "default")
    assert theirs["versions"]["llamafactory"] == "0.9.4"
    assert ours == theirs


def test_each_eras_eval_template_gives_the_prompt_tokens_it_was_trained_on() -> None:
    assert ODA_2025 == FORK_TEMPLATE
    lf092 = tokens(str(_lf092()), "default")
    # 2025: the fork's `Human: {q}\nAssistant:` is 0.9.2's user turn, token for token (transformers 4.49 renders).
    user_only = [i for i, c in enumerate(CONVERSATIONS) if c[0]["role"] != "system"]
    assert [lf092["chat"]["oda_2025"][i] for i in user_only] == [lf092["prompts"][i] for i in user_only]
    # ...and with a system prompt the fork wrote it bare, without 0.9.2's `System: `: as ODA evaluated then.
    assert lf092["chat_text"]["oda_2025"][2] == "You are a careful tutor.\nHuman: Name a prime.\nAssistant:"
    # 2026: the default template oda-sft writes is 0.9.4's prompt, system turn included (transformers 4.57).
    lf094 = tokens(sys.executable, "default")
    assert lf094["chat"]["current"] == lf094["prompts"]


def test_the_tiny_model_trains_and_evaluates_in_the_2025_era(tmp_path: Path) -> None:
    """A real run on the CPU: `train --recipe 2025` records its era and trains with the 2025 template; `eval`
    reads the era from the manifest and evaluates with the fork's template, under a settings id of its own."""
    from realproc import oda_sft, opencompass_program

    oc = str(opencompass_program())
    demo = str(REPO / "data")
    done = oda_sft("train", "-m", "tiny", "-d", "oda_demo", "--dataset-dir", demo, "--recipe", "2025", cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    run = tmp_path / "saves/tiny/full/sft-oda_demo/seed-42"
    record = json.loads((run / "oda_sft_run.json").read_text())
    assert record["recipe_era"] == "2025" and record["status"] == "finished"
    assert set(ERAS["2025"].patches) <= set(record["patches"])
    assert "template: oda_default_2025" in (run / "oda_sft_config.yaml").read_text()
    # The saved template is the one it trained with: no EOS after the user turn.
    saved = (run / "chat_template.jinja").read_text()
    assert "'Human: ' + content + '\nAssistant:'" in saved and "'System: ' + system_message + '\n'" in saved

    wrong = oda_sft("eval", "--run", str(run), "--recipe", "2026", "--opencompass", oc, cwd=tmp_path)
    assert wrong.returncode == 2 and "trained in the 2025 recipe era" in wrong.stderr, wrong.stderr[-2000:]
    done = oda_sft("eval", "--run", str(run), "--opencompass", oc, cwd=tmp_path)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    (evaluated,) = json.loads((run / "oda_sft_run.json").read_text())["evals"]
    assert evaluated["status"] == "finished" and evaluated["settings"]["recipe_era"] == "2025"
    view = run / "eval" / evaluated["id"] / "model"
    assert json.loads((view / "tokenizer_config.json").read_text())["chat_template"] == ODA_2025
