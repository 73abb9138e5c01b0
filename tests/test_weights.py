"""Checkpoint table and downloader against a local HTTP server on 127.0.0.1 (started by the tests)."""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import torch
from standin_models import tiny_official_bytes

from pyramidpose.commands import weights as weights_cmd
from pyramidpose.errors import CheckpointError
from pyramidpose.models.official import (
    OFFICIAL_CHECKPOINTS,
    OfficialCheckpoint,
    RemoteFile,
    download,
    download_file,
)

DATA = bytes(range(256)) * 4000  # ~1 MB of known content
SHA = hashlib.sha256(DATA).hexdigest()


class _Server:
    """Serves ``payload`` at any path; can cut the first responses mid-file or ignore Range."""

    def __init__(self, payload: bytes) -> None:
        self.payload = payload
        self.cut_next = 0  # number of upcoming responses to cut after half of their body
        self.honour_range = True
        self.files: dict[str, bytes] = {}  # path -> payload served there instead of ``payload``
        self.content_type: str | None = None
        self.requests: list[dict[str, str | None]] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:  # keep test output quiet
                pass

            def do_GET(self) -> None:  # noqa: N802 - http.server API
                server.requests.append({"path": self.path, "range": self.headers.get("Range")})
                data, start = server.files.get(self.path, server.payload), 0
                rng = self.headers.get("Range")
                if rng and server.honour_range:
                    start = int(rng.split("=")[1].split("-")[0])
                    if start >= len(data):
                        self.send_response(416)
                        self.end_headers()
                        return
                    self.send_response(206)
                    self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
                else:
                    self.send_response(200)
                body = data[start:]
                self.send_header("Content-Length", str(len(body)))
                if server.content_type:
                    self.send_header("Content-Type", server.content_type)
                self.end_headers()
                if server.cut_next > 0:
                    server.cut_next -= 1
                    self.wfile.write(body[: len(body) // 2])
                    self.wfile.flush()
                    self.close_connection = True
                    return
                self.wfile.write(body)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}"


@pytest.fixture
def server() -> Iterator[_Server]:
    s = _Server(DATA)
    s.thread.start()
    try:
        yield s
    finally:
        s.httpd.shutdown()
        s.httpd.server_close()


def test_good_file(server: _Server, tmp_path: Path) -> None:
    out = download_file(server.url + "/f.bin", tmp_path / "f.bin", sha256=SHA, progress=False)
    assert out.read_bytes() == DATA
    assert not (tmp_path / "f.bin.part").exists()


def test_wrong_hash_leaves_no_file(server: _Server, tmp_path: Path) -> None:
    with pytest.raises(CheckpointError, match="SHA-256 mismatch"):
        download_file(server.url + "/f.bin", tmp_path / "f.bin", sha256="0" * 64, progress=False)
    assert list(tmp_path.iterdir()) == []


def test_cut_connection_resumes_automatically(server: _Server, tmp_path: Path) -> None:
    server.cut_next = 1
    out = download_file(server.url + "/f.bin", tmp_path / "f.bin", sha256=SHA, backoff=0, progress=False)
    assert out.read_bytes() == DATA
    assert [r["range"] for r in server.requests] == [None, f"bytes={len(DATA) // 2}-"]


def test_interrupted_download_resumes_on_next_run(server: _Server, tmp_path: Path) -> None:
    server.cut_next = 1
    with pytest.raises(CheckpointError, match="run the same command again to resume"):
        download_file(server.url + "/f.bin", tmp_path / "f.bin", sha256=SHA, retries=0, progress=False)
    part = tmp_path / "f.bin.part"
    assert part.stat().st_size == len(DATA) // 2 and not (tmp_path / "f.bin").exists()
    out = download_file(server.url + "/f.bin", tmp_path / "f.bin", sha256=SHA, retries=0, progress=False)
    assert out.read_bytes() == DATA and not part.exists()
    assert server.requests[-1]["range"] == f"bytes={len(DATA) // 2}-"


def test_server_without_range_support_restarts(server: _Server, tmp_path: Path) -> None:
    server.honour_range = False
    (tmp_path / "f.bin.part").write_bytes(b"garbage that is not the start of the file")
    out = download_file(server.url + "/f.bin", tmp_path / "f.bin", sha256=SHA, progress=False)
    assert out.read_bytes() == DATA


def test_http_error_is_checkpoint_error(tmp_path: Path) -> None:
    with pytest.raises(CheckpointError, match="interrupted|failed"):
        download_file("http://127.0.0.1:9/nothing", tmp_path / "x", retries=0, progress=False)
    assert not (tmp_path / "x").exists()


def test_download_table_entry(server: _Server, tmp_path: Path) -> None:
    from safetensors.torch import save as save_safetensors

    import pyramidpose

    server.payload = tiny_official_bytes()
    server.files = {"/c.json": b"{}", "/m": save_safetensors({"w": torch.zeros(2)})}
    sha = hashlib.sha256(server.payload).hexdigest()
    table = {
        "tiny": OfficialCheckpoint("tiny", "test", "official", (RemoteFile("tiny.pth", server.url + "/t.pth", sha),), "test"),
        "tiny-hf": OfficialCheckpoint(
            "tiny-hf", "test", "hf",
            (RemoteFile("config.json", server.url + "/c.json"), RemoteFile("model.safetensors", server.url + "/m")),
            "test",
        ),
    }
    path = download("tiny", tmp_path, table=table, progress=False)
    assert path == tmp_path / "tiny.pth" and pyramidpose.load_model(path).config.backbone == "tiny"
    n = len(server.requests)
    download("tiny", tmp_path, table=table, progress=False)  # present and hash ok: not fetched again
    assert len(server.requests) == n
    d = download("tiny-hf", tmp_path, table=table, progress=False)
    assert sorted(p.name for p in d.iterdir()) == ["config.json", "model.safetensors"]
    with pytest.raises(CheckpointError, match="unknown checkpoint"):
        download("nope", tmp_path, table=table)


def test_weights_list(capsys) -> None:
    assert weights_cmd.main(["list"]) == 0
    out = capsys.readouterr().out
    for name in OFFICIAL_CHECKPOINTS:
        assert f"| {name} | " in out
    assert "unknown (not published)" in out and "595b5e128b2fe6e4" in out
    assert weights_cmd.main(["list", "--json"]) == 0
    assert '"sha256": null' in capsys.readouterr().out


ERROR_PAGE = b"<!DOCTYPE html><html><body>Rate limit exceeded</body></html>"


@pytest.mark.parametrize("ctype", ["text/html; charset=utf-8", None])
def test_error_page_is_not_saved_as_a_checkpoint(server: _Server, tmp_path: Path, ctype) -> None:
    server.payload, server.content_type = ERROR_PAGE, ctype  # None: no Content-Type, caught by the magic
    table = {"tiny": OfficialCheckpoint("tiny", "test", "official", (RemoteFile("tiny.pth", server.url + "/t.pth"),), "test")}
    with pytest.raises(CheckpointError, match="nothing was saved"):
        download("tiny", tmp_path, table=table, progress=False)
    assert list(tmp_path.iterdir()) == []
    # an error page saved by an older version is fetched again, then accepted once it is a checkpoint
    (tmp_path / "tiny.pth").write_bytes(ERROR_PAGE)
    server.payload, server.content_type = tiny_official_bytes(), "application/octet-stream"
    assert download("tiny", tmp_path, table=table, progress=False) == tmp_path / "tiny.pth"
    assert (tmp_path / "tiny.pth").read_bytes() == server.payload


@pytest.mark.parametrize("kind,body,ok", [
    ("torch", b"PK\x03\x04rest", True), ("torch", b"\x80\x02\x8a\nlegacy", True), ("torch", ERROR_PAGE, False),
    ("safetensors", (2).to_bytes(8, "little") + b"{}", True), ("safetensors", (99).to_bytes(8, "little") + b"{}", False),
    ("safetensors", b"PK\x03\x04rest-of-it", False),
])  # fmt: skip
def test_magic_sniffing(tmp_path: Path, kind, body, ok) -> None:
    from pyramidpose.models.official import has_magic

    (tmp_path / "f").write_bytes(body)
    assert has_magic(tmp_path / "f", kind) is ok
