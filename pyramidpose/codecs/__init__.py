"""Heatmap codecs: keypoints <-> Gaussian target heatmaps (MSRA, UDP, DARK, DARK-UDP) and flip test.

:class:`HeatmapCodec` is the object models, datasets and the predictor share; the functions below
are its building blocks.
"""

from pyramidpose.codecs.heatmap import (
    DECODE_METHODS,
    REFINEMENTS,
    HeatmapCodec,
    decode_udp_combined,
    encode_msra,
    encode_udp,
    encode_udp_combined,
    flip_heatmaps_back,
    gaussian_blur,
    get_heatmap_maximum,
    is_udp,
    refine_dark,
    refine_dark_udp,
    refine_quarter,
)

__all__ = [
    "DECODE_METHODS", "REFINEMENTS", "HeatmapCodec", "decode_udp_combined", "encode_udp_combined", "encode_msra",
    "encode_udp", "flip_heatmaps_back", "gaussian_blur", "get_heatmap_maximum", "is_udp", "refine_dark",
    "refine_dark_udp", "refine_quarter",
]  # fmt: skip
