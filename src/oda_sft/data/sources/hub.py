"""The one place oda-sft talks to the Hugging Face Hub: resolve a repo's revision to a commit, list its files,
and download them into the Hugging Face cache (which shows progress and resumes an interrupted download from
its partial file). Datasets (`data add`) and tokenizers (measuring a dataset) both come through here.

huggingface_hub is imported only when called. HF_ENDPOINT, HF_HUB_OFFLINE, HF_HUB_CACHE and HF_HOME are
read at each call, so a setting made after import (a test, a wrapper script) is obeyed.

An unreachable Hub is reported after one connection attempt of at most CONNECT_TIMEOUT seconds, in one
line that names the ways out, instead of huggingface_hub's retries (about 24 s). Every downloaded file is
checked against the hash the Hub's file list gave for it (the LFS sha256, else the git blob id) before it is
used, and every file name is checked to stay inside the repo.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import re
import socket
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from oda_sft.errors import DatasetError
from oda_sft.util.fs import atomic_write_json, atomic_write_text
from oda_sft.util.paths import cache_dir

CONNECT_TIMEOUT = 4.0  # seconds to open a connection to the Hub before calling it unreachable
READ_TIMEOUT = 60.0
DEFAULT_ENDPOINT = "https://huggingface.co"
_SHA = re.compile(r"[0-9a-f]{40}")
_SHA256 = re.compile(r"[0-9a-f]{64}")
_TRUE = {"1", "ON", "YES", "TRUE"}
_CHUNK = 1 << 20

Expected = tuple[str, str]  # ("sha256", hex) for an LFS file, ("git-blob", hex) for one stored in git


@dataclass(frozen=True)
class Snapshot:
    """A repo at one commit: what a fetch downloads and records."""

    repo_id: str
    requested: str  # the revision asked for: a branch, tag or commit ("main" by default)
    sha: str  # the commit it resolved to
    files: dict[str, int | None]  # repo path -> size in bytes (None when unknown)
    offline: bool  # resolved from the Hugging Face cache with HF_HUB_OFFLINE
    repo_type: str = "dataset"  # or "model"
    expected: dict[str, Expected] = field(default_factory=dict)  # repo path -> the hash the Hub gave
    way_out: str = ""  # how to do without the Hub, for errors


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


def _repo_cache(repo_id: str, repo_type: str = "dataset") -> Path:
    return hub_cache() / f"{repo_type}s--{repo_id.replace('/', '--')}"


def _record_dir(repo_id: str, repo_type: str) -> Path:
    # oda-sft's own records of what a Hugging Face cache holds; datasets keep the folder they had before models
    # came through here too. Another cache than the default one (HF_HUB_CACHE, HF_HOME) keeps records of its own.
    key = repo_id.replace("/", "--")
    root = cache_dir() / "hub"
    here = hub_cache()
    if here != _default_hub_cache():
        root = root / "caches" / hashlib.sha256(str(here.absolute()).encode()).hexdigest()[:16]
    return root / (key if repo_type == "dataset" else f"{repo_type}s--{key}")


def _default_hub_cache() -> Path:
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg) if xdg else Path.home() / ".cache") / "huggingface" / "hub"


def _listing_path(repo_id: str, sha: str, repo_type: str = "dataset") -> Path:
    # The Hub's file list of a commit, so an offline fetch can tell a whole copy from a partial one.
    return _record_dir(repo_id, repo_type) / f"{sha}.json"


def _refs_path(repo_id: str, repo_type: str = "dataset") -> Path:
    return _record_dir(repo_id, repo_type) / "refs.json"


def _verified_path() -> Path:
    return cache_dir() / "hub" / "verified.json"


def _local_copy(name: str) -> str:
    return f"download the repo elsewhere and give its folder or data file: `oda-sft data add {name} PATH`"


def _check_name(path: str, repo_id: str) -> None:
    """A repo path must stay inside the snapshot folder it is downloaded to."""
    parts = path.split("/")
    if path.startswith("/") or any(p in ("", ".", "..") for p in parts):  # git itself allows none of these
        raise DatasetError(
            f"the Hub lists a file of {repo_id} whose name leaves the repository ({path!r}): nothing was "
            f"downloaded; check that HF_ENDPOINT ({endpoint()}) is the Hugging Face Hub or a faithful mirror"
        )


def cached_file(repo_id: str, path: str, repo_type: str = "model") -> Path | None:
    """`path` of the repo at the revision the Hugging Face cache last resolved main to; no network."""
    from huggingface_hub import try_to_load_from_cache

    found = try_to_load_from_cache(repo_id, path, cache_dir=hub_cache(), repo_type=repo_type)
    return Path(found) if isinstance(found, str) else None


def resolve(
    repo_id: str, revision: str | None, name: str, *, repo_type: str = "dataset", way_out: str | None = None
) -> Snapshot:
    """The commit `revision` (default main) of repo `repo_id` and its files. `name` is the catalog name, for
    the advice in errors; `way_out` replaces that advice (how to do without the Hub) for other kinds of repo."""
    requested = revision or "main"
    local = way_out or _local_copy(name)
    if offline():
        return _resolve_cached(repo_id, requested, repo_type, local)
    # A dataset may already be whole in the cache; a tokenizer that was would not have come here.
    cache_first = "set HF_HUB_OFFLINE=1 to use a copy already in the Hugging Face cache, or "
    offline_too = local if way_out else cache_first + local
    from huggingface_hub import HfApi
    from huggingface_hub.errors import GatedRepoError, HfHubHTTPError, RepositoryNotFoundError, RevisionNotFoundError
    from requests import ConnectionError as RequestsConnectionError
    from requests import Timeout

    api = HfApi(endpoint=endpoint())
    timeout: Any = (CONNECT_TIMEOUT, READ_TIMEOUT)  # requests takes (connect, read); the stub says float
    try:
        # repo_info asks once (no retries), unlike hf_hub_download's HEAD, which retries for about 24 s.
        info = api.repo_info(repo_id, repo_type=repo_type, revision=requested, files_metadata=True, timeout=timeout)
    except (RequestsConnectionError, Timeout) as exc:
        raise DatasetError(
            f"cannot reach the Hugging Face Hub at {endpoint()} to fetch {repo_id} ({_reason(exc)}): check the "
            f"network or HF_ENDPOINT; offline, {offline_too}"
        ) from None
    except RevisionNotFoundError:
        raise DatasetError(
            f"{repo_id} has no revision {requested!r}: give a branch, tag or commit of it with --revision"
        ) from None
    except GatedRepoError:
        raise DatasetError(_gated(repo_id)) from None
    except RepositoryNotFoundError:
        raise DatasetError(
            f"{repo_id} is not on {endpoint()} (or needs a login): check HF_ENDPOINT, log in with "
            "`huggingface-cli login` or HF_TOKEN"
        ) from None
    except HfHubHTTPError as exc:
        raise DatasetError(f"the Hub refused {repo_id} ({_reason(exc)}): try again later; {offline_too}") from None
    if not isinstance(info.sha, str) or not _SHA.fullmatch(info.sha):
        raise DatasetError(f"the Hub gave no commit for {repo_id} at {requested!r}: try again, or pass --revision SHA")
    files: dict[str, int | None] = {}
    expected: dict[str, Expected] = {}
    for sibling in info.siblings or []:
        _check_name(sibling.rfilename, repo_id)
        files[sibling.rfilename] = sibling.size
        if sibling.lfs is not None and _SHA256.fullmatch(sibling.lfs.sha256 or ""):
            expected[sibling.rfilename] = ("sha256", sibling.lfs.sha256)
        elif sibling.blob_id and _SHA.fullmatch(sibling.blob_id):  # a git blob id: the pointer's id for LFS
            expected[sibling.rfilename] = ("git-blob", sibling.blob_id)
    listing = {"repo_id": repo_id, "sha": info.sha, "files": files, "expected": expected}
    atomic_write_json(_listing_path(repo_id, info.sha, repo_type), listing)
    if requested != info.sha:  # an offline fetch of the same revision name finds this commit again
        refs = _refs_path(repo_id, repo_type)
        known = json.loads(refs.read_text(encoding="utf-8")) if refs.is_file() else {}
        atomic_write_json(refs, {**known, requested: info.sha})
    return Snapshot(repo_id, requested, info.sha, files, False, repo_type, expected, local)


def _resolve_cached(repo_id: str, requested: str, repo_type: str, local: str) -> Snapshot:
    repo = _repo_cache(repo_id, repo_type)
    sha = requested if _SHA.fullmatch(requested) else None
    ref, refs = repo / "refs" / requested, _refs_path(repo_id, repo_type)
    if sha is None and refs.is_file():  # the commit oda-sft last resolved this name to
        sha = json.loads(refs.read_text(encoding="utf-8")).get(requested)
    if sha is None and ".." not in requested.split("/") and ref.is_file():  # written by huggingface_hub
        sha = ref.read_text(encoding="utf-8").strip()
    snapshot = repo / "snapshots" / sha if isinstance(sha, str) and _SHA.fullmatch(sha) else None
    if sha is None or snapshot is None or not snapshot.is_dir():
        raise DatasetError(
            f"HF_HUB_OFFLINE is set and {repo_id} at {requested!r} is not in the Hugging Face cache ({hub_cache()}): "
            f"unset HF_HUB_OFFLINE to download it, or {local}"
        )
    listing = _listing_path(repo_id, sha, repo_type)
    if not listing.is_file():
        # The cache alone cannot tell a whole copy from a partial one: only the Hub's file list can.
        raise DatasetError(
            f"HF_HUB_OFFLINE is set and oda-sft has no record of the Hub's file list for {repo_id} at {sha[:12]} "
            f"(the copy in the Hugging Face cache came from elsewhere, and may be partial): unset HF_HUB_OFFLINE for "
            f"one run with the network, which checks the copy and downloads only what is missing, or {local}"
        )
    recorded = json.loads(listing.read_text(encoding="utf-8"))
    files = {str(k): v for k, v in recorded["files"].items()}
    expected = {str(k): (str(v[0]), str(v[1])) for k, v in (recorded.get("expected") or {}).items()}
    return Snapshot(repo_id, requested, sha, files, True, repo_type, expected, local)


def download(snapshot: Snapshot, path: str, name: str = "") -> Path:
    """The local path of `path` at the snapshot's commit, downloaded into the Hugging Face cache if needed, and
    checked against the hash the Hub's file list gave. (`name` is unused; the advice comes with the snapshot.)"""
    from huggingface_hub import hf_hub_download
    from huggingface_hub.errors import GatedRepoError, HfHubHTTPError, LocalEntryNotFoundError
    from requests import RequestException

    _check_name(path, snapshot.repo_id)
    try:
        local = Path(
            hf_hub_download(
                snapshot.repo_id,
                path,
                repo_type=snapshot.repo_type,
                revision=snapshot.sha,
                cache_dir=hub_cache(),
                endpoint=endpoint(),
                local_files_only=snapshot.offline,
            )
        )
    except LocalEntryNotFoundError:
        if snapshot.offline:
            raise DatasetError(
                f"HF_HUB_OFFLINE is set and {path} of {snapshot.repo_id} at {snapshot.sha[:12]} is not in the "
                f"Hugging Face cache ({hub_cache()}): unset HF_HUB_OFFLINE to download it, or {snapshot.way_out}"
            ) from None
        raise _interrupted(snapshot, path, "the Hub stopped answering") from None
    except GatedRepoError:
        raise DatasetError(f"{_gated(snapshot.repo_id)}; or {snapshot.way_out}") from None
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
    _verify(snapshot, path, local)
    if not snapshot.offline and snapshot.requested != snapshot.sha:
        _cache_ref(snapshot)
    return local


