"""Video decoding and encoding with PyAV, robust to bad files.

:func:`iter_frames` yields RGB frames of a file, a camera index (``0``) or a stream URL
(``http(s)://``, ``rtsp://``, ``file://``...; see :func:`stream_kind`) and keeps going when a packet fails to decode (the frame is
skipped and counted in a :class:`DecodeReport`); a file that cannot be opened, has no video stream
or no decodable frame raises :class:`~pyramidpose.errors.DataError` with the reason.
:class:`VideoWriter` encodes H.264 MP4 (yuv420p) into a temporary file that is renamed into place
only when the video is complete, so a crash never leaves a half-written MP4.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

import numpy as np

from pyramidpose.errors import DataError
from pyramidpose.utils.io import atomic_path

VIDEO_EXTENSIONS = (".mp4", ".mov", ".avi", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg", ".wmv", ".flv")


#: URL schemes opened by FFmpeg's network/file protocols (through PyAV).
STREAM_SCHEMES = ("http", "https", "rtsp", "rtsps", "rtmp", "rtmps", "srt", "udp", "tcp", "file")


def is_video_path(path: str | os.PathLike[str]) -> bool:
    """True when the file name has a common video extension."""
    return Path(path).suffix.lower() in VIDEO_EXTENSIONS


def stream_kind(source: object) -> str | None:
    """``"camera"`` for a camera index (``0``, ``"1"``), ``"url"`` for ``http(s)://``, ``rtsp://``,
    ``file://``... sources, ``None`` for plain file paths."""
    if isinstance(source, int) and not isinstance(source, bool):
        return "camera"
    if not isinstance(source, str):
        return None
    if source.isdigit() and len(source) <= 3 and not Path(source).exists():
        return "camera"
    scheme, sep, _ = source.partition("://")
    return "url" if sep and scheme.lower() in STREAM_SCHEMES else None


def source_name(source: str | int | os.PathLike[str]) -> str:
    """A file-name stem for a video source: the file stem, ``camera0``, or the URL's last path part."""
    kind = stream_kind(source)
    if kind == "camera":
        return f"camera{int(source)}"
    if kind == "url":
        from urllib.parse import unquote, urlsplit

        parts = urlsplit(str(source))
        stem = Path(unquote(parts.path)).stem or parts.hostname or "stream"
        return "".join(c if c.isalnum() or c in "-_." else "_" for c in stem) or "stream"
    return Path(source).stem


def _camera_target(index: int) -> tuple[str, str]:
    """``(device, FFmpeg input format)`` of camera ``index`` on this platform."""
    import sys

    if sys.platform.startswith("linux"):
        return f"/dev/video{index}", "v4l2"
    if sys.platform == "darwin":
        return str(index), "avfoundation"
    raise DataError(
        f"camera {index}: opening cameras by index is supported on Linux and macOS; on Windows give the "
        "DirectShow device as a URL-like source or record a file first"
    )


@dataclass
class VideoInfo:
    """What the container says about its first video stream (``path`` is the source: a file path,
    or the camera index / URL string of a live source)."""

    path: Path | str
    width: int
    height: int
    fps: float
    num_frames: int  # as declared by the container (0 when unknown)
    codec: str
    duration_s: float | None


@dataclass
class DecodeReport:
    """Counts and messages for one decode: frames yielded, frames/packets skipped, problems."""

    path: Path | str
    decoded: int = 0
    skipped: int = 0
    problems: list[str] = field(default_factory=list)

    def summary(self) -> str:
        name = self.path.name if isinstance(self.path, Path) else str(self.path)
        s = f"{name}: {self.decoded} frames decoded"
        if self.skipped:
            s += f", {self.skipped} skipped"
        if self.problems:
            s += f" ({'; '.join(self.problems[:3])}{'...' if len(self.problems) > 3 else ''})"
        return s


def _as_source(source: str | int | os.PathLike[str]) -> Path | str:
    """A live source (camera index, URL) as a string; anything else as a :class:`Path`."""
    kind = stream_kind(source)
    return str(int(source)) if kind == "camera" else str(source) if kind == "url" else Path(source)


