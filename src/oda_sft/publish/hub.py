"""`oda-sft push`: a finished run's weights, tokenizer and chat template, with its model card, to a Hub repo.

One commit through huggingface_hub's upload API (HfApi.create_repo, then HfApi.create_commit: preupload,
the LFS batch for the weights, the commit itself). The token is huggingface_hub's own (HF_TOKEN or the
login it saved): oda-sft only asks whether there is one, and never prints, logs or writes it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from oda_sft.data.sources.hub import _reason, endpoint, offline
from oda_sft.errors import OdaSftError, RunStateError, UsageError
from oda_sft.publish import card
from oda_sft.runs.manifest import MANIFEST_NAME, read
from oda_sft.util.fs import atomic_write_text

CARD_NAME = "model_card.md"  # in the run dir; uploaded as README.md (LLaMA-Factory's own README.md is kept)
# What a checkpoint is made of, as transformers saves it (save_pretrained): the weights, sharded or not.
SAFETENSORS = ("model.safetensors", "model-*-of-*.safetensors", "model.safetensors.index.json")
TORCH_BIN = ("pytorch_model.bin", "pytorch_model-*-of-*.bin", "pytorch_model.bin.index.json")
MODEL_FILES = ("config.json", "generation_config.json")
TOKENIZER = (
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "tokenizer.model",
    "vocab.json",
    "merges.txt",
    "added_tokens.json",
)
CHAT_TEMPLATE = ("chat_template.jinja", "chat_template.json")


class PushError(OdaSftError):
    """The Hub could not be reached, or refused the upload."""


@dataclass(frozen=True)
class Pushable:
    run_dir: Path
    manifest: dict[str, Any]
    files: tuple[Path, ...]  # what goes up, besides the card


def check_repo_id(repo_id: str) -> None:
    from huggingface_hub.errors import HFValidationError
    from huggingface_hub.utils._validators import validate_repo_id  # not re-exported by name (mypy)

    # huggingface_hub's check matches with `$`, which lets a trailing newline through: that one is ours.
    if repo_id != repo_id.strip() or any(c.isspace() for c in repo_id):
        raise UsageError(f"--repo-id {repo_id!r} holds whitespace: give NAME or OWNER/NAME without it")
    name = repo_id.rsplit("/", 1)[-1]
    if len(name) > 96:  # huggingface_hub's REPO_ID_REGEX: a repo name of 1 to 96 characters
        raise UsageError(f"--repo-id: the name {name[:20]!r}... is {len(name)} characters long: the Hub allows 96")
    try:
        validate_repo_id(repo_id)
    except HFValidationError:
        raise UsageError(
            f"--repo-id {repo_id!r} is not a Hub repo id: give NAME or OWNER/NAME (letters, digits, '-', '_', '.')"
        ) from None


def load(run_dir: Path) -> Pushable:
    """The run at `run_dir`, if it is one that can be pushed; else one line saying why not."""
    manifest = read(run_dir / MANIFEST_NAME)
    if not run_dir.is_dir() or manifest is None:
        raise UsageError(
            f"{run_dir} is not an oda-sft run (no {MANIFEST_NAME}): give a run dir, "
            "such as saves/<model>/full/sft-<dataset>/seed-<n>"
        )
    if manifest.get("base"):
        raise UsageError(f"{run_dir} holds the evaluation of an untuned base model, not a trained run: nothing to push")
    status = manifest.get("status")
    if status != "finished":
        raise RunStateError(f"{run_dir} is {status}, not finished: push a run once its training has finished")
    weights = _present(run_dir, SAFETENSORS) or _present(run_dir, TORCH_BIN)
    if not weights:
        raise RunStateError(f"{run_dir} has no weights (model.safetensors or pytorch_model.bin): nothing to push")
    if not (run_dir / "config.json").is_file():
        raise RunStateError(f"{run_dir} has no config.json beside its weights: the model could not be loaded")
    rest = _present(run_dir, MODEL_FILES + TOKENIZER + CHAT_TEMPLATE)
    return Pushable(run_dir, manifest, tuple(sorted(weights + rest)))


def _present(run_dir: Path, patterns: tuple[str, ...]) -> list[Path]:
    return sorted({p for pattern in patterns for p in run_dir.glob(pattern) if p.is_file()})


def write_card(run: Pushable, repo_id: str, license: str) -> Path:
    """The card, written beside the run's files (atomically), so a dry run shows what would go up."""
    import yaml

    try:
        config = yaml.safe_load((run.run_dir / "oda_sft_config.yaml").read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError):
        config = None
    text = card.render(run.manifest, config if isinstance(config, dict) else {}, repo_id, license)
    path = run.run_dir / CARD_NAME
    atomic_write_text(path, text)
    return path


def listing(run: Pushable, card_path: Path) -> list[tuple[str, int]]:
    """(path in the repo, size) of every file the push uploads."""
    return [("README.md", card_path.stat().st_size), *((p.name, p.stat().st_size) for p in run.files)]


def repo_url(repo_id: str) -> str:
    return f"{endpoint()}/{repo_id}"


def push(run: Pushable, card_path: Path, repo_id: str, private: bool) -> str:
    """Create the repo if it is not there, and upload everything in one commit; returns the commit's URL."""
    if offline():
        raise PushError("HF_HUB_OFFLINE is set: unset it to push (a dry run, --dry-run, needs no network)")
    from huggingface_hub import CommitOperationAdd, HfApi, get_token
    from huggingface_hub.errors import HfHubHTTPError
    from requests import ConnectionError as RequestsConnectionError
    from requests import Timeout

    if not get_token():
        raise PushError(
            "no Hugging Face token: set HF_TOKEN to a token with write access (huggingface.co/settings/tokens)"
        )
    api = HfApi(endpoint=endpoint())
    operations = [CommitOperationAdd("README.md", str(card_path))]
    operations += [CommitOperationAdd(p.name, str(p)) for p in run.files]
    try:
        api.create_repo(repo_id, private=private, exist_ok=True)
        info = api.create_commit(repo_id, operations, commit_message=_message(run.manifest))
    except (RequestsConnectionError, Timeout) as exc:
        raise PushError(
            f"cannot reach the Hugging Face Hub at {endpoint()} ({_reason(exc)}): check the network"
        ) from None
    except HfHubHTTPError as exc:
        raise PushError(
            f"the Hub refused the push to {repo_id} ({_reason(exc)}): check the token's write access"
        ) from None
    return str(info.commit_url)


def _message(manifest: dict[str, Any]) -> str:
    model = (manifest.get("model") or {}).get("preset", "?")
    dataset = (manifest.get("dataset") or {}).get("name", "?")
    return f"oda-sft: {model} on {dataset}, seed {manifest.get('seed', '?')}"
