"""Table of the official ViTPose checkpoints and a resumable, hash-checked downloader.

Where the files come from:

* ``vitpose-{b,l,h}`` and ``vitpose-{b,l,h}-multi-coco``: the official mmpose-format ``.pth`` files of
  ViTAE-Transformer/ViTPose (published there as OneDrive links, which cannot be fetched by a program).
  The URLs point at the ``public-data/ViTPose`` mirror on the Hugging Face hub that the demo linked
  from the official README loads them from.
* ``hf-*``: the authors' (``usyd-community``) conversions in the Hugging Face layout (``config.json`` +
  ``model.safetensors``), including the ViTPose+ mixture-of-experts models (6 experts; pick one with
  ``load_model(..., dataset=...)``).

Hashes are listed only where a SHA-256 was published for the exact file; the others are downloaded
without a hash check (``sha256`` is ``None``), which ``pyramidpose weights list`` says. The URLs were
collected from public references and could not be fetched from the machine this was written on.

Download: streamed to ``<dest>.part`` with a tqdm bar, resumed with an HTTP ``Range`` request when the
connection drops (automatically up to ``retries`` times, and again on the next run), checked against
the SHA-256 when known, then renamed onto the final name. A hash mismatch removes the partial file.
"""

from __future__ import annotations

import hashlib
import http.client
import os
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from pyramidpose.errors import CheckpointError

HF = "https://huggingface.co"
MIRROR_ENV = "PYRAMIDPOSE_WEIGHTS_MIRROR"  # replaces the https://huggingface.co prefix when set
CACHE_ENV = "PYRAMIDPOSE_CACHE"


@dataclass(frozen=True)
class RemoteFile:
    """One file of a checkpoint: where to get it and how to check it."""

    filename: str
    url: str
    sha256: str | None = None
    size: int | None = None


@dataclass(frozen=True)
class OfficialCheckpoint:
    """A downloadable checkpoint.

    ``layout`` is ``"official"`` (one mmpose ``.pth``, saved as ``<name>.pth``) or ``"hf"`` (a
    directory ``<name>/`` holding the Hugging Face files). Both load with :func:`pyramidpose.load_model`.
    """

    name: str
    description: str
    layout: str
    files: tuple[RemoteFile, ...]
    source: str

    @property
    def size(self) -> int | None:
        sizes = [f.size for f in self.files]
        return None if any(s is None for s in sizes) else sum(sizes)  # type: ignore[misc]

    def target(self, directory: Path) -> Path:
        """Where the downloaded checkpoint lives (a file or a directory)."""
        return directory / (f"{self.name}.pth" if self.layout == "official" else self.name)


_OFFICIAL_SRC = "ViTAE-Transformer/ViTPose README (OneDrive) via the public-data/ViTPose hub mirror"


def _pth(name: str, desc: str, sha256: str | None = None, size: int | None = None, rev: str = "main") -> OfficialCheckpoint:
    url = f"{HF}/public-data/ViTPose/resolve/{rev}/models/{name}.pth"
    return OfficialCheckpoint(name, desc, "official", (RemoteFile(f"{name}.pth", url, sha256, size),), _OFFICIAL_SRC)


def _hf(name: str, repo: str, desc: str) -> OfficialCheckpoint:
    base = f"{HF}/usyd-community/{repo}/resolve/main"
    files = (RemoteFile("config.json", f"{base}/config.json"), RemoteFile("model.safetensors", f"{base}/model.safetensors"))
    return OfficialCheckpoint(name, desc, "hf", files, f"Hugging Face hub usyd-community/{repo}")


#: name -> checkpoint. COCO models have K=17 and input 256x192.
OFFICIAL_CHECKPOINTS: dict[str, OfficialCheckpoint] = {
    c.name: c
    for c in (
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
        _hf("hf-vitpose-b-simple", "vitpose-base-simple", "ViTPose-B, simple decoder, COCO (HF layout)"),
        _hf("hf-vitpose-b", "vitpose-base", "ViTPose-B, classic decoder, COCO (HF layout)"),
        _hf("hf-vitpose-b-coco-aic-mpii", "vitpose-base-coco-aic-mpii", "ViTPose-B, classic, COCO+AIC+MPII (HF layout)"),
        _hf("hf-vitpose-plus-s", "vitpose-plus-small", "ViTPose+-S, MoE 6 experts, COCO head (HF layout)"),
        _hf("hf-vitpose-plus-b", "vitpose-plus-base", "ViTPose+-B, MoE 6 experts, COCO head (HF layout)"),
        _hf("hf-vitpose-plus-l", "vitpose-plus-large", "ViTPose+-L, MoE 6 experts, COCO head (HF layout)"),
        _hf("hf-vitpose-plus-h", "vitpose-plus-huge", "ViTPose+-H, MoE 6 experts, COCO head (HF layout)"),
    )
}


def default_weights_dir() -> Path:
    """``$PYRAMIDPOSE_CACHE/weights`` or ``~/.cache/pyramidpose/weights``."""
    root = os.environ.get(CACHE_ENV) or os.path.join(os.path.expanduser("~"), ".cache", "pyramidpose")
    return Path(root) / "weights"


def _mirror(url: str) -> str:
    mirror = os.environ.get(MIRROR_ENV)
    return mirror.rstrip("/") + url[len(HF) :] if mirror and url.startswith(HF) else url


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
    """Whether ``path`` starts like a ``kind`` file: torch = zip (``PK\\x03\\x04``) or a pickle
    (protocol 2-5); safetensors = an 8-byte header length within the file, then ``{``."""
    try:
        with open(path, "rb") as f:
            head = f.read(9)
            size = os.fstat(f.fileno()).st_size
    except OSError:
        return False
    if kind == "torch":
        return head[:4] == b"PK\x03\x04" or (len(head) >= 2 and head[0] == 0x80 and 2 <= head[1] <= 5)
    if kind == "safetensors":
        return len(head) == 9 and int.from_bytes(head[:8], "little") <= size - 8 and head[8:9] == b"{"
    raise ValueError(f"unknown format {kind!r}")


def download(
    name: str,
    directory: str | os.PathLike[str] | None = None,
    *,
    table: dict[str, OfficialCheckpoint] | None = None,
    retries: int = 3,
    backoff: float = 1.0,
    progress: bool = True,
) -> Path:
    """Download the checkpoint ``name`` of ``table`` (default :data:`OFFICIAL_CHECKPOINTS`).

    Returns the path to pass to :func:`pyramidpose.load_model`. Files already present (and matching
    their hash when one is known) are not fetched again.
    """
    table = OFFICIAL_CHECKPOINTS if table is None else table
    if name not in table:
        raise CheckpointError(f"unknown checkpoint {name!r}; run 'pyramidpose weights list' (known: {', '.join(table)})")
    ckpt = table[name]
    directory = Path(directory) if directory is not None else default_weights_dir()
    target = ckpt.target(directory)
    for rf in ckpt.files:
        dest = target if ckpt.layout == "official" else target / rf.filename
        expect = expected_format(rf.filename)
        ok = dest.exists() and (rf.sha256 is None or file_sha256(dest) == rf.sha256)
        if ok and (expect is None or has_magic(dest, expect)):  # a saved error page is fetched again
            continue
        download_file(
            _mirror(rf.url), dest, sha256=rf.sha256, size=rf.size, retries=retries, backoff=backoff,
            progress=progress, expect=expect,
        )
    return target
