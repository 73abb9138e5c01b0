"""The model zoo: every official ViTPose / ViTPose+ checkpoint, fetched and cached on first use.

Where the files come from:

* ``vitpose-{b,l,h}`` and ``vitpose-{b,l,h}-multi-coco``: the official mmpose-format ``.pth`` files of
  ViTAE-Transformer/ViTPose (published there as OneDrive links, which cannot be fetched by a program),
  from the ``public-data/ViTPose`` mirror on the Hugging Face hub that the official README's demo uses.
* ``vitpose-b-simple``, ``vitpose-b-hf``, ``vitpose-b-coco-aic-mpii`` and ``vitpose-plus-{s,b,l,h}``:
  the authors' (``usyd-community``) conversions in the Hugging Face layout (``config.json`` +
  ``model.safetensors``), including the ViTPose+ mixture-of-experts models (6 experts; pick one
  with ``load_model(..., dataset=...)``).
* ``vitpose-s`` (and the official ViTPose+ ``.pth`` files) are published only on OneDrive: listed
  "by hand" with the page to get them from; pass the downloaded file's path.

Files on the hub are fetched with ``huggingface_hub`` into its cache (``HF_HOME`` / ``HF_HUB_CACHE``),
so ``HF_HUB_OFFLINE=1`` (no network: cached files only) and ``HF_ENDPOINT`` (a mirror) work as for
any hub library. A SHA-256 is checked where one was published for the exact file; a mismatch
removes the cached file. Names resolve anywhere a checkpoint path is accepted
(:func:`resolve_weights`, used by :func:`pyramidpose.load_model`): ``--weights vitpose-b``.

:func:`download_file` is the plain resumable HTTP downloader for files not on the hub.
"""

from __future__ import annotations

import hashlib
import http.client
import logging
import os
import re
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from pyramidpose.errors import CheckpointError

HF = "https://huggingface.co"
CACHE_ENV = "PYRAMIDPOSE_CACHE"
_HUB_URL = re.compile(r"^https://huggingface\.co/(?P<repo>[^/]+/[^/]+)/resolve/(?P<rev>[^/]+)/(?P<path>.+)$")


@dataclass(frozen=True)
class RemoteFile:
    """One file of a checkpoint: where to get it and how to check it."""

    filename: str
    url: str
    sha256: str | None = None
    size: int | None = None


@dataclass(frozen=True)
class OfficialCheckpoint:
    """A checkpoint of the zoo.

    ``layout`` is ``"official"`` (one mmpose ``.pth``) or ``"hf"`` (a directory with the Hugging
    Face files). Both load with :func:`pyramidpose.load_model`. ``manual`` entries have no
    program-readable URL (``files[0].url`` is the page to download them from by hand).
    """

    name: str
    description: str
    layout: str
    files: tuple[RemoteFile, ...]
    source: str
    manual: bool = False

    @property
    def size(self) -> int | None:
        sizes = [f.size for f in self.files]
        return None if any(s is None for s in sizes) else sum(sizes)  # type: ignore[misc]

    def target(self, directory: Path) -> Path:
        """Where a checkpoint downloaded into ``directory`` lives (a file or a directory)."""
        return directory / (f"{self.name}.pth" if self.layout == "official" else self.name)


_OFFICIAL_SRC = "ViTAE-Transformer/ViTPose README (OneDrive) via the public-data/ViTPose hub mirror"
_ONEDRIVE = "https://github.com/ViTAE-Transformer/ViTPose#results-from-this-repo-on-ms-coco-val-set-single-task-training"


def _pth(name: str, desc: str, sha256: str | None = None, size: int | None = None, rev: str = "main") -> OfficialCheckpoint:
    url = f"{HF}/public-data/ViTPose/resolve/{rev}/models/{name}.pth"
    return OfficialCheckpoint(name, desc, "official", (RemoteFile(f"{name}.pth", url, sha256, size),), _OFFICIAL_SRC)


def _hf(name: str, repo: str, desc: str) -> OfficialCheckpoint:
    base = f"{HF}/usyd-community/{repo}/resolve/main"
    files = (RemoteFile("config.json", f"{base}/config.json"), RemoteFile("model.safetensors", f"{base}/model.safetensors"))
    return OfficialCheckpoint(name, desc, "hf", files, f"Hugging Face hub usyd-community/{repo}")


