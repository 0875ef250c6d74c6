"""`oda-sft push`: the model card a dry run writes (read back by huggingface_hub's own ModelCard), a real push
through huggingface_hub's upload API to the local stand-in Hub (tests/hubstub.py: create_repo, preupload, the
LFS batch and PUT for the weights, the NDJSON commit), the token nowhere oda-sft writes, and one line for each
bad input with nothing written. tests/integration/test_eval_real.py pushes a really trained and evaluated run."""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from conftest import Cli, snapshot
from hubstub import Hub, online

TOKEN = "hf_stubTokenThatMustNeverBeWritten0123"
SHA256 = "ab" * 32
REVISION = "c0ffee" * 6 + "c0ff"


def _manifest(run: Path, **changes: Any) -> dict[str, Any]:
    """A manifest as `train` writes it (runs/manifest.py, runs/record.py), after one interrupted attempt
    and one resumed that finished, with one finished evaluation (eval/record.py)."""
    manifest: dict[str, Any] = {
        "schema": 1,
        "versions": {"oda-sft": "0.1.0", "llamafactory": "0.9.4", "transformers": "4.57.1"},
        "command_line": ["oda-sft", "train"],
        "model": {"preset": "qwen", "path": "Qwen/Qwen2.5-7B"},
        "dataset": {"name": "OpenR1-Math-220k", "file": "/data/x.json", "sha256": SHA256, "revision": REVISION},
        "mode": {"mode": "long", "source": "catalog", "reason": "the catalog says long"},
        "seed": 7,
        "profile": "default",
        "recipe_era": "2025",
        "output_dir": str(run),
        "nnodes": 1,
        "gpus": {"count": 8, "names": ["NVIDIA H200"] * 8},
        "status": "finished",
        "attempts": [
            {"started_at": "2026-01-01T00:00:00Z", "ended_at": "2026-01-01T01:00:00Z", "status": "interrupted"},
            {
                "started_at": "2026-01-01T02:00:00Z",
                "ended_at": "2026-01-01T05:00:00Z",
                "status": "finished",
                "resumed_from": "checkpoint-100",
            },
        ],
        "results": {"epoch": 3.0, "train_loss": 0.61234567, "final_loss": 0.5, "dataset_tokens_per_epoch": 123456},
        "evals": [
            {
                "id": "abc123def456",
                "status": "finished",
                "settings": {"suite": "math", "generation": {"max_out_len": 32768, "generation_kwargs": {}}},
                "opencompass": {"version": "0.5.4", "fork": True},
                "scores": {"aime24": 23.33, "math500": 81.2},
                "domains": {"math": 52.265},
                "overall": 52.265,
            },
            {"id": "running0000", "status": "running", "scores": {"gsm8k": 1.0}},
        ],
    }
    return {**manifest, **changes}


def _run(root: Path, **changes: Any) -> Path:
    run = root / "saves" / "qwen2.5-7b" / "full" / "sft-OpenR1-Math-220k" / "seed-7"
    run.mkdir(parents=True)
    (run / "oda_sft_run.json").write_text(json.dumps(_manifest(run, **changes)))
    (run / "oda_sft_config.yaml").write_text("learning_rate: 3.0e-05\nnum_train_epochs: 3.0\ncutoff_len: 32768\n")
    (run / "model.safetensors").write_bytes(os.urandom(4096))
    (run / "config.json").write_text('{"model_type": "qwen2"}')
    (run / "tokenizer.json").write_text('{"version": "1.0"}')
    (run / "tokenizer_config.json").write_text("{}")
    (run / "chat_template.jinja").write_text("{{ messages }}")
    (run / "README.md").write_text("LLaMA-Factory's own card, kept\n")
    (run / "training_args.bin").write_bytes(b"never uploaded")
    (run / "checkpoint-100").mkdir()
    (run / "checkpoint-100" / "model.safetensors").write_bytes(b"never uploaded")
    return run


