"""MoveNet SinglePose decoding: the post-processing of Google's graph, batched, in numpy.

The embedded MoveNet ONNX files (``assets/models/movenet-{thunder,lightning}.onnx``) stop at the
four head maps so that several person crops run in one batch; this module does what the original
TensorFlow graph does after them (the conversion script checks the two agree on real images):

1. the person centre is the argmax of the centre map, already weighted by the graph towards the
   middle of the crop (``centres``);
2. each keypoint is first regressed from that centre (``regress``, (dy, dx) per keypoint);
3. the keypoint cell is the argmax of its heatmap divided by (distance to the regressed point +
   1.8), so the keypoint of the centred person wins over other people's;
4. the sub-cell offset there (``offsets``) is added; the score is the heatmap value at the cell.

Imports nothing from pyramidpose (the conversion script loads this file on its own).
"""

from __future__ import annotations

import numpy as np

#: Added to the distance to the regressed keypoint (1.8 stored as float16 in the graph).
DISTANCE_BIAS = np.float32(1.7998046875)


def decode_singlepose(
    heatmaps: np.ndarray, centres: np.ndarray, regress: np.ndarray, offsets: np.ndarray
) -> np.ndarray:
    """Keypoints ``(B, K, 3)`` = (y, x, score), y and x in [0, 1] of the crop.

    Args:
        heatmaps: ``(B, K, H, W)`` keypoint heatmaps (sigmoid).
        centres: ``(B, 1, H, W)`` centre map (sigmoid, times the graph's centre weighting).
        regress: ``(B, 2K, H, W)`` keypoint (dy, dx) from the centre, in cells.
        offsets: ``(B, 2K, H, W)`` sub-cell (dy, dx) of each keypoint, in cells.
    """
    heatmaps = np.asarray(heatmaps, np.float32)
    b, k, h, w = heatmaps.shape
    rows = np.arange(b)
    centre = np.asarray(centres, np.float32).reshape(b, h * w).argmax(1)
    cy, cx = centre // w, centre % w
    reg = np.asarray(regress, np.float32)[rows, :, cy, cx].reshape(b, k, 2)
    ry = cy[:, None].astype(np.float32) + reg[..., 0]
    rx = cx[:, None].astype(np.float32) + reg[..., 1]
    gy = np.arange(h, dtype=np.float32)[None, None, :, None]
    gx = np.arange(w, dtype=np.float32)[None, None, None, :]
    dist = np.sqrt((gy - ry[..., None, None]) ** 2 + (gx - rx[..., None, None]) ** 2) + DISTANCE_BIAS
    cell = (heatmaps / dist).reshape(b, k, h * w).argmax(2)
    ky, kx = cell // w, cell % w
    bi = rows[:, None]
    ki = np.arange(k)[None, :]
    off = np.asarray(offsets, np.float32)
    oy = off[bi, 2 * ki, ky, kx]
    ox = off[bi, 2 * ki + 1, ky, kx]
    score = heatmaps[bi, ki, ky, kx]
    y = (ky.astype(np.float32) + oy) / np.float32(h)
    x = (kx.astype(np.float32) + ox) / np.float32(w)
    return np.stack([y, x, score], -1).astype(np.float32)
