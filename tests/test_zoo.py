"""The model zoo through huggingface_hub against a fake hub on 127.0.0.1: names resolve to a cached
download on first use, HF_ENDPOINT and HF_HUB_OFFLINE are honoured, hashes are checked, every
official size is listed with its cache state."""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from standin_models import tiny_official_bytes

from pyramidpose.commands import weights as weights_cmd
from pyramidpose.errors import CheckpointError
from pyramidpose.models import official
from pyramidpose.models.official import OFFICIAL_CHECKPOINTS, resolve_weights


class _FakeHub:
    """Answers the hub's ``/{repo}/resolve/{revision}/{path}`` HEAD and GET requests."""

    def __init__(self, files: dict[str, bytes]) -> None:
        self.files = files
        self.gets: list[str] = []
        hub = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def _head(self) -> bytes | None:
                path = self.path.split("?")[0]
                body = hub.files.get(path)
                if body is None:
                    self.send_response(404)
                    self.send_header("X-Error-Code", "EntryNotFound")
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return None
                self.send_response(200)
                self.send_header("X-Repo-Commit", "c" * 40)
                self.send_header("ETag", f'"{hashlib.sha256(body).hexdigest()}"')
                self.send_header("Content-Length", str(len(body)))
                self.send_header("Content-Type", "application/octet-stream")
                self.end_headers()
                return body

            def do_HEAD(self) -> None:  # noqa: N802
                self._head()

            def do_GET(self) -> None:  # noqa: N802
                if "/resolve/" in self.path:  # (huggingface_hub may also ask /api/...)
                    hub.gets.append(self.path)
                body = self._head()
                if body is not None:
                    self.wfile.write(body)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}"


@pytest.fixture
def hub(tmp_path: Path, monkeypatch) -> Iterator[_FakeHub]:
    payload = tiny_official_bytes()
    server = _FakeHub({
        "/public-data/ViTPose/resolve/main/models/vitpose-b.pth": payload,
        "/public-data/ViTPose/resolve/main/models/vitpose-l.pth": b"<!DOCTYPE html><html>Too many requests</html>",
        # a published hash that this payload does not match
        "/public-data/ViTPose/resolve/e44e7d9f97bc6f65df4e8a57d39bc02404c0aeb7/models/vitpose-b-multi-coco.pth": payload,
    })  # fmt: skip
    monkeypatch.setenv("HF_ENDPOINT", server.url)
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub-cache"))
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    try:
        yield server
    finally:
        server.httpd.shutdown()
        server.httpd.server_close()


def test_name_resolves_to_a_cached_download(hub: _FakeHub, tmp_path: Path, monkeypatch) -> None:
    import pyramidpose

    assert official.cached_path(OFFICIAL_CHECKPOINTS["vitpose-b"]) is None
    model = pyramidpose.load_model("vitpose-b")  # fetched on first use through HF_ENDPOINT
    assert model.config.backbone == "tiny"
    assert hub.gets == ["/public-data/ViTPose/resolve/main/models/vitpose-b.pth"]
    path = resolve_weights("vitpose-b")
    assert str(tmp_path / "hub-cache") in str(path) and len(hub.gets) == 1  # second use: from the cache
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")  # offline: the cached file still works
    assert resolve_weights("vitpose-b") == path
    with pytest.raises(CheckpointError, match="vitpose-h is not in the local cache and downloads are off"):
        resolve_weights("vitpose-h")


def test_hash_mismatch_removes_the_file(hub: _FakeHub) -> None:
    ckpt = OFFICIAL_CHECKPOINTS["vitpose-b-multi-coco"]
    with pytest.raises(CheckpointError, match="SHA-256 mismatch"):
        resolve_weights("vitpose-b-multi-coco", progress=False)
    assert official.cached_path(ckpt) is None


def test_unreachable_hub_and_unknown_names(tmp_path: Path, monkeypatch, capsys) -> None:
    import huggingface_hub.utils._http as hub_http

    monkeypatch.setattr(hub_http.time, "sleep", lambda s: None)  # the hub client's retry back-off
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "c"))
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    with pytest.raises(CheckpointError, match="cannot be reached"):
        resolve_weights("vitpose-h", progress=False)
    with pytest.raises(CheckpointError, match="not a model name"):
        resolve_weights("vitpose-xl")
    with pytest.raises(CheckpointError, match="OneDrive"):
        resolve_weights("vitpose-s")
    from pyramidpose.cli import main

    code = main(["predict", "x.jpg", "--weights", "vitpose-h", "--out", str(tmp_path / "o")])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "vitpose-h is not in the local cache" in err[0]


def test_weights_list_shows_every_size_and_cache_state(hub: _FakeHub, capsys) -> None:
    resolve_weights("vitpose-b", progress=False)
    assert weights_cmd.main(["list"]) == 0
    out = capsys.readouterr().out
    for name in ("vitpose-s", "vitpose-b", "vitpose-l", "vitpose-h",
                 "vitpose-plus-s", "vitpose-plus-b", "vitpose-plus-l", "vitpose-plus-h"):  # fmt: skip
        assert f"| {name} | " in out
    rows = {line.split(" | ")[0][2:]: line for line in out.splitlines() if line.startswith("| vitpose")}
    assert rows["vitpose-b"].startswith("| vitpose-b | yes |") and rows["vitpose-l"].startswith("| vitpose-l | no |")
    assert "by hand" in rows["vitpose-s"]
    assert weights_cmd.main(["download", "vitpose-b", "--no-progress"]) == 0
    assert str(resolve_weights("vitpose-b")) in capsys.readouterr().out


def test_hub_answering_a_web_page_saves_nothing(hub: _FakeHub) -> None:
    with pytest.raises(CheckpointError, match="gave an HTML page, not a torch file; the file was removed"):
        resolve_weights("vitpose-l", progress=False)
    assert official.cached_path(OFFICIAL_CHECKPOINTS["vitpose-l"]) is None
