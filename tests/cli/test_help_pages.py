"""Every help page at 80 columns: no word, option name or hyphenated name is split, no command summary is cut,
every argument says what it is, and every docs/*.md a page points to exists (issue 16 item 19)."""

from __future__ import annotations

import re
from pathlib import Path

import click
import pytest

from oda_sft.cli.app import _command
from oda_sft.cli.help_format import shipped_docs

from conftest import Cli


def _pages() -> list[tuple[str, ...]]:
    paths: list[tuple[str, ...]] = []

    def walk(cmd: click.Command, path: tuple[str, ...]) -> None:
        paths.append(path)
        if isinstance(cmd, click.Group):
            for name, sub in cmd.commands.items():
                if not sub.hidden:
                    walk(sub, (*path, name))

    walk(_command(), ())
    return paths


def _command_at(path: tuple[str, ...]) -> click.Command:
    cmd = _command()
    for name in path:
        assert isinstance(cmd, click.Group)
        cmd = cmd.commands[name]
    return cmd


def _texts(cmd: click.Command, ctx: click.Context) -> list[str]:
    """What the page must show whole: the command's help, each parameter's row, each subcommand's summary."""
    texts = [cmd.help or ""]
    texts += [" ".join(rec) for p in cmd.get_params(ctx) if (rec := p.get_help_record(ctx))]
    if isinstance(cmd, click.Group):
        texts += [click.core._make_default_short_help(sub.help or "", 1 << 30) for sub in cmd.commands.values()]
    return [shipped_docs(t.replace("\\[", "[")) for t in texts]


@pytest.mark.parametrize("path", _pages(), ids=lambda p: " ".join(p) or "oda-sft")
def test_a_help_page_keeps_every_word_whole(cli: Cli, monkeypatch: pytest.MonkeyPatch, path: tuple[str, ...]) -> None:
    monkeypatch.setenv("COLUMNS", "80")
    r = cli(*path, "--help")
    assert r.code == 0, r.err
    page = r.out
    cmd = _command_at(path)
    ctx = click.Context(cmd, info_name=path[-1] if path else "oda-sft")
    tokens = set(page.split())
    for text in _texts(cmd, ctx):
        split = [w for w in text.split() if w not in tokens]
        assert not split, f"split or cut on the page: {split}\n{page}"
    assert "…" not in page
    for line in page.splitlines():  # a line runs past 80 columns only for one word longer than its column
        assert len(line) <= 80 or len(line.split()) == 1 or len(line.split()[-1]) > 40, line
    for param in cmd.params:
        if isinstance(param, click.Argument):
            metavar = param.make_metavar(ctx)
            assert re.search(rf"^  {re.escape(metavar)} +\S", page, re.M), f"{metavar} has no description\n{page}"
    assert not re.findall(r"(?<![\w/.])docs/[\w-]+\.md", page), "a docs/ path relative to no checkout"
    for doc in re.findall(r"/[^\s()`]+\.md", page):
        assert Path(doc).is_file(), doc


def test_the_docs_a_help_page_names_are_the_shipped_ones(cli: Cli) -> None:
    r = cli("train", "--help")
    (doc,) = re.findall(r"(/\S+/performance\.md)", r.out)
    assert Path(doc).read_text(encoding="utf-8").startswith("#")


def test_an_error_that_points_to_the_docs_names_the_installed_copy(cli: Cli, data_dir: Path) -> None:
    r = cli("data", "add", "OpenR1-Math-220k", "--split", "test", "--dataset-dir", str(data_dir))
    assert r.code == 2 and "is a catalog dataset" in r.err, r.err
    (doc,) = re.findall(r"\((/\S+/data\.md)\)", r.err)
    assert Path(doc).is_file()
