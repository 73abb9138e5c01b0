"""Lift 2D tracks written by the video pipeline (JSON lines) to 3D, and render a 3D animation.

Input: one JSON record per frame ``{frame, time, instances: [{track_id, bbox, keypoints (17 x 2),
keypoint_scores, score}]}`` with COCO-17 keypoints in pixels.

Normalisation: the lifter was trained on 2D normalised by image size (1000 x 1000 virtual images).
With ``width``/``height`` known the keypoints are normalised by them. Otherwise (image size
unknown) each track gets a static virtual image: its keypoints are shifted so the track's median
keypoint-box centre is the image centre, and scaled so its median keypoint-box height is
:data:`TRAIN_HEIGHT_RATIO` of the image width (the median in the training distribution).

Frame rate: the lifter works at the fps it was trained at (30); tracks with ``time`` stamps are
resampled to that rate (linear), lifted, and sampled back at the original frames. Gaps in a track
are linearly interpolated in 2D before lifting; only observed frames are written. A gap longer than
:data:`MAX_GAP_FRAMES` frames or :data:`MAX_GAP_SECONDS` seconds splits the track into pieces lifted
separately (``segment`` 0, 1, ... in the output), so the work is bounded by what the file holds.
Malformed records are skipped and reported with file:line and field. A joint whose
score is below ``min_keypoint_score`` is replaced by interpolating the same joint over the track's
confident frames (kept as is if the joint is never confident).
"""

from __future__ import annotations

import io
import math
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from pyramidpose.errors import DataError
from pyramidpose.models.lifting import TemporalLifter, normalize_screen
from pyramidpose.skeletons import H36M
from pyramidpose.utils.jsonio import loads

__all__ = ["Track", "read_tracks", "lift_tracks", "render_animation", "TRAIN_HEIGHT_RATIO"]

# median (keypoint-box height / image width) of training pairs; measured with
# 20000 training pairs of configs/lift_cmu_temporal.yaml (10-90% range 0.14-0.36; test set 0.23)
TRAIN_HEIGHT_RATIO = 0.23
#: A track is split (pieces lifted separately, nothing interpolated between them) at a gap of more
#: than this many frames or seconds, or where time does not increase.
MAX_GAP_FRAMES = 60
MAX_GAP_SECONDS = 2.0


@dataclass
class Track:
    track_id: int | str
    frames: list[int] = field(default_factory=list)
    times: list[float | None] = field(default_factory=list)
    keypoints: list[np.ndarray] = field(default_factory=list)  # each [17, 2]
    scores: list[np.ndarray] = field(default_factory=list)


class _BadRecord(ValueError):
    """A malformed field of one JSON-lines record (the message names the field)."""