def _by_hand(name: str, desc: str) -> OfficialCheckpoint:
    files = (RemoteFile(f"{name}.pth", _ONEDRIVE),)
    return OfficialCheckpoint(name, desc, "official", files, "ViTAE-Transformer/ViTPose README (OneDrive only)", manual=True)


#: name -> checkpoint. COCO models have K=17 and input 256x192.
OFFICIAL_CHECKPOINTS: dict[str, OfficialCheckpoint] = {
    c.name: c
    for c in (
        _by_hand("vitpose-s", "ViTPose-S, classic decoder, COCO (single-task), 73.8 AP val"),
        _pth("vitpose-b", "ViTPose-B, classic decoder, COCO (single-task), 75.8 AP val"),
        _pth("vitpose-l", "ViTPose-L, classic decoder, COCO (single-task), 78.3 AP val"),
        _pth("vitpose-h", "ViTPose-H, classic decoder, COCO (single-task), 79.1 AP val"),
        _pth(
            "vitpose-b-multi-coco",
            "ViTPose-B, classic, multi-task COCO+AIC+MPII+CrowdPose, COCO head, 77.5 AP val",
            sha256="595b5e128b2fe6e4364d8fa9cb9a2fd0f9710301b08ea0daa5f2903595bbab27",
            size=360038314,
            rev="e44e7d9f97bc6f65df4e8a57d39bc02404c0aeb7",
        ),
        _pth("vitpose-l-multi-coco", "ViTPose-L, classic, multi-task COCO+AIC+MPII+CrowdPose, COCO head, 79.1 AP"),
        _pth("vitpose-h-multi-coco", "ViTPose-H, classic, multi-task COCO+AIC+MPII+CrowdPose, COCO head, 79.8 AP"),
        _hf("vitpose-b-simple", "vitpose-base-simple", "ViTPose-B, simple decoder, COCO (HF layout)"),
        _hf("vitpose-b-hf", "vitpose-base", "ViTPose-B, classic decoder, COCO (HF layout)"),
        _hf("vitpose-b-coco-aic-mpii", "vitpose-base-coco-aic-mpii", "ViTPose-B, classic, COCO+AIC+MPII (HF layout)"),
        _hf("vitpose-plus-s", "vitpose-plus-small", "ViTPose+-S, MoE 6 experts, COCO head, 75.8 AP (HF layout)"),
        _hf("vitpose-plus-b", "vitpose-plus-base", "ViTPose+-B, MoE 6 experts, COCO head, 77.0 AP (HF layout)"),
        _hf("vitpose-plus-l", "vitpose-plus-large", "ViTPose+-L, MoE 6 experts, COCO head, 78.6 AP (HF layout)"),
        _hf("vitpose-plus-h", "vitpose-plus-huge", "ViTPose+-H, MoE 6 experts, COCO head, 79.4 AP (HF layout)"),
    )
}

#: Names of earlier releases -> current names.
ALIASES: dict[str, str] = {
    "hf-vitpose-b-simple": "vitpose-b-simple",
    "hf-vitpose-b": "vitpose-b-hf",
    "hf-vitpose-b-coco-aic-mpii": "vitpose-b-coco-aic-mpii",
    "hf-vitpose-plus-s": "vitpose-plus-s",
    "hf-vitpose-plus-b": "vitpose-plus-b",
    "hf-vitpose-plus-l": "vitpose-plus-l",
    "hf-vitpose-plus-h": "vitpose-plus-h",
}


def default_weights_dir() -> Path:
    """``$PYRAMIDPOSE_CACHE/weights`` or ``~/.cache/pyramidpose/weights`` (files not on the hub)."""
    root = os.environ.get(CACHE_ENV) or os.path.join(os.path.expanduser("~"), ".cache", "pyramidpose")
    return Path(root) / "weights"


