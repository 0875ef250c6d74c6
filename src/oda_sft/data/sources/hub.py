"""The one place oda-sft talks to the Hugging Face Hub: resolve a dataset repo's revision to a commit,
list its files, and download them into the Hugging Face cache (which shows progress and resumes an
interrupted download from its partial file).

huggingface_hub is imported only when called. HF_ENDPOINT, HF_HUB_OFFLINE, HF_HUB_CACHE and HF_HOME are
read at each call, so a setting made after import (a test, a wrapper script) is obeyed.

An unreachable Hub is reported after one connection attempt of at most CONNECT_TIMEOUT seconds, in one
line that names the ways out, instead of huggingface_hub's retries (about 24 s).
"""

from __future__ import annotations

import errno
import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from oda_sft.errors import DatasetError
from oda_sft.util.fs import atomic_write_json
from oda_sft.util.paths import cache_dir

CONNECT_TIMEOUT = 4.0  # seconds to open a connection to the Hub before calling it unreachable
READ_TIMEOUT = 60.0
DEFAULT_ENDPOINT = "https://huggingface.co"
_SHA = re.compile(r"[0-9a-f]{40}")
_TRUE = {"1", "ON", "YES", "TRUE"}


@dataclass(frozen=True)
class Snapshot:
    """A dataset repo at one commit: what a fetch downloads and records."""

    repo_id: str
    requested: str  # the revision asked for: a branch, tag or commit ("main" by default)
    sha: str  # the commit it resolved to
    files: dict[str, int | None]  # repo path -> size in bytes (None when unknown)
    offline: bool  # resolved from the Hugging Face cache with HF_HUB_OFFLINE


def endpoint() -> str:
    return (os.environ.get("HF_ENDPOINT") or DEFAULT_ENDPOINT).rstrip("/")


def offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "").upper() in _TRUE


def hub_cache() -> Path:
    """The Hugging Face cache, as huggingface_hub would choose it (read now, not at import)."""
    if os.environ.get("HF_HUB_CACHE"):
        return Path(os.environ["HF_HUB_CACHE"]).expanduser()
    if os.environ.get("HF_HOME"):
        return Path(os.environ["HF_HOME"]).expanduser() / "hub"
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg) if xdg else Path.home() / ".cache") / "huggingface" / "hub"


def _repo_cache(repo_id: str) -> Path:
    return hub_cache() / ("datasets--" + repo_id.replace("/", "--"))


def _listing_path(repo_id: str, sha: str) -> Path:
    # oda-sft's own record of a commit's file list, so an offline fetch can tell a whole copy from a partial one.
    return cache_dir() / "hub" / repo_id.replace("/", "--") / f"{sha}.json"


def _refs_path(repo_id: str) -> Path:
    return cache_dir() / "hub" / repo_id.replace("/", "--") / "refs.json"


def _way_out(name: str) -> str:
    return (
        "set HF_HUB_OFFLINE=1 to use a copy already in the Hugging Face cache, or download the repo elsewhere "
        f"and give its folder or data file: `oda-sft data add {name} PATH`"
    )


def resolve(repo_id: str, revision: str | None, name: str) -> Snapshot:
    """The commit `revision` (default main) of dataset repo `repo_id` and its files. `name` is the catalog name,
    for the advice in errors."""
    requested = revision or "main"
    if offline():
        return _resolve_cached(repo_id, requested, name)
    from huggingface_hub import HfApi
    from huggingface_hub.errors import GatedRepoError, HfHubHTTPError, RepositoryNotFoundError, RevisionNotFoundError
    from requests import ConnectionError as RequestsConnectionError
    from requests import Timeout

    api = HfApi(endpoint=endpoint())
    timeout: Any = (CONNECT_TIMEOUT, READ_TIMEOUT)  # requests takes (connect, read); the stub says float
    try:
        info = api.dataset_info(repo_id, revision=requested, files_metadata=True, timeout=timeout)
    except (RequestsConnectionError, Timeout) as exc:
        raise DatasetError(
            f"cannot reach the Hugging Face Hub at {endpoint()} to fetch {repo_id} ({_reason(exc)}): check the "
            f"network or HF_ENDPOINT; offline, {_way_out(name)}"
        ) from None
    except RevisionNotFoundError:
        raise DatasetError(
            f"{repo_id} has no revision {requested!r}: give a branch, tag or commit of it with --revision"
        ) from None
    except GatedRepoError:
        raise DatasetError(
            f"{repo_id} is gated: accept its terms on the Hub, then log in (`huggingface-cli login` or HF_TOKEN)"
        ) from None
    except RepositoryNotFoundError:
        raise DatasetError(
            f"{repo_id} is not on {endpoint()} (or needs a login): check HF_ENDPOINT, log in with "
            "`huggingface-cli login` or HF_TOKEN"
        ) from None
    except HfHubHTTPError as exc:
        raise DatasetError(f"the Hub refused {repo_id} ({_reason(exc)}): try again later; {_way_out(name)}") from None
    if not isinstance(info.sha, str) or not _SHA.fullmatch(info.sha):
        raise DatasetError(f"the Hub gave no commit for {repo_id} at {requested!r}: try again, or pass --revision SHA")
    files = {s.rfilename: s.size for s in info.siblings or []}
    atomic_write_json(_listing_path(repo_id, info.sha), {"repo_id": repo_id, "sha": info.sha, "files": files})
    if requested != info.sha:  # an offline fetch of the same revision name finds this commit again
        refs = _refs_path(repo_id)
        known = json.loads(refs.read_text(encoding="utf-8")) if refs.is_file() else {}
        atomic_write_json(refs, {**known, requested: info.sha})
    return Snapshot(repo_id, requested, info.sha, files, offline=False)


