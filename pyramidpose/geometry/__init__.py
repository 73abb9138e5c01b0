"""Geometry: top-down crops (``crops``: sizes (H, W), box -> centre/scale, MSRA/UDP matrices) and person
boxes (``boxes``), cameras and triangulation. ``crops`` and ``boxes`` import nothing from pyramidpose."""
