"""`oda-sft push`: a finished run to the Hugging Face Hub, with its model card (publish/hub.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from oda_sft.cli.options import optional
from oda_sft.util.console import say


def push(
    run: Annotated[Path, typer.Argument(help="The run dir (saves/<model>/full/sft-<dataset>/seed-<n>).")],
    repo_id: Annotated[str, optional("--repo-id", help="The Hub repo to push to: NAME or OWNER/NAME.")],
    private: Annotated[bool, typer.Option("--private", help="Create the repo private (if it is new).")] = False,
    license: Annotated[
        str, typer.Option(help="The card's license id; other: the base model's license applies.")
    ] = "other",
    dry_run: Annotated[bool, typer.Option(help="Write the model card and list the files; upload nothing.")] = False,
) -> None:
    """Push a finished run's weights, tokenizer and chat template, with a model card, to the Hub."""
    from oda_sft.publish import hub  # huggingface_hub: only when pushing

    hub.check_repo_id(repo_id)
    found = hub.load(run)
    card = hub.write_card(found, repo_id, license)
    say(f"model card: {card}")
    if dry_run:
        say(f"would push to {hub.repo_url(repo_id)}{' (private)' if private else ''}:")
        for name, size in hub.listing(found, card):
            typer.echo(f"{name}\t{size}")
        return
    url = hub.push(found, card, repo_id, private)
    say(f"pushed {len(found.files) + 1} files to {hub.repo_url(repo_id)} ({url})")
