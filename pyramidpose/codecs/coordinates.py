"""The training-target choice of the 2D engine: heatmaps, SIKR coordinates or SimCC labels.

``data.target`` of a training config names one of :data:`TARGETS`; :func:`coordinate_codec` builds
the codec for a model's input size (``None`` for heatmaps, which keep the heatmap code path): the
engine trains with its ``encode`` and ``loss``, :class:`~pyramidpose.inference.topdown.TopDownPredictor`
predicts with its ``decode``, ``flip_back`` and ``to_image``.
"""

from __future__ import annotations

from pyramidpose.codecs.integral import IntegralCodec
from pyramidpose.codecs.simcc import SimCCCodec

TARGETS = ("heatmap", "sikr", "simcc")


def coordinate_codec(
    target: str, input_size: tuple[int, int], udp: bool = True
) -> IntegralCodec | SimCCCodec | None:
    """The codec of ``target`` for a model with ``input_size (H, W)`` (heatmaps a quarter of it).

    SimCC uses split ratio 2 and RTMPose's label sigmas (4.9, 5.66 bins at 256x192) scaled with the
    input height.
    """
    h, w = (int(v) for v in input_size)
    if target == "heatmap":
        return None
    if target == "sikr":
        return IntegralCodec(input_size=(h, w), heatmap_size=(h // 4, w // 4), udp=udp)
    if target == "simcc":
        f = h / 256
        return SimCCCodec(input_size=(h, w), split_ratio=2.0, sigma=(4.9 * f, 5.66 * f), udp=udp)
    raise ValueError(f"unknown target {target!r}; choose from {', '.join(TARGETS)}")

