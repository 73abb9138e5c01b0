"""A few coco-mini images as their own annotation file and image folder (for fast end-to-end tests)."""

from __future__ import annotations

import json
from pathlib import Path


def coco_subset(coco_mini: Path, split: str, n_images: int, tmp: Path) -> tuple[Path, Path]:
    """An annotation file with the first ``n_images`` images of ``split`` that have labelled people,
    and a folder with (links to) just those images."""
    gt = json.loads((coco_mini / "annotations" / f"person_keypoints_{split}2017.json").read_text())
    with_people = {a["image_id"] for a in gt["annotations"] if a["num_keypoints"] > 0}
    images = [im for im in gt["images"] if im["id"] in with_people][:n_images]
    ids = {im["id"] for im in images}
    gt["images"] = images
    gt["annotations"] = [a for a in gt["annotations"] if a["image_id"] in ids]
    ann = tmp / f"{split}_subset.json"
    ann.write_text(json.dumps(gt))
    folder = tmp / f"{split}_images"
    folder.mkdir()
    for im in images:
        (folder / im["file_name"]).symlink_to(coco_mini / f"{split}2017" / im["file_name"])
    return ann, folder