def _number(value: object, field: str, *, integer: bool = False) -> float:
    """A finite JSON number (bools, strings, containers and NaN/Infinity refused)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise _BadRecord(f"{field} is {type(value).__name__} {str(value)[:40]!r}, expected a number")
    if not math.isfinite(value):
        raise _BadRecord(f"{field} is {value}, expected a finite number")
    if integer and (value != int(value) or not 0 <= value < 2**53):
        raise _BadRecord(f"{field} is {value}, expected a whole number >= 0")
    return value


def _array(value: object, field: str, shape: tuple[int, ...]) -> np.ndarray:
    """A finite float array of ``shape`` (extra trailing columns of keypoints are cut)."""
    try:
        a = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError, OverflowError):
        raise _BadRecord(f"{field} is not an array of numbers") from None
    if len(shape) == 2 and a.ndim == 2 and a.shape[0] == shape[0] and a.shape[1] >= shape[1]:
        a = a[:, : shape[1]]
    if a.shape != shape:
        raise _BadRecord(f"{field} has shape {a.shape}, expected {' x '.join(map(str, shape))} (COCO-17)")
    if not np.isfinite(a).all():
        raise _BadRecord(f"{field} holds NaN or infinite values")
    return a


def _track_id(value: object, frame: int, k: int) -> int | str:
    if value is None:
        return f"frame{frame}_{k}"
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise _BadRecord(f"track_id is {type(value).__name__}, expected an integer, a string or null")
    return value


def read_tracks(path: str | os.PathLike[str]) -> tuple[list[Track], list[str]]:
    """Parse a predictions JSONL file into tracks; bad lines/instances are skipped and reported
    (second return value, each naming file:line and field), a file with no usable instance raises
    :class:`DataError`."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as e:
        raise DataError(f"{path}: cannot read predictions ({e.strerror or e}).") from None
    try:
        lines = raw.decode("utf-8").splitlines()
    except UnicodeDecodeError:
        raise DataError(f"{path}: not a UTF-8 text file; expected JSON lines from 'pyramidpose predict'.") from None
    tracks: dict = {}
    problems: list[str] = []
    for i, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            rec = loads(line, f"{path}:{i}")
            if not isinstance(rec, dict):
                raise _BadRecord(f"the record is a {type(rec).__name__}, expected an object")
            if "header" in rec and "frame" not in rec:
                continue  # the file's header record (see read_video_header)
            if "frame" not in rec:
                raise _BadRecord("no 'frame' field")
            frame = int(_number(rec["frame"], "frame", integer=True))
            time = rec.get("time")
            time = None if time is None else float(_number(time, "time"))
            instances = rec.get("instances", [])
            if not isinstance(instances, list):
                raise _BadRecord(f"instances is {type(instances).__name__}, expected a list")
        except (DataError, _BadRecord) as e:
            problems.append(f"{path}:{i}: skipped, not a frame record ({str(e).removeprefix(f'{path}:{i}: ')})")
            continue
        for k, inst in enumerate(instances):
            try:
                if not isinstance(inst, dict):
                    raise _BadRecord(f"is a {type(inst).__name__}, expected an object")
                if "keypoints" not in inst:
                    raise _BadRecord("has no keypoints")
                kp = _array(inst["keypoints"], "keypoints", (17, 2))
                sc = inst.get("keypoint_scores")
                sc = np.ones(17) if sc is None else _array(sc, "keypoint_scores", (17,))
                tid = _track_id(inst.get("track_id"), frame, k)
            except _BadRecord as e:
                problems.append(f"{path}:{i}: instance {k} skipped ({e})")
                continue
            t = tracks.setdefault(tid, Track(tid))
            t.frames.append(frame)
            t.times.append(time)
            t.keypoints.append(kp)
            t.scores.append(sc)
    if not tracks:
        first = f" First problem: {problems[0]}" if problems else ""
        raise DataError(f"{path}: no usable instances (need JSON lines with frame and instances[].keypoints).{first}")
    return list(tracks.values()), problems


def read_video_header(path: str | os.PathLike[str]) -> dict:
    """The header record of a ``pyramidpose predict`` video JSONL (keypoint names, skeleton, fps,
    width, height, model), or ``{}`` for files written before headers existed."""
    try:
        with open(path, encoding="utf-8") as f:
            first = f.readline(1 << 20)
        rec = loads(first, f"{path}:1") if first.strip() else None
    except (OSError, UnicodeDecodeError, DataError):
        return {}
    header = rec.get("header") if isinstance(rec, dict) else None
    return header if isinstance(header, dict) else {}


def _normalise_track(kp: np.ndarray, width: float | None, height: float | None) -> tuple[np.ndarray, dict]:
    if width and height:
        return normalize_screen(kp, width, height), {"mode": "image", "width": width, "height": height}
    lo, hi = kp.min(1), kp.max(1)
    hgt = float(np.median(hi[:, 1] - lo[:, 1]))
    centre = np.median((lo + hi) / 2, axis=0)
    if hgt <= 1e-6:
        raise DataError("a track has zero keypoint height; cannot normalise it without --width/--height")
    w = hgt / TRAIN_HEIGHT_RATIO
    shifted = kp - centre + w / 2
    return normalize_screen(shifted, w, w), {"mode": "track", "virtual_width": w, "centre": centre.tolist()}