def _resolve_cached(repo_id: str, requested: str, name: str) -> Snapshot:
    repo = _repo_cache(repo_id)
    sha = requested if _SHA.fullmatch(requested) else None
    ref, refs = repo / "refs" / requested, _refs_path(repo_id)
    if sha is None and refs.is_file():  # the commit oda-sft last resolved this name to
        sha = json.loads(refs.read_text(encoding="utf-8")).get(requested)
    if sha is None and ref.is_file():  # written by other huggingface_hub downloads
        sha = ref.read_text(encoding="utf-8").strip()
    snapshot = repo / "snapshots" / sha if sha else None
    if sha is None or snapshot is None or not snapshot.is_dir():
        raise DatasetError(
            f"HF_HUB_OFFLINE is set and {repo_id} at {requested!r} is not in the Hugging Face cache ({hub_cache()}): "
            f"unset HF_HUB_OFFLINE to download it, or download the repo elsewhere and give its folder or data "
            f"file: `oda-sft data add {name} PATH`"
        )
    listing = _listing_path(repo_id, sha)
    if listing.is_file():
        files = {str(k): v for k, v in json.loads(listing.read_text(encoding="utf-8"))["files"].items()}
    else:  # downloaded by other tools: the cache's own listing (fetch checks every declared file is there)
        files = {p.relative_to(snapshot).as_posix(): None for p in snapshot.rglob("*") if p.is_file()}
    return Snapshot(repo_id, requested, sha, files, offline=True)


def download(snapshot: Snapshot, path: str, name: str) -> Path:
    """The local path of `path` at the snapshot's commit, downloaded into the Hugging Face cache if needed."""
    from huggingface_hub import hf_hub_download
    from huggingface_hub.errors import HfHubHTTPError, LocalEntryNotFoundError
    from requests import RequestException

    try:
        local = hf_hub_download(
            snapshot.repo_id,
            path,
            repo_type="dataset",
            revision=snapshot.sha,
            cache_dir=hub_cache(),
            endpoint=endpoint(),
            local_files_only=snapshot.offline,
        )
    except LocalEntryNotFoundError:
        if snapshot.offline:
            raise DatasetError(
                f"HF_HUB_OFFLINE is set and {path} of {snapshot.repo_id} at {snapshot.sha[:12]} is not in the "
                f"Hugging Face cache ({hub_cache()}): unset HF_HUB_OFFLINE to download it, or give a local copy: "
                f"`oda-sft data add {name} PATH`"
            ) from None
        raise _interrupted(snapshot, path, "the Hub stopped answering") from None
    except HfHubHTTPError as exc:
        raise DatasetError(
            f"cannot download {path} of {snapshot.repo_id} at {snapshot.sha[:12]} ({_reason(exc)}): try again later"
        ) from None
    except RequestException as exc:
        raise _interrupted(snapshot, path, _reason(exc)) from None
    except OSError as exc:
        if exc.errno in (errno.ENOSPC, errno.EACCES, errno.EROFS, errno.EDQUOT):
            raise  # the disk's problem: errors.py names the path
        raise _interrupted(snapshot, path, _reason(exc)) from None
    return Path(local)


def _interrupted(snapshot: Snapshot, path: str, why: str) -> DatasetError:
    return DatasetError(
        f"the download of {path} from {snapshot.repo_id} was interrupted ({why}): run the same command again; it "
        f"resumes from the partial file in the Hugging Face cache ({hub_cache()})"
    )


def _reason(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    # requests' messages nest the whole retry story; its last clause is the useful part.
    for marker in ("Caused by ", "Errno"):
        if marker in text:
            text = text[text.rindex(marker) :]
    return f"{type(exc).__name__}: {text[:200]}"
