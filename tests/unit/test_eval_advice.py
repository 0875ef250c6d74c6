"""The install commands the eval's checks print (a missing scoring module, nltk's punkt_tab, LMDeploy's client)
work as printed when the OpenCompass environment's path holds a space or a shell character."""

from __future__ import annotations

import shlex
from pathlib import Path

import pytest

from oda_sft.eval.judges import omni
from oda_sft.eval.opencompass import Install, scoring_problem

ODD = Path("/opt/my evals/oc $venv")  # a space and a `$`: both break an unquoted shell word


def _install(engines: frozenset[str] = frozenset(), nltk: tuple[str, ...] = ()) -> Install:
    return Install(
        ODD / "bin" / "opencompass", ODD / "bin" / "python", ODD / "lib", "0.5.4", engines, punkt_tab=False,
        nltk_data=nltk,
    )  # fmt: skip


def _advice(message: str) -> list[str]:
    assert len(message.splitlines()) == 1
    return shlex.split(message.split("`")[1])


@pytest.mark.parametrize("bench", ["ifeval", "humaneval", "humaneval_plus"])
def test_a_missing_scoring_module_names_a_command_that_parses_to_the_environments_python(bench: str) -> None:
    message = scoring_problem(_install(), [bench])
    assert message is not None
    argv = _advice(message)
    assert str(ODD / "bin" / "python") in argv, argv


def test_punkt_tab_advice_names_the_python_and_the_folder_as_one_word_each() -> None:
    folder = "/data/nltk data"
    message = scoring_problem(_install(frozenset({"langdetect"}), (folder, "/usr/share/nltk_data")), ["ifeval"])
    assert message is not None
    assert _advice(message) == [str(ODD / "bin" / "python"), "-m", "nltk.downloader", "-d", folder, "punkt_tab"]


def test_the_lmdeploy_client_advice_names_the_python_as_one_word() -> None:
    argv = _advice(omni.client_missing(_install()))
    assert argv[:5] == [str(ODD / "bin" / "python"), "-m", "pip", "install", "--no-deps"], argv