def file_sha256(path: Path, chunk: int = 1 << 20) -> str:
    """Hex SHA-256 of a file, read in chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def download_file(
    url: str,
    dest: str | os.PathLike[str],
    *,
    sha256: str | None = None,
    size: int | None = None,
    retries: int = 3,
    timeout: float = 30.0,
    backoff: float = 1.0,
    progress: bool = True,
    expect: str | None = None,
) -> Path:
    """Download ``url`` to ``dest``: stream to ``dest.part``, resume on drops, verify, rename.

    ``expect`` (``"torch"`` or ``"safetensors"``, see :func:`expected_format`) refuses a response
    whose Content-Type is text (a web error page answered with 200) and a body that does not start
    with that format's magic, removing the partial file, so a wrong file never takes ``dest``.

    An existing ``dest.part`` (from an interrupted run) is resumed with an HTTP ``Range`` request; a
    server that ignores ranges makes the download start over. Up to ``retries`` dropped connections
    are resumed automatically (waiting ``backoff * 2**n`` s). If ``sha256`` is given and the result
    does not match, the partial file is deleted and :class:`CheckpointError` is raised; no file is
    left at ``dest``. Returns ``dest``.
    """
    from tqdm.auto import tqdm

    dest = Path(dest)
    part = dest.with_name(dest.name + ".part")
    dest.parent.mkdir(parents=True, exist_ok=True)
    failures = 0
    while True:
        have = part.stat().st_size if part.exists() else 0
        headers = {"User-Agent": "pyramidpose-weights/1"}
        if have:
            headers["Range"] = f"bytes={have}-"
        try:
            with urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=timeout) as resp:
                ctype = (resp.headers.get("Content-Type") or "").split(";")[0].strip().lower()
                if expect is not None and _is_text_type(ctype):
                    part.unlink(missing_ok=True)
                    raise CheckpointError(f"download of {url}: the server answered with {ctype!r}, not a "
                                          "checkpoint (an error page?); nothing was saved. Check the URL or mirror.")  # fmt: skip
                if have and resp.status == 206:
                    mode, start = "ab", have
                else:
                    mode, start = "wb", 0
                length = resp.headers.get("Content-Length")
                total = start + int(length) if length is not None else size
                with open(part, mode) as f, tqdm(
                    total=total, initial=start, unit="B", unit_scale=True, unit_divisor=1024,
                    desc=dest.name, disable=not progress, leave=False,
                ) as bar:
                    while block := resp.read(1 << 16):
                        f.write(block)
                        bar.update(len(block))
                    f.flush()
                    os.fsync(f.fileno())
                if total is not None and part.stat().st_size < total:
                    raise http.client.IncompleteRead(b"", total - part.stat().st_size)
            break
        except urllib.error.HTTPError as exc:
            if exc.code == 416 and have:  # nothing left to fetch: the .part is already complete
                break
            raise CheckpointError(f"download of {url} failed: HTTP {exc.code} {exc.reason}") from None
        except (urllib.error.URLError, http.client.HTTPException, ConnectionError, TimeoutError, OSError) as exc:
            failures += 1
            got = part.stat().st_size if part.exists() else 0
            if failures > retries:
                raise CheckpointError(
                    f"download of {url} was interrupted ({type(exc).__name__}: {exc}) with {got} bytes "
                    f"kept in {part}; run the same command again to resume"
                ) from None
            time.sleep(backoff * 2 ** (failures - 1))
    if size is not None and part.stat().st_size != size:
        n = part.stat().st_size
        part.unlink()
        raise CheckpointError(f"download of {url}: got {n} bytes, expected {size}; the partial file was removed")
    if sha256 is not None:
        digest = file_sha256(part)
        if digest != sha256.lower():
            part.unlink()
            raise CheckpointError(
                f"download of {url}: SHA-256 mismatch (got {digest}, expected {sha256}); the file was removed. "
                "The server may hold a different version: check the URL, or try again later."
            )
    if expect is not None and not has_magic(part, expect):
        with open(part, "rb") as f:
            head = f.read(16)
        part.unlink()
        raise CheckpointError(f"download of {url}: the body is not a {expect} file (starts with {head!r}); "
                              "nothing was saved. Check the URL or mirror.")  # fmt: skip
    os.replace(part, dest)
    return dest


_TEXT_TYPES = ("application/json", "application/xml", "application/xhtml+xml", "application/javascript")


def _is_text_type(ctype: str) -> bool:
    return ctype.startswith("text/") or ctype in _TEXT_TYPES


def expected_format(filename: str) -> str | None:
    """``"torch"`` for .pth/.pt/.bin/.ckpt, ``"safetensors"`` for .safetensors, else None (no check)."""
    suffix = Path(filename).suffix.lower()
    if suffix in (".pth", ".pt", ".bin", ".ckpt"):
        return "torch"
    return "safetensors" if suffix == ".safetensors" else None


def has_magic(path: Path, kind: str) -> bool:
    """Whether ``path`` starts like a ``kind`` file (:func:`pyramidpose.utils.sniff.file_kind`):
    torch = a zip or a pickle (protocol 2-5); safetensors = an 8-byte header length within the
    file, then ``{``."""
    from pyramidpose.utils.sniff import file_kind

    kinds = {"torch": {"torch-zip", "zip", "pickle"}, "safetensors": {"safetensors"}}
    if kind not in kinds:
        raise ValueError(f"unknown format {kind!r}")
    try:
        return file_kind(path) in kinds[kind]
    except OSError:
        return False


def _hub_parts(url: str) -> tuple[str, str, str] | None:
    """``(repo_id, revision, path in repo)`` of a hub ``resolve`` URL, else ``None``."""
    m = _HUB_URL.match(url)
    return (m["repo"], m["rev"], m["path"]) if m else None


def _offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in ("1", "true", "yes", "on")


def _hub_kwargs() -> dict:
    """Read at call time (``huggingface_hub`` reads its variables once, at import)."""
    kw: dict = {"endpoint": os.environ.get("HF_ENDPOINT") or None}
    cache = os.environ.get("HF_HUB_CACHE") or (
        os.path.join(os.environ["HF_HOME"], "hub") if os.environ.get("HF_HOME") else None
    )
    if cache:
        kw["cache_dir"] = cache
    return kw


def lookup(name: str, table: dict[str, OfficialCheckpoint] | None = None) -> OfficialCheckpoint:
    """The zoo entry called ``name`` (or an alias of it); :class:`CheckpointError` if unknown."""
    table = OFFICIAL_CHECKPOINTS if table is None else table
    key = ALIASES.get(name, name) if table is OFFICIAL_CHECKPOINTS else name
    if key not in table:
        raise CheckpointError(
            f"unknown checkpoint {name!r}; run 'pyramidpose weights list' (known: {', '.join(table)})"
        )
    return table[key]


def cached_path(ckpt: OfficialCheckpoint) -> Path | None:
    """The loadable path of ``ckpt`` when every file is in the hub cache, else ``None`` (no network)."""
    from huggingface_hub import try_to_load_from_cache

    got = []
    for rf in ckpt.files:
        parts = _hub_parts(rf.url)
        if parts is None or ckpt.manual:
            return None
        kw = _hub_kwargs()
        hit = try_to_load_from_cache(parts[0], parts[2], revision=parts[1], cache_dir=kw.get("cache_dir"))
        if not isinstance(hit, str):
            return None
        got.append(Path(hit))
    return got[0] if ckpt.layout == "official" else got[0].parent


def _hub_fetch(ckpt: OfficialCheckpoint, rf: RemoteFile, local_dir: Path | None, progress: bool) -> Path:
    """One file of ``ckpt`` through ``huggingface_hub`` (cache, offline mode, endpoint), hash-checked."""
    from huggingface_hub import hf_hub_download, try_to_load_from_cache
    from huggingface_hub.errors import EntryNotFoundError, HfHubHTTPError, LocalEntryNotFoundError
    from huggingface_hub.utils import disable_progress_bars, enable_progress_bars

    repo, rev, path = _hub_parts(rf.url)  # type: ignore[misc]
    kw = _hub_kwargs()
    was_cached = local_dir is None and isinstance(
        try_to_load_from_cache(repo, path, revision=rev, cache_dir=kw.get("cache_dir")), str
    )
    if not progress:
        disable_progress_bars()
    hub_log = logging.getLogger("huggingface_hub")
    level = hub_log.level
    hub_log.setLevel(logging.ERROR)  # its retry warnings would bury our one-line error
    try:
        got = Path(hf_hub_download(repo, path, revision=rev, local_dir=local_dir, local_files_only=_offline(), **kw))
    except LocalEntryNotFoundError as exc:
        why = (
            "downloads are off (HF_HUB_OFFLINE is set)"
            if _offline()
            else f"the hub at {kw['endpoint'] or HF} cannot be reached ({type(exc.__cause__ or exc).__name__})"
        )
        raise CheckpointError(
            f"{ckpt.name} is not in the local cache and {why}; connect once (or set HF_ENDPOINT to a mirror), "
            f"or download {rf.url} by hand and pass its path"
        ) from None
    except (HfHubHTTPError, EntryNotFoundError, OSError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise CheckpointError(f"download of {ckpt.name} ({rf.url}) failed: {first}") from None
    finally:
        hub_log.setLevel(level)
        if not progress:
            enable_progress_bars()
    expect = expected_format(rf.filename)
    if expect is not None and not has_magic(got, expect):  # e.g. a mirror that answered with a web page
        from pyramidpose.utils.sniff import describe_file

        what = describe_file(got)
        for f in {got, got.resolve()}:
            f.unlink(missing_ok=True)
        raise CheckpointError(f"download of {rf.url} gave {what}, not a {expect} file; the file was removed")
    if rf.sha256 is not None and not was_cached:
        digest = file_sha256(got)
        if digest != rf.sha256.lower():
            real = got.resolve()
            for f in {got, real}:
                f.unlink(missing_ok=True)
            raise CheckpointError(
                f"download of {rf.url}: SHA-256 mismatch (got {digest}, expected {rf.sha256}); the file was removed. "
                "The server (or HF_ENDPOINT mirror) holds a different file: check it, or try again later."
            )
    return got


def download(
    name: str,
    directory: str | os.PathLike[str] | None = None,
    *,
    table: dict[str, OfficialCheckpoint] | None = None,
    retries: int = 3,
    backoff: float = 1.0,
    progress: bool = True,
) -> Path:
    """Fetch the checkpoint ``name`` (default table: :data:`OFFICIAL_CHECKPOINTS`); return the path
    to pass to :func:`pyramidpose.load_model`.

    Hub files go to the ``huggingface_hub`` cache (or, with ``directory``, into
    ``directory/<name>/``); other URLs are downloaded with :func:`download_file` into ``directory``
    (default :func:`default_weights_dir`). Files already present (and matching their hash when one
    is known) are not fetched again.
    """
    ckpt = lookup(name, table)
    if ckpt.manual:
        raise CheckpointError(
            f"{ckpt.name} is published only on OneDrive, which a program cannot fetch: download it by hand "
            f"from {ckpt.files[0].url} and pass the file's path (e.g. --weights ~/Downloads/{ckpt.files[0].filename})"
        )
    base = Path(directory) if directory is not None else None
    if all(_hub_parts(rf.url) for rf in ckpt.files):
        local = base / ckpt.name if base is not None else None
        got = [_hub_fetch(ckpt, rf, local, progress) for rf in ckpt.files]
        return got[0] if ckpt.layout == "official" else got[0].parent
    base = base if base is not None else default_weights_dir()
    target = ckpt.target(base)
    for rf in ckpt.files:
        dest = target if ckpt.layout == "official" else target / rf.filename
        expect = expected_format(rf.filename)
        ok = dest.exists() and (rf.sha256 is None or file_sha256(dest) == rf.sha256)
        if ok and (expect is None or has_magic(dest, expect)):  # a saved error page is fetched again
            continue
        download_file(
            rf.url, dest, sha256=rf.sha256, size=rf.size, retries=retries, backoff=backoff,
            progress=progress, expect=expect,
        )
    return target


def resolve_weights(spec: str | os.PathLike[str], *, progress: bool = True) -> Path:
    """A checkpoint path for ``spec``: an existing path as it is, a zoo name (``vitpose-b``) as its
    cached download (fetched on first use); anything else is a one-line :class:`CheckpointError`."""
    p = Path(spec)
    if p.exists():
        return p
    name = str(spec)
    if name in OFFICIAL_CHECKPOINTS or name in ALIASES:
        ckpt = lookup(name)
        return cached_path(ckpt) or download(ckpt.name, progress=progress)
    raise CheckpointError(
        f"{spec}: no such file or directory, and not a model name (see 'pyramidpose weights list', e.g. vitpose-b)"
    )