@pytest.fixture
def hub(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[Hub]:
    monkeypatch.setenv("HF_TOKEN", TOKEN)
    import huggingface_hub.constants

    with online(Hub(), monkeypatch, tmp_path / "hf-cache") as stub:
        # Read at import, from HF_ENDPOINT as it was then: what a commit's URL is parsed against (hf_api.py,
        # CommitInfo). A real `oda-sft push` process reads the HF_ENDPOINT it was started with.
        monkeypatch.setattr(huggingface_hub.constants, "ENDPOINT", stub.url)
        yield stub


def test_dry_run_writes_a_card_the_hub_client_reads(cli: Cli, tmp_path: Path) -> None:
    from huggingface_hub import ModelCard

    run = _run(tmp_path)
    r = cli("push", str(run), "--repo-id", "me/qwen-openr1", "--dry-run")
    assert r.code == 0, r.err
    listed = dict(line.split("\t") for line in r.out.splitlines())
    assert sorted(listed) == [
        "README.md", "chat_template.jinja", "config.json", "model.safetensors", "tokenizer.json",
        "tokenizer_config.json",
    ]  # fmt: skip
    assert listed["model.safetensors"] == "4096"
    assert "would push to https://huggingface.co/me/qwen-openr1:" in r.err
    card = ModelCard((run / "model_card.md").read_text())  # huggingface_hub's parser, as the Hub reads it
    assert card.data.base_model == "Qwen/Qwen2.5-7B"
    assert card.data.datasets == ["open-r1/OpenR1-Math-220k"]
    assert card.data.license == "other" and card.data.library_name == "transformers"
    assert {"oda-sft", "llama-factory", "opendataarena"} <= set(card.data.tags)
    text = card.text
    assert (
        f"[open-r1/OpenR1-Math-220k](https://huggingface.co/datasets/open-r1/OpenR1-Math-220k) at commit `{REVISION}`"
        in text
    )
    assert f"sha256 of the file trained on: `{SHA256}`" in text
    assert "recipe era: 2025" in text and "- seed: 7" in text and "- learning_rate: 3e-05" in text
    assert "Status: finished, over 2 attempt(s)." in text and "| 2 | 2026-01-01T02:00:00Z |" in text
    assert "(resumed)" in text and "| train loss (mean over the run) | 0.6123 |" in text
    assert "- hardware: 8 x NVIDIA H200\n" in text
    assert "Settings `abc123def456`: suite `math`, ODA's fork of OpenCompass 0.5.4" in text
    assert "| aime24 | 23.33 |" in text and "| domain: math | 52.27 |" in text and "| **overall** | 52.27 |" in text
    assert "gsm8k" not in text  # an eval still running is not a result
    assert "oda-sft data add OpenR1-Math-220k\noda-sft train --model qwen --dataset OpenR1-Math-220k --seed 7" in text
    assert str(tmp_path) not in text  # nothing of this machine
    assert (run / "README.md").read_text() == "LLaMA-Factory's own card, kept\n"


def test_push_lands_the_files_and_card_and_writes_no_token(
    cli: Cli, hub: Hub, tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    run = _run(tmp_path)
    r = cli("push", str(run), "--repo-id", "me/qwen-openr1", "--private")
    assert r.code == 0, r.err
    repo = hub.models["me/qwen-openr1"]
    assert "me/qwen-openr1" in hub.private
    for name in ("model.safetensors", "config.json", "tokenizer.json", "tokenizer_config.json", "chat_template.jinja"):
        assert repo.files[name] == (run / name).read_bytes(), name
    assert repo.files["README.md"] == (run / "model_card.md").read_bytes()
    assert "training_args.bin" not in repo.files and not any(f.startswith("checkpoint") for f in repo.files)
    # The weights went through the LFS batch API and a PUT, the card inside the commit.
    oid = hashlib.sha256(repo.files["model.safetensors"]).hexdigest()
    assert ("PUT", f"/lfs-objects/{oid}", "") in hub.requests
    assert hub.commits == [{"summary": "oda-sft: qwen on OpenR1-Math-220k, seed 7", "description": ""}]
    assert f"pushed 6 files to {hub.url}/me/qwen-openr1 ({hub.url}/me/qwen-openr1/commit/{repo.sha})" in r.err
    assert f"Bearer {TOKEN}" in hub.authorizations  # the token was used ...
    written = b"".join(snapshot(tmp_path).values())  # ... and is in no file, card or output
    captured = capfd.readouterr()
    assert TOKEN.encode() not in written and TOKEN not in r.out + r.err + captured.out + captured.err

    again = cli("push", str(run), "--repo-id", "me/qwen-openr1")  # the repo exists: a second commit
    assert again.code == 0, again.err
    assert len(hub.commits) == 2


def _unfinished(tmp_path: Path) -> Path:
    return _run(tmp_path, status="interrupted")


def _no_weights(tmp_path: Path) -> Path:
    run = _run(tmp_path)
    (run / "model.safetensors").unlink()
    return run


def _base(tmp_path: Path) -> Path:
    return _run(tmp_path, base=True)


@pytest.mark.parametrize(
    ("make", "repo_id", "said", "code"),
    [
        (lambda p: p, "me/x", "is not an oda-sft run (no oda_sft_run.json): give a run dir, such as saves/", 2),
        (lambda p: p / "missing", "me/x", "is not an oda-sft run", 2),
        (_unfinished, "me/x", "is interrupted, not finished: push a run once its training has finished", 3),
        (_no_weights, "me/x", "has no weights (model.safetensors or pytorch_model.bin): nothing to push", 3),
        (_base, "me/x", "holds the evaluation of an untuned base model", 2),
        (_run, "me/bad name", "--repo-id 'me/bad name' holds whitespace: give NAME or OWNER/NAME without it", 2),
        (_run, "x/y\n", "--repo-id 'x/y\\n' holds whitespace", 2),  # huggingface_hub's own check lets it through
        (_run, "me/" + "n" * 97, "is 97 characters long: the Hub allows 96", 2),
        (_run, "me/bad*name", "--repo-id 'me/bad*name' is not a Hub repo id: give NAME or OWNER/NAME", 2),
        (_run, "a/b/c", "--repo-id 'a/b/c' is not a Hub repo id", 2),
    ],
)
def test_bad_input_is_one_line_and_writes_nothing(
    cli: Cli, tmp_path: Path, make: Any, repo_id: str, said: str, code: int
) -> None:
    run = make(tmp_path)
    before = snapshot(tmp_path)
    r = cli("push", str(run), "--repo-id", repo_id, "--dry-run")
    assert r.code == code and len(r.err.strip().splitlines()) == 1 and said in r.err, r.err
    assert snapshot(tmp_path) == before


def test_no_token_or_offline_is_one_line(cli: Cli, hub: Hub, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    run = _run(tmp_path)
    monkeypatch.delenv("HF_TOKEN")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "no-login"))  # no token saved by a login either
    r = cli("push", str(run), "--repo-id", "me/x")
    assert r.code == 1 and "no Hugging Face token: set HF_TOKEN" in r.err.splitlines()[-1], r.err
    monkeypatch.setenv("HF_TOKEN", TOKEN)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    r = cli("push", str(run), "--repo-id", "me/x")
    assert r.code == 1 and "HF_HUB_OFFLINE is set: unset it to push" in r.err.splitlines()[-1], r.err
    assert hub.models == {}


def test_a_refusal_from_the_hub_is_one_line(cli: Cli, hub: Hub, tmp_path: Path) -> None:
    from hubstub import Repo

    run = _run(tmp_path)
    hub.models["their/model"] = Repo("0" * 40, {})
    hub.forbidden.add("their/model")  # a token without write access to their namespace
    r = cli("push", str(run), "--repo-id", "their/model")
    assert r.code == 1 and len(r.err.strip().splitlines()) == 2, r.err  # the card's path, then the refusal
    assert "error: the Hub refused the push to their/model (HTTP 403" in r.err
    assert "check the token's write access" in r.err and TOKEN not in r.err
    assert hub.models["their/model"].files == {}
