"""Motion sequences and sliding windows for pose forecasting.

A :class:`MotionSequence` is one continuous recording ``[F, K, D]`` (3D joints in meters or 2D
keypoints) with the subject it belongs to. :class:`MotionWindows` cuts every sequence into windows of
``t_in`` observed and ``t_out`` future frames. A window is always a contiguous slice of ONE sequence,
so it never mixes frames across sequences or subjects; augmented copies (mirrored, resampled at a
different phase) are separate sequences for the same reason.

Pure numpy: importing this module does not import torch.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace

import numpy as np

from pyramidpose.errors import DataError


@dataclass(frozen=True)
class MotionSequence:
    """One continuous motion recording.

    Attributes:
        poses: ``[F, K, D]`` float32 joint positions (D = 3 meters, or D = 2).
        subject: subject id (``"01"``); windows and splits never cross subjects.
        name: sequence name (``"01_03"``, ``"01_03@mirror"``), unique within a data set.
        fps: frame rate of ``poses``.
    """

    poses: np.ndarray
    subject: str
    name: str
    fps: float

    def __post_init__(self) -> None:
        p = np.asarray(self.poses)
        if p.ndim != 3 or p.shape[-1] not in (2, 3):
            raise DataError(f"sequence '{self.name}': expected poses [F, K, 2|3], got shape {p.shape}")
        if not np.isfinite(p).all():
            raise DataError(f"sequence '{self.name}': poses contain NaN or infinite values")

    @property
    def num_frames(self) -> int:
        return int(self.poses.shape[0])


def resample_linear(poses: np.ndarray, src_fps: float, dst_fps: float, phase: float = 0.0) -> np.ndarray:
    """Resample ``[F, ...]`` from ``src_fps`` to ``dst_fps`` by linear interpolation in time.

    ``phase`` in [0, 1) shifts the first output sample by that fraction of an output frame, which
    gives differently sampled copies of the same 120 fps recording (a cheap augmentation).
    """
    poses = np.asarray(poses, dtype=np.float64)
    n = poses.shape[0]
    if n == 0:
        return poses.astype(np.float32)
    duration = (n - 1) / src_fps
    t = np.arange(phase / dst_fps, duration + 1e-9, 1.0 / dst_fps)
    pos = t * src_fps
    i0 = np.clip(np.floor(pos).astype(np.int64), 0, n - 1)
    i1 = np.clip(i0 + 1, 0, n - 1)
    w = (pos - i0).reshape(-1, *([1] * (poses.ndim - 1)))
    return ((1.0 - w) * poses[i0] + w * poses[i1]).astype(np.float32)


def mirror_poses(
    poses: np.ndarray, flip_index: Sequence[int] | np.ndarray, lateral_axis: int = 0
) -> np.ndarray:
    """Mirror ``[..., K, D]`` poses: negate the lateral axis and swap left/right joints.

    ``flip_index`` is a permutation with ``mirrored[:, i] = original[:, flip_index[i]]`` (see
    :meth:`pyramidpose.skeletons.KeypointSet.flip_index`). Mirroring a valid motion gives a valid
    motion of a mirror-image person, which doubles the training data.
    """
    out = np.array(poses, dtype=np.float32, copy=True)[..., np.asarray(flip_index), :]
    out[..., lateral_axis] *= -1.0
    return out


def center_on_joint(poses: np.ndarray, joint: int) -> np.ndarray:
    """Express ``[..., K, D]`` poses relative to ``joint`` in every frame (root-relative poses)."""
    poses = np.asarray(poses, dtype=np.float32)
    return poses - poses[..., joint : joint + 1, :]


def split_tail(seq: MotionSequence, fraction: float) -> tuple[MotionSequence, MotionSequence]:
    """Split a sequence in time into (head, tail) with ``fraction`` of the frames in the tail.

    The two halves become two separate sequences, so no window spans the cut. Used to hold out
    validation data from the training subjects (the test subject is never used for tuning).
    """
    n_tail = int(round(seq.num_frames * fraction))
    cut = seq.num_frames - n_tail
    head = replace(seq, poses=seq.poses[:cut], name=seq.name)
    tail = replace(seq, poses=seq.poses[cut:], name=f"{seq.name}@tail")
    return head, tail


def window_starts(num_frames: int, length: int, stride: int) -> np.ndarray:
    """First frame of every window of ``length`` frames that fits in ``num_frames``, every ``stride``."""
    if length <= 0 or stride <= 0:
        raise ValueError(f"window length and stride must be positive, got {length}, {stride}")
    if num_frames < length:
        return np.zeros(0, dtype=np.int64)
    return np.arange(0, num_frames - length + 1, stride, dtype=np.int64)


class MotionWindows:
    """Sliding windows ``(observed [t_in, K, D], future [t_out, K, D])`` over motion sequences.

    Each item is a contiguous slice of a single sequence; :meth:`source` tells which. Sequences
    shorter than ``t_in + t_out`` give no windows. Behaves as a map-style dataset (``len``, indexing)
    returning float32 numpy arrays, so it plugs into a torch ``DataLoader`` as is.
    """

    def __init__(self, sequences: Iterable[MotionSequence], t_in: int, t_out: int, stride: int = 1) -> None:
        self.sequences: list[MotionSequence] = list(sequences)
        if not self.sequences:
            raise DataError("no motion sequences to cut into windows")
        shapes = {s.poses.shape[1:] for s in self.sequences}
        if len(shapes) != 1:
            raise DataError(f"sequences have different joint layouts {sorted(shapes)}; use one layout")
        names = [s.name for s in self.sequences]
        if len(set(names)) != len(names):
            raise DataError("sequence names must be unique within a window set")
        self.t_in, self.t_out, self.stride = int(t_in), int(t_out), int(stride)
        length = self.t_in + self.t_out
        seq_ids, starts = [], []
        for i, s in enumerate(self.sequences):
            st = window_starts(s.num_frames, length, self.stride)
            seq_ids.append(np.full(len(st), i, dtype=np.int64))
            starts.append(st)
        self._seq = np.concatenate(seq_ids)
        self._start = np.concatenate(starts)
        self._poses = [np.ascontiguousarray(s.poses, dtype=np.float32) for s in self.sequences]
        # all frames back to back, and each window's first frame in that array (for fast batches)
        self._flat = np.concatenate(self._poses) if self._poses else None
        seq_offsets = np.cumsum([0] + [p.shape[0] for p in self._poses])[:-1]
        self._flat_start = seq_offsets[self._seq] + self._start

    @property
    def window_length(self) -> int:
        return self.t_in + self.t_out

    @property
    def pose_shape(self) -> tuple[int, int]:
        """``(K, D)`` of every pose."""
        k, d = self.sequences[0].poses.shape[1:]
        return int(k), int(d)

    def __len__(self) -> int:
        return int(self._seq.shape[0])

    def source(self, index: int) -> tuple[str, str, int]:
        """``(subject, sequence name, first frame)`` of window ``index``."""
        s = self.sequences[int(self._seq[index])]
        return s.subject, s.name, int(self._start[index])

    def window(self, index: int) -> np.ndarray:
        """The whole window ``[t_in + t_out, K, D]``."""
        if not -len(self) <= index < len(self):
            raise IndexError(f"window {index} out of range for {len(self)} windows")
        seq, start = int(self._seq[index]), int(self._start[index])
        return self._poses[seq][start : start + self.window_length]

    def __getitem__(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        w = self.window(index)
        return w[: self.t_in], w[self.t_in :]

    def batch(self, indices: Sequence[int] | np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Windows ``indices`` stacked: ``(observed [B, t_in, K, D], future [B, t_out, K, D])``."""
        idx = np.asarray(indices, dtype=np.int64)
        w = self._flat[self._flat_start[idx][:, None] + np.arange(self.window_length)[None, :]]
        return w[:, : self.t_in], w[:, self.t_in :]

    def arrays(self) -> tuple[np.ndarray, np.ndarray]:
        """All windows stacked: ``(observed [N, t_in, K, D], future [N, t_out, K, D])``."""
        if len(self) == 0:
            k, d = self.pose_shape
            return (np.zeros((0, self.t_in, k, d), np.float32), np.zeros((0, self.t_out, k, d), np.float32))
        offsets = np.arange(self.window_length)
        obs, fut = [], []
        for i, p in enumerate(self._poses):
            st = self._start[self._seq == i]
            if len(st) == 0:
                continue
            w = p[st[:, None] + offsets[None, :]]
            obs.append(w[:, : self.t_in])
            fut.append(w[:, self.t_in :])
        return np.concatenate(obs), np.concatenate(fut)


def augment_mirrored(
    sequences: Iterable[MotionSequence], flip_index: Sequence[int] | np.ndarray, lateral_axis: int = 0
) -> list[MotionSequence]:
    """The sequences followed by a mirrored copy of each (a separate sequence named ``<name>@mirror``)."""
    sequences = list(sequences)
    mirrored = [
        replace(s, poses=mirror_poses(s.poses, flip_index, lateral_axis), name=f"{s.name}@mirror")
        for s in sequences
    ]
    return sequences + mirrored