def _open(path: Path | str, timeout: float = 15.0):
    """Open a video file, camera index or URL with PyAV; :class:`DataError` when it cannot be used."""
    import av

    kind = stream_kind(path)
    try:
        if kind == "camera":
            device, fmt = _camera_target(int(path))
            container = av.open(device, format=fmt, timeout=timeout)
        elif kind == "url":
            container = av.open(str(path), timeout=timeout)
        else:
            path = Path(path)
            if not path.exists():
                raise DataError(f"video not found: {path}")
            if path.stat().st_size == 0:
                raise DataError(f"video {path} is empty (0 bytes); skip it or re-export it")
            container = av.open(str(path))
    except (av.error.FFmpegError, OSError, ValueError) as exc:
        what = {"camera": "camera", "url": "stream"}.get(kind or "", "video")
        raise DataError(f"cannot open {what} {path}: {exc}") from None
    if not container.streams.video:
        container.close()
        raise DataError(f"{path} has no video stream")
    if container.streams.video[0].codec_context is None:
        container.close()
        raise DataError(f"{path}: no decoder for its video stream (unknown codec or corrupt header)")
    return container


def probe_video(path: str | int | os.PathLike[str]) -> VideoInfo:
    """Read the stream header of ``path`` (a file, camera index or URL; no decoding)."""
    path = _as_source(path)
    container = _open(path)
    try:
        s = container.streams.video[0]
        rate = s.average_rate or s.guessed_rate or 0
        dur = float(s.duration * s.time_base) if s.duration and s.time_base else None
        if dur is None and container.duration:
            dur = container.duration / 1_000_000
        return VideoInfo(
            path, int(s.codec_context.width), int(s.codec_context.height), float(rate or 0.0),
            int(s.frames or 0), s.codec_context.name, dur,
        )  # fmt: skip
    finally:
        container.close()


def iter_frames(
    path: str | int | os.PathLike[str],
    report: DecodeReport | None = None,
    stride: int = 1,
    max_frames: int | None = None,
) -> Iterator[tuple[int, float, np.ndarray]]:
    """Yield ``(frame_index, time_s, rgb uint8 HxWx3)`` for every ``stride``-th decodable frame of a
    video file, a camera (index ``0``, ``1``...) or a stream URL (``http(s)://``, ``rtsp://``...).

    Packets that fail to decode are skipped and counted in ``report``; a truncated file yields
    what could be decoded. Raises :class:`DataError` if the file cannot be opened or yields no
    frame at all.
    """
    import av

    path = _as_source(path)
    report = report if report is not None else DecodeReport(path)
    container = _open(path)
    index = 0
    yielded = 0
    try:
        stream = container.streams.video[0]
        fps = float(stream.average_rate or stream.guessed_rate or 0.0) or 25.0
        start = float(stream.start_time * stream.time_base) if stream.start_time and stream.time_base else 0.0
        packets = container.demux(stream)
        exhausted = False
        while True:
            packet = None
            if not exhausted:
                try:
                    packet = next(packets)
                except StopIteration:
                    exhausted = True
                except (av.error.FFmpegError, OSError, ValueError) as exc:
                    report.problems.append(f"demux stopped after frame {index}: {type(exc).__name__}")
                    exhausted = True
            try:
                # after the last packet, decode(None) flushes the frames the decoder still holds
                frames = packet.decode() if packet is not None else stream.codec_context.decode(None)
            except av.error.EOFError:
                break  # the decoder was already flushed
            except (av.error.FFmpegError, ValueError) as exc:
                report.skipped += 1
                report.problems.append(f"undecodable packet after frame {index}: {type(exc).__name__}")
                if exhausted:
                    break
                continue
            for frame in frames:
                # the frame number follows the timestamp, so frames lost to decode errors leave gaps
                if frame.time is not None:
                    t = float(frame.time) - start
                    index = max(index, int(round(t * fps)))
                else:
                    t = index / fps
                if index % stride == 0:
                    try:
                        rgb = frame.to_ndarray(format="rgb24")
                    except (av.error.FFmpegError, ValueError) as exc:
                        report.skipped += 1
                        report.problems.append(f"frame {index} could not be converted: {exc}")
                        index += 1
                        continue
                    report.decoded += 1
                    yielded += 1
                    yield index, t, rgb
                    if max_frames is not None and yielded >= max_frames:
                        return
                index += 1
            if exhausted:
                break
    finally:
        container.close()
    if yielded == 0:
        raise DataError(
            f"no frame of {path} could be decoded"
            + (f" ({'; '.join(report.problems[:2])})" if report.problems else "")
            + "; the file is truncated or not a video"
        )


