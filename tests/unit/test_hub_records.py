"""oda-sft's records of what a Hugging Face cache holds (data/sources/hub.py) belong to that cache: two caches (two
users' HF_HUB_CACHE, or two tests running at once) never read or remove each other's, and the default cache keeps
the place its records always had."""

from __future__ import annotations

from pathlib import Path

import pytest

from oda_sft.data.sources import hub


def test_each_hugging_face_cache_has_its_own_records(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ODA_SFT_HOME", str(tmp_path / "oda"))
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    for name in ("HF_HUB_CACHE", "HF_HOME", "XDG_CACHE_HOME"):
        monkeypatch.delenv(name, raising=False)
    default = hub._refs_path("o/r")
    assert default == tmp_path / "oda" / "hub" / "o--r" / "refs.json"  # where it always was
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "a"))
    first = hub._refs_path("o/r")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "b"))
    second = hub._refs_path("o/r")
    assert len({default, first, second}) == 3
    assert hub._listing_path("o/r", "abc").parent == second.parent