def _interpolate_unconfident(frames: np.ndarray, kp: np.ndarray, scores: np.ndarray, thr: float) -> np.ndarray:
    """Replace joints scoring below ``thr`` by linear interpolation over the confident frames."""
    out = kp.copy()
    for j in range(kp.shape[1]):
        ok = scores[:, j] >= thr
        if ok.all() or not ok.any():
            continue
        for c in range(2):
            out[~ok, j, c] = np.interp(frames[~ok], frames[ok], kp[ok, j, c])
    return out


def _split_at_gaps(frames: np.ndarray, times: np.ndarray | None) -> list[slice]:
    """Pieces of a sorted track between which nothing is interpolated: a frame gap above
    :data:`MAX_GAP_FRAMES`, a time gap above :data:`MAX_GAP_SECONDS`, or time not increasing.
    Bounds the work by the observations (a 2-line file with frames 0 and 3e8 is two pieces)."""
    cut = np.diff(frames) > MAX_GAP_FRAMES
    if times is not None:
        dt = np.diff(times)
        cut |= (dt > MAX_GAP_SECONDS) | (dt <= 0)
    edges = [0, *(np.flatnonzero(cut) + 1).tolist(), len(frames)]
    return [slice(a, b) for a, b in zip(edges[:-1], edges[1:])]


def _fill_gaps(frames: np.ndarray, kp: np.ndarray, times: np.ndarray | None) -> tuple:
    """Contiguous frame range with linear interpolation of 2D over gaps; returns (all_frames, kp, t)."""
    full = np.arange(frames.min(), frames.max() + 1)
    flat = kp.reshape(len(frames), -1)
    out = np.stack([np.interp(full, frames, flat[:, j]) for j in range(flat.shape[1])], 1)
    t = None if times is None else np.interp(full, frames, times)
    return full, out.reshape(len(full), *kp.shape[1:]), t


@torch.no_grad()
def lift_tracks(model: torch.nn.Module, tracks: list[Track], *, model_fps: float = 30.0, width: float | None = None,
                height: float | None = None, min_frames: int = 1,
                min_keypoint_score: float = 0.2) -> tuple[list[dict], list[str]]:
    """3D (root-relative H36M-17, camera frame, meters) for each track with >= ``min_frames``
    frames. Returns ``(results, problems)``; a failing track is skipped and reported. A track with a
    long gap is lifted in pieces (:func:`_split_at_gaps`): one result per piece, numbered by
    ``segment`` (0 for an unbroken track). A piece whose 3D is not finite is dropped and reported."""
    device = next(model.parameters()).device
    results, problems = [], []
    for tr in tracks:
        try:
            order = np.argsort(tr.frames, kind="stable")
            frames = np.asarray(tr.frames, dtype=np.int64)[order]
            if len(np.unique(frames)) != len(frames):
                raise DataError("the same track appears twice in one frame")
            kp = np.stack(tr.keypoints)[order]
            if min_keypoint_score > 0:
                kp = _interpolate_unconfident(frames, kp, np.stack(tr.scores)[order], min_keypoint_score)
            times = None if any(t is None for t in tr.times) else np.asarray(tr.times, dtype=np.float64)[order]
            if len(frames) < min_frames:
                continue
            pieces = _split_at_gaps(frames, times)
            for seg, sl in enumerate(pieces):
                res = _lift_piece(model, device, frames[sl], kp[sl], None if times is None else times[sl],
                                  model_fps, width, height)  # fmt: skip
                if res is None:
                    problems.append(f"track {tr.track_id}" + (f" segment {seg}" if len(pieces) > 1 else "")
                                    + ": dropped, the lifter produced NaN or infinite values")  # fmt: skip
                    continue
                results.append({"track_id": tr.track_id, "segment": seg, **res})
        except (DataError, ValueError) as e:
            problems.append(f"track {tr.track_id}: skipped ({e})")
    return results, problems