class VideoWriter:
    """H.264 MP4 writer (yuv420p, even dimensions) with atomic finalisation.

    Use as a context manager; frames are RGB uint8 HxWx3 of one fixed size. The file appears at
    ``path`` only when the writer closes without an exception. ``crf`` and ``preset`` are x264's
    quality and speed settings (``ultrafast`` ... ``veryslow``: faster presets make larger files).
    """

    def __init__(
        self, path: str | os.PathLike[str], fps: float, width: int, height: int, crf: int = 23,
        preset: str = "veryfast",
    ) -> None:  # fmt: skip
        self.path = Path(path)
        self.fps = fps
        self.width, self.height = int(width) // 2 * 2, int(height) // 2 * 2
        if self.width < 2 or self.height < 2:
            raise DataError(f"cannot write a {width}x{height} video to {path}")
        self.crf = crf
        self.preset = preset
        self.frames_written = 0
        self._ctx = None
        self._container = None
        self._stream = None

    def __enter__(self) -> VideoWriter:
        import av

        self._ctx = atomic_path(self.path)
        tmp = self._ctx.__enter__()
        self._container = av.open(str(tmp), mode="w", format="mp4")
        rate = Fraction(self.fps).limit_denominator(1001) if self.fps > 0 else Fraction(25)
        codec = "libx264" if "libx264" in av.codecs_available else "h264"
        self._stream = self._container.add_stream(codec, rate=rate)
        self._stream.width, self._stream.height = self.width, self.height
        self._stream.pix_fmt = "yuv420p"
        if codec == "libx264":
            self._stream.options = {"crf": str(self.crf), "preset": self.preset}
        return self

    def write(self, rgb: np.ndarray) -> None:
        import av

        frame_arr = np.ascontiguousarray(np.asarray(rgb, np.uint8)[: self.height, : self.width])
        if frame_arr.shape[:2] != (self.height, self.width):
            raise DataError(
                f"frame of size {rgb.shape[1]}x{rgb.shape[0]} does not fit the {self.width}x{self.height} video"
            )
        frame = av.VideoFrame.from_ndarray(frame_arr, format="rgb24")
        for packet in self._stream.encode(frame):
            self._container.mux(packet)
        self.frames_written += 1

    def __exit__(self, exc_type, exc, tb) -> None:
        try:
            if exc_type is None:
                for packet in self._stream.encode():
                    self._container.mux(packet)
            self._container.close()
        finally:
            self._ctx.__exit__(exc_type, exc, tb)


def write_animation(frames: list[np.ndarray], path: str | os.PathLike[str], fps: float) -> Path:
    """Write RGB uint8 frames as an MP4 (H.264 through :class:`VideoWriter`) or a looping GIF
    (Pillow), chosen by ``path``'s suffix; atomically, like every output."""
    path = Path(path)
    if not frames:
        raise DataError(f"nothing to write to {path}: no frames")
    suffix = path.suffix.lower()
    if suffix == ".mp4":
        h, w = frames[0].shape[:2]
        with VideoWriter(path, fps, w, h) as writer:
            for frame in frames:
                writer.write(frame)
    elif suffix == ".gif":
        from PIL import Image

        images = [Image.fromarray(np.asarray(f, np.uint8)) for f in frames]
        with atomic_path(path) as tmp:
            images[0].save(tmp, format="GIF", save_all=True, append_images=images[1:],
                           duration=int(round(1000 / max(fps, 1e-3))), loop=0)  # fmt: skip
    else:
        raise ValueError(f"animation must be .gif or .mp4, got '{path.name}'")
    return path
