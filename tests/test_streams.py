"""Live and remote video sources through PyAV: stream specs, file:// and http:// URLs (a server on
127.0.0.1 only), camera indices, and `predict` on a URL."""

from __future__ import annotations

import http.server
import threading
from pathlib import Path

import numpy as np
import pytest

from pyramidpose.data.video import iter_frames, probe_video, source_name, stream_kind
from pyramidpose.errors import DataError

CLIP = Path(__file__).resolve().parents[1] / "pyramidpose" / "assets" / "samples" / "street_5frames.mp4"


class _RangeHandler(http.server.BaseHTTPRequestHandler):
    """Serves one file with HTTP Range support (what FFmpeg's http protocol uses to seek)."""

    data = b""

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        if self.path != "/clips/street%205frames.mp4":
            self.send_error(404)
            return
        start, end = 0, len(self.data) - 1
        rng = self.headers.get("Range")
        if rng and rng.startswith("bytes="):
            a, _, b = rng[6:].partition("-")
            start, end = int(a or 0), int(b) if b else end
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{end}/{len(self.data)}")
        else:
            self.send_response(200)
        self.send_header("Accept-Ranges", "bytes")
        self.send_header("Content-Type", "video/mp4")
        self.send_header("Content-Length", str(end - start + 1))
        self.end_headers()
        try:
            self.wfile.write(self.data[start : end + 1])
        except (BrokenPipeError, ConnectionResetError):
            pass

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def http_clip():
    _RangeHandler.data = CLIP.read_bytes()
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _RangeHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/clips/street%205frames.mp4"
    server.shutdown()
    server.server_close()


def test_stream_specs_are_recognised():
    assert stream_kind(0) == "camera" and stream_kind("1") == "camera"
    assert stream_kind("rtsp://cam.local/live") == "url" and stream_kind("HTTPS://x/y.mp4") == "url"
    assert stream_kind("clip.mp4") is None and stream_kind("C:/videos/a.mp4") is None
    assert source_name(0) == "camera0" and source_name("rtsp://cam.local:554/live/main") == "main"
    assert source_name("http://h/clips/street%205frames.mp4?x=1") == "street_5frames"


def test_file_url_decodes_like_the_file():
    direct = [(i, rgb) for i, _, rgb in iter_frames(CLIP)]
    via_url = [(i, rgb) for i, _, rgb in iter_frames(CLIP.resolve().as_uri())]
    assert [i for i, _ in via_url] == [i for i, _ in direct] and len(direct) == 5
    assert all(np.array_equal(a, b) for (_, a), (_, b) in zip(direct, via_url))


def test_http_source_through_pyav(http_clip):
    info = probe_video(http_clip)
    assert (info.width, info.height) == (probe_video(CLIP).width, probe_video(CLIP).height)
    frames = [rgb for _, _, rgb in iter_frames(http_clip, max_frames=3)]
    first = next(iter_frames(CLIP))[2]
    assert len(frames) == 3 and np.array_equal(frames[0], first)


def test_unreachable_sources_are_one_line_errors():
    with pytest.raises(DataError, match="cannot open stream http://127.0.0.1:9/"):
        probe_video("http://127.0.0.1:9/nothing.mp4")
    with pytest.raises(DataError, match="camera"):
        probe_video(97)  # no /dev/video97 here


def test_predict_on_a_url(http_clip, tmp_path, capsys):
    pytest.importorskip("ai_edge_litert")
    from pyramidpose.cli import main

    out = tmp_path / "out"
    code = main(["predict", http_clip, "--out", str(out), "--max-frames", "2", "--no-progress", "--preset", "fast"])
    assert code == 0
    lines = (out / "street_5frames.jsonl").read_text().splitlines()
    assert len(lines) == 1 + 2 and (out / "street_5frames.mp4").stat().st_size > 0
    assert "1 video: 2 frames" in capsys.readouterr().out