def _lift_piece(model: torch.nn.Module, device: torch.device, frames: np.ndarray, kp: np.ndarray,
                times: np.ndarray | None, model_fps: float, width: float | None,
                height: float | None) -> dict | None:
    """Lift one gap-bounded piece of a track; None if the model's output is not finite."""
    full, kp_full, t_full = _fill_gaps(frames, kp, times)
    x, norm = _normalise_track(kp_full, width, height)
    src_fps = None
    if t_full is not None and len(t_full) > 1:
        dt = np.median(np.diff(t_full))
        src_fps = 1.0 / dt if dt > 0 else None
    if src_fps and abs(src_fps - model_fps) > 0.5:
        n = int(np.floor((t_full[-1] - t_full[0]) * model_fps)) + 1
        tq = t_full[0] + np.arange(n) / model_fps
        flat = x.reshape(len(x), -1)
        xr = np.stack([np.interp(tq, t_full, flat[:, j]) for j in range(flat.shape[1])], 1).reshape(n, 17, 2)
    else:
        tq, xr = None, x
    xt = torch.as_tensor(xr, dtype=torch.float32, device=device)
    y = model.lift_sequence(xt) if isinstance(model, TemporalLifter) else model(xt)
    y = y.float().cpu().numpy()
    if tq is not None:  # back to the track's own frames
        flat = y.reshape(len(y), -1)
        y = np.stack([np.interp(t_full, tq, flat[:, j]) for j in range(flat.shape[1])], 1).reshape(-1, 17, 3)
    keep = np.isin(full, frames)
    if not np.isfinite(y[keep]).all():
        return None
    return {
        "frames": full[keep].tolist(),
        "times": None if t_full is None else t_full[keep].round(6).tolist(),
        "keypoints3d": np.round(y[keep], 5).tolist(),
        "keypoints2d": kp.round(2).tolist(),
        "normalisation": norm,
        "source_fps": src_fps,
    }


def _frames_png(results: list[dict], size: int = 480) -> tuple[list[int], list[np.ndarray]]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    all_frames = sorted({f for r in results for f in r["frames"]})
    per = [dict(zip(r["frames"], np.asarray(r["keypoints3d"]))) for r in results]
    images = []
    fig = plt.figure(figsize=(size / 100, size / 100), dpi=100)
    ax = fig.add_subplot(projection="3d")
    spacing = 1.2
    for f in all_frames:
        ax.cla()
        for k, poses in enumerate(per):
            if f not in poses:
                continue
            p = poses[f]
            # camera frame (x right, y down, z forward) -> plot (x, z, -y) so up is up
            X, Y, Z = p[:, 0] + (k - (len(per) - 1) / 2) * spacing, p[:, 2], -p[:, 1]
            for (a, b), col in zip(H36M.limbs, H36M.limb_colors):
                ax.plot([X[a], X[b]], [Y[a], Y[b]], [Z[a], Z[b]], color=np.asarray(col) / 255, lw=2)
            ax.text(X[10], Y[10], Z[10] + 0.15, str(results[k]["track_id"]), fontsize=7)
        half = max(1.0, spacing * len(per) / 2)
        ax.set_xlim(-half, half)
        ax.set_ylim(-1, 1)
        ax.set_zlim(-1, 1)
        ax.set_xlabel("x (m)")
        ax.set_ylabel("depth (m)")
        ax.set_zlabel("up (m)")
        ax.set_title(f"frame {f}", fontsize=9)
        ax.view_init(elev=15, azim=-70)
        buf = io.BytesIO()
        fig.savefig(buf, format="png")
        buf.seek(0)
        from PIL import Image

        images.append(np.asarray(Image.open(buf).convert("RGB")))
    plt.close(fig)
    return all_frames, images


def render_animation(results: list[dict], path: str | os.PathLike[str], fps: float = 10.0) -> Path:
    """Render all tracks' 3D skeletons per frame to ``path`` (``.mp4`` via PyAV, ``.gif`` via
    Pillow), atomically. MP4 falls back to GIF (same stem) if no H.264 encoder works."""
    from pyramidpose.data.video import write_animation

    path = Path(path)
    _, images = _frames_png(results)
    if not images:
        raise DataError("nothing to render: no lifted frames")
    if path.suffix.lower() == ".mp4":
        try:
            return write_animation(images, path, fps)
        except Exception:  # noqa: BLE001 - no working H.264 encoder in this PyAV build: GIF instead
            path = path.with_suffix(".gif")
    return write_animation(images, path, fps)