def _cache_ref(snapshot: Snapshot) -> None:
    """Point the cache's refs/<revision> at the commit, as huggingface_hub does when it resolves a branch
    itself, so a later cache lookup (a tokenizer, HF_HUB_OFFLINE) finds this commit without the network."""
    if ".." in snapshot.requested.split("/"):
        return
    ref = _repo_cache(snapshot.repo_id, snapshot.repo_type) / "refs" / snapshot.requested
    try:
        if not ref.is_file() or ref.read_text(encoding="utf-8").strip() != snapshot.sha:
            atomic_write_text(ref, snapshot.sha)
    except OSError:
        pass  # only a shortcut for later: the file itself is in place


def _verify(snapshot: Snapshot, path: str, local: Path) -> None:
    """The file's bytes hash to what the Hub's file list gave, or it is removed from the cache and refused.
    A file checked once is known by its size and mtime afterwards, so a re-run does not read it again."""
    want = snapshot.expected.get(path)
    if want is None:  # a file list recorded before hashes were: nothing to compare with
        return
    kind, digest = want
    blob = local.resolve()
    stat = blob.stat()
    stamp = [stat.st_size, stat.st_mtime_ns, kind, digest]
    store = _verified_path()
    try:
        verified = json.loads(store.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        verified = {}
    if verified.get(str(blob)) == stamp:
        return
    got = _digest(blob, kind, stat.st_size)
    if got != digest:
        for stale in (local, blob):
            stale.unlink(missing_ok=True)
        again = "again without HF_HUB_OFFLINE" if snapshot.offline else "again"
        raise DatasetError(
            f"{path} of {snapshot.repo_id} at {snapshot.sha[:12]} is not what the Hub's file list says ({kind} "
            f"{digest[:16]}..., the file has {got[:16]}...): it was removed from the Hugging Face cache; run the same "
            f"command {again} to download it anew; if it differs again, something between you and {endpoint()} "
            f"alters it: {snapshot.way_out}"
        )
    kept = {k: v for k, v in verified.items() if Path(k).exists()}
    atomic_write_json(store, {**kept, str(blob): stamp})


def _digest(path: Path, kind: str, size: int) -> str:
    # A git blob id is sha1 over "blob <size>\0" and the bytes; an LFS file is named by its sha256.
    h = hashlib.sha256() if kind == "sha256" else hashlib.sha1(f"blob {size}\0".encode())
    with path.open("rb") as handle:
        while chunk := handle.read(_CHUNK):
            h.update(chunk)
    return h.hexdigest()


def _gated(repo_id: str) -> str:
    return f"{repo_id} is gated: accept its terms on the Hub, then log in (`huggingface-cli login` or HF_TOKEN)"


def _interrupted(snapshot: Snapshot, path: str, why: str) -> DatasetError:
    return DatasetError(
        f"the download of {path} from {snapshot.repo_id} was interrupted ({why}): run the same command again; it "
        f"resumes from the partial file in the Hugging Face cache ({hub_cache()})"
    )


def _reason(exc: BaseException) -> str:
    """What went wrong, in a few words: requests nests the socket's error inside urllib3's inside its own,
    and huggingface_hub appends a request id; the socket's own words are the useful part."""
    from requests import ConnectTimeout, ReadTimeout

    response = getattr(exc, "response", None)
    status = getattr(response, "status_code", None)
    if isinstance(status, int):
        said = getattr(exc, "server_message", None) or getattr(response, "reason", None) or ""
        return f"HTTP {status}" + (f": {' '.join(str(said).split())[:160]}" if said else "")
    if isinstance(exc, ConnectTimeout):
        return f"no connection within {CONNECT_TIMEOUT:g} s"
    if isinstance(exc, ReadTimeout):
        return f"no answer within {READ_TIMEOUT:g} s"
    cause = _socket_error(exc)
    if isinstance(cause, socket.gaierror):
        return f"the host name does not resolve: {cause.strerror}"
    if cause is not None:
        return str(cause.strerror)
    text = re.sub(r"\(Request ID: [^)]*\)", "", " ".join(str(exc).split())).strip(" ,'\"()")
    return f"{type(exc).__name__}: {text[:200]}" if text else type(exc).__name__


def _socket_error(exc: BaseException) -> OSError | None:
    """The deepest OSError with an error text (socket.gaierror, ConnectionRefusedError...) under `exc`."""
    found: tuple[int, OSError] | None = None
    todo: list[tuple[Any, int]] = [(exc, 0)]
    seen: set[int] = set()
    while todo:
        node, depth = todo.pop()
        if not isinstance(node, BaseException) or id(node) in seen:
            continue
        seen.add(id(node))
        if isinstance(node, OSError) and node.strerror and (found is None or depth > found[0]):
            found = (depth, node)
        below = [*node.args, getattr(node, "reason", None), node.__context__, node.__cause__]
        todo.extend((child, depth + 1) for child in below)
    return found[1] if found else None
