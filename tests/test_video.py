"""Video decode/encode with PyAV: round trip, atomic writes, bad files skipped with reports."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from pyramidpose.data.video import (
    DecodeReport,
    VideoWriter,
    is_video_path,
    iter_frames,
    probe_video,
)
from pyramidpose.errors import DataError

CLIP = Path(__file__).resolve().parents[1] / "pyramidpose" / "assets" / "samples" / "street_5frames.mp4"


def _synthetic(path: Path, n: int = 12, w: int = 64, h: int = 48, fps: float = 10.0) -> list[np.ndarray]:
    frames = []
    with VideoWriter(path, fps, w, h) as wr:
        for i in range(n):
            f = np.zeros((h, w, 3), np.uint8)
            f[:, : (i + 1) * w // n] = (200, 40, 40)  # a bar growing frame by frame
            wr.write(f)
            frames.append(f)
    return frames


def test_bundled_clip_decodes_completely():
    info = probe_video(CLIP)
    assert (info.width, info.height, info.codec) == (960, 540, "h264")
    assert info.fps == pytest.approx(5.0)
    rep = DecodeReport(CLIP)
    frames = list(iter_frames(CLIP, rep))
    assert [i for i, _, _ in frames] == [0, 1, 2, 3, 4]
    assert [t for _, t, _ in frames] == pytest.approx([0.0, 0.2, 0.4, 0.6, 0.8])
    assert frames[0][2].shape == (540, 960, 3) and frames[0][2].dtype == np.uint8
    assert rep.decoded == 5 and rep.skipped == 0


def test_writer_round_trip_is_h264_with_all_frames(tmp_path):
    out = tmp_path / "v.mp4"
    src = _synthetic(out)
    info = probe_video(out)
    assert info.codec == "h264" and (info.width, info.height) == (64, 48)
    got = [f for _, _, f in iter_frames(out)]
    assert len(got) == len(src)
    # lossy, but the growing bar must be where it was written
    for a, b in zip(src, got):
        assert np.abs(a.astype(int) - b.astype(int)).mean() < 12


def test_stride_and_max_frames(tmp_path):
    out = tmp_path / "v.mp4"
    _synthetic(out, n=10)
    assert [i for i, _, _ in iter_frames(out, stride=3)] == [0, 3, 6, 9]
    assert [i for i, _, _ in iter_frames(out, max_frames=2)] == [0, 1]


def test_writer_is_atomic_on_error(tmp_path):
    out = tmp_path / "broken.mp4"
    with pytest.raises(RuntimeError):
        with VideoWriter(out, 10, 32, 32) as wr:
            wr.write(np.zeros((32, 32, 3), np.uint8))
            raise RuntimeError("crash mid-video")
    assert not out.exists()
    assert list(tmp_path.iterdir()) == []  # no temporary file left either


def test_zero_length_and_missing_and_non_video_files(tmp_path):
    empty = tmp_path / "empty.mp4"
    empty.write_bytes(b"")
    with pytest.raises(DataError, match="empty"):
        probe_video(empty)
    with pytest.raises(DataError, match="not found"):
        list(iter_frames(tmp_path / "nope.mp4"))
    junk = tmp_path / "junk.mp4"
    junk.write_bytes(b"this is not a video at all" * 100)
    with pytest.raises(DataError):
        list(iter_frames(junk))


def _faststart_copy(dst: Path) -> list[tuple[int, int]]:
    """Remux the clip with its index (moov) first, as streaming MP4s are, so that cutting or
    damaging the media data leaves the file openable; returns the packets' (offset, size)."""
    import av

    with av.open(str(CLIP)) as src, av.open(str(dst), "w", format="mp4", options={"movflags": "faststart"}) as out:
        stream = out.add_stream_from_template(src.streams.video[0])
        for packet in src.demux(src.streams.video[0]):
            if packet.dts is None:
                continue
            packet.stream = stream
            out.mux(packet)
    with av.open(str(dst)) as c:
        return [(p.pos, p.size) for p in c.demux(c.streams.video[0]) if p.size]


def test_truncated_video_yields_the_frames_before_the_cut(tmp_path):
    full = tmp_path / "full.mp4"
    packets = _faststart_copy(full)
    data = full.read_bytes()
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(data[: packets[-1][0] + packets[-1][1] // 2])  # the last packet is cut in half
    rep = DecodeReport(cut)
    frames = list(iter_frames(cut, rep))
    assert 1 <= len(frames) < 5
    assert rep.skipped >= 1 and rep.problems
    assert "skipped" in rep.summary()
    # frame numbers follow the timestamps, so the lost frame leaves a gap rather than a shift
    idx = [i for i, _, _ in frames]
    assert idx == sorted(set(idx)) and idx[0] == 0


def test_zero_length_truncation_and_undecodable_first_frame(tmp_path):
    full = tmp_path / "full.mp4"
    packets = _faststart_copy(full)
    data = bytearray(full.read_bytes())
    pos, size = packets[0]  # the key frame: nothing after it can be decoded
    data[pos + 4 : pos + size] = bytes(size - 4)
    broken = tmp_path / "nokey.mp4"
    broken.write_bytes(bytes(data))
    with pytest.raises(DataError, match="no frame of .*nokey.mp4 could be decoded"):
        list(iter_frames(broken))


def test_a_damaged_frame_is_skipped_and_reported(tmp_path):
    full = tmp_path / "full.mp4"
    packets = _faststart_copy(full)
    data = bytearray(full.read_bytes())
    pos, size = packets[2]  # a frame in the middle
    data[pos + 4 : pos + size] = np.random.default_rng(0).integers(0, 256, size - 4, dtype=np.uint8).tobytes()
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(bytes(data))
    rep = DecodeReport(bad)
    frames = list(iter_frames(bad, rep))
    assert len(frames) == 4 and rep.decoded == 4 and rep.skipped == 1
    assert "undecodable" in rep.problems[0]
    assert len({i for i, _, _ in frames}) == 4 and max(i for i, _, _ in frames) == 4


def test_is_video_path():
    assert is_video_path("a/b.MP4") and is_video_path("x.mkv")
    assert not is_video_path("x.jpg")


def test_write_animation_mp4_and_gif(tmp_path):
    import av
    from PIL import Image

    from pyramidpose.data.video import write_animation

    frames = [np.full((31, 41, 3), 40 * i, np.uint8) for i in range(4)]
    mp4 = write_animation(frames, tmp_path / "a.mp4", fps=5)
    with av.open(str(mp4)) as c:
        decoded = list(c.decode(video=0))
    assert len(decoded) == 4 and (decoded[0].width, decoded[0].height) == (40, 30)
    gif = write_animation(frames, tmp_path / "a.gif", fps=5)
    assert Image.open(gif).n_frames == 4
    with pytest.raises(ValueError, match="gif or .mp4"):
        write_animation(frames, tmp_path / "a.avi", fps=5)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.gif", "a.mp4"]
