"""The end-to-end pipeline: images / folders / globs / videos -> people -> poses -> tracks -> files.

For a set of images it writes one COCO keypoint-results JSON (``results.json``) and, with
``draw=True``, an overlay PNG per image. For each video ``<name>.mp4`` it writes, in the output
directory, ``<name>.jsonl`` (one JSON record per decoded frame: ``frame``, ``time``,
``instances`` with ``track_id``, ``bbox``, ``keypoints``, ``keypoint_scores``, ``score``) and an
annotated ``<name>.mp4`` (skeletons and track ids). Unreadable images, broken videos and frames
that fail to decode are skipped and listed in the run report; the run goes on.
"""

from __future__ import annotations

import glob
import os
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from pyramidpose.data.images import read_image
from pyramidpose.data.video import DecodeReport, VideoWriter, is_video_path, iter_frames, probe_video
from pyramidpose.errors import DataError, PyramidPoseError
from pyramidpose.inference.results import PoseResult
from pyramidpose.inference.smoothing import OneEuroConfig, TrackSmoother
from pyramidpose.inference.tracking import PoseTracker
from pyramidpose.utils.io import atomic_path, write_json_atomic
from pyramidpose.utils.jsonio import dumps, read_json

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff", ".gif")


@dataclass
class PipelineConfig:
    """Options of a pipeline run (the ``pyramidpose predict`` flags map onto these)."""

    out_dir: Path = Path("predict_out")
    weights: str | None = None  # None -> embedded BlazePose default
    boxes: str | None = None  # COCO detection-results (or GT annotation) file; None -> detector
    detector: str = "blazepose"
    image_preset: str = "accurate"  # BlazePose preset for still images
    video_preset: str = "fast"  # BlazePose preset for video frames
    min_box_score: float = 0.0
    track: bool = True
    smooth: bool = True
    one_euro: OneEuroConfig = field(default_factory=OneEuroConfig)
    draw: bool = False  # overlay JPEGs for images (videos always get an annotated MP4)
    draw_dir: Path | None = None  # where image overlays go (default: out_dir)
    results_path: Path | None = None  # COCO results of the image set (default: out_dir/results.json)
    draw_threshold: float = 0.3  # keypoints below this score are not drawn
    video_stride: int = 1
    max_frames: int | None = None
    detect_every: int = 1  # video: run the detector every N frames, track boxes in between
    video_tiles: tuple[int, ...] | None = (2,)  # detector tile grids on video frames (None: detector default)
    progress: bool = True
    device: str | None = None
    num_threads: int = 2
    vitpose_options: dict = field(default_factory=dict)  # dataset + TopDownPredictor options


@dataclass
class VideoOutput:
    source: Path
    jsonl: Path
    mp4: Path
    frames: int
    report: DecodeReport


@dataclass
class RunReport:
    """What a run wrote and what it skipped (and why)."""

    written: list[Path] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)
    images: int = 0
    people: int = 0
    videos: list[VideoOutput] = field(default_factory=list)

    def lines(self) -> list[str]:
        out = [f"wrote {p}" for p in self.written]
        out += [f"skipped {item}: {why}" for item, why in self.skipped]
        return out


# -- inputs ---------------------------------------------------------------------------------------


def collect_inputs(specs: Iterable[str | os.PathLike[str]]) -> tuple[list[Path], list[Path], list[tuple[str, str]]]:
    """Expand files, folders (non-recursive) and glob patterns into (images, videos, problems)."""
    images: list[Path] = []
    videos: list[Path] = []
    problems: list[tuple[str, str]] = []

    def add(p: Path) -> None:
        ext = p.suffix.lower()
        if is_video_path(p):
            videos.append(p)
        elif ext in IMAGE_EXTENSIONS:
            images.append(p)
        else:
            problems.append((str(p), f"unknown file type '{ext or '(none)'}' (not an image or video)"))

    for spec in specs:
        s = str(spec)
        p = Path(s)
        if p.is_dir():
            children = sorted(c for c in p.iterdir() if c.is_file() and not c.name.startswith("."))
            usable = [c for c in children if c.suffix.lower() in IMAGE_EXTENSIONS or is_video_path(c)]
            if not usable:
                problems.append((s, "folder has no images or videos"))
            for c in usable:
                add(c)
        elif p.is_file():
            add(p)
        elif any(ch in s for ch in "*?["):
            matches = sorted(Path(m) for m in glob.glob(s, recursive=True) if Path(m).is_file())
            if not matches:
                problems.append((s, "glob matched no files"))
            for m in matches:
                add(m)
        else:
            problems.append((s, "not found"))
    # de-duplicate, keep order
    images = list(dict.fromkeys(images))
    videos = list(dict.fromkeys(videos))
    return images, videos, problems


def coco_file_names(path: str | os.PathLike[str]) -> set[str]:
    """File names of the images a COCO annotation file lists."""
    path = Path(path)
    data = read_json(path, "COCO annotation file")
    try:
        return {str(im["file_name"]) for im in data["images"]}
    except (KeyError, TypeError) as exc:
        raise DataError(f"{path} is not a COCO annotation file with an 'images' list ({exc})") from None


def image_id_for(path: Path) -> int | str:
    """COCO image id of a file: the number for COCO-style names (000000000139.jpg), else the stem."""
    return int(path.stem) if path.stem.isdigit() else path.stem


# -- drawing ----------------------------------------------------------------------------------------


def draw_frame(image: np.ndarray, result: PoseResult, track_ids: np.ndarray | None = None, threshold: float = 0.3) -> np.ndarray:
    """A copy of ``image`` with skeletons, boxes and (optional) track ids drawn."""
    from pyramidpose.viz.draw import draw_poses

    if len(result) == 0:  # nobody: the frame as it is
        return np.array(image, np.uint8, copy=True)
    return draw_poses(
        image, result.keypoints, result.keypoint_scores, result.keypoint_set, threshold=threshold,
        bboxes=result.bboxes, track_ids=track_ids,
    )  # fmt: skip


# -- the pipeline -----------------------------------------------------------------------------------


def _progress(iterable, total: int | None, desc: str, enabled: bool):
    if not enabled:
        return iterable
    from tqdm import tqdm

    return tqdm(iterable, total=total, desc=desc, unit="it", file=sys.stderr, leave=False)


class Pipeline:
    """Detection -> pose -> (tracking, smoothing) -> outputs.

    Args:
        config: run options.
        backend: a pose backend; default from ``config.weights`` (see :func:`load_backend`).
        detector: any callable image -> (boxes xywh, scores); default the embedded detector.
    """

    def __init__(
        self,
        config: PipelineConfig | None = None,
        backend=None,
        detector: Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]] | None = None,
        video_backend=None,
    ) -> None:
        from pyramidpose.inference.backends import load_backend

        self.config = config or PipelineConfig()
        c = self.config
        self.backend = backend or load_backend(c.weights, c.device, c.image_preset, c.num_threads, **c.vitpose_options)
        if video_backend is not None:
            self.video_backend = video_backend
        elif backend is None and (c.weights is None) and c.video_preset != c.image_preset:
            self.video_backend = load_backend(None, c.device, c.video_preset, c.num_threads)
        else:
            self.video_backend = self.backend
        self.boxes_file = None
        if c.boxes:
            from pyramidpose.inference.detectors import CocoDetections

            self.boxes_file = CocoDetections(c.boxes)
        self._detector = detector

    @property
    def detector(self):
        if self._detector is None:
            from pyramidpose.inference.detectors import make_detector

            self._detector = make_detector(self.config.detector)
        return self._detector

    def _boxes(self, image: np.ndarray, key: object | None) -> tuple[np.ndarray, np.ndarray]:
        if self.boxes_file is not None and key is not None:
            boxes, scores = self.boxes_file.get(key)
        else:
            from pyramidpose.inference.detectors import as_detector

            boxes, scores = as_detector(self.detector)(image)
        keep = scores >= self.config.min_box_score
        return boxes[keep], scores[keep]

    def predict_image(self, image: np.ndarray, key: object | None = None, backend=None) -> PoseResult:
        """Poses of the people in one RGB image (an empty result when there is nobody)."""
        boxes, scores = self._boxes(image, key)
        backend = backend or self.backend
        if len(boxes) == 0:
            return PoseResult.empty(_num_keypoints(backend.keypoint_set), backend.keypoint_set)
        return backend.predict(image, boxes, scores)

    # images ------------------------------------------------------------------------------------
    def run_images(self, paths: list[Path], report: RunReport, results_name: str = "results.json") -> Path | None:
        """COCO results JSON for ``paths`` (+ overlays with ``draw``); bad images are skipped."""
        if not paths:
            return None
        out_dir = Path(self.config.out_dir)
        coco: list[dict] = []
        for (path, image), result in self._image_results(paths, report):
            report.images += 1
            report.people += len(result)
            coco.extend(result.to_coco(image_id_for(path)))
            if self.config.draw or self.config.draw_dir:
                from pyramidpose.viz.draw import save_image

                overlay = draw_frame(image, result, threshold=self.config.draw_threshold)
                target = Path(self.config.draw_dir or out_dir) / f"{path.stem}_pose.jpg"
                report.written.append(save_image(target, overlay))
        target = Path(self.config.results_path) if self.config.results_path else out_dir / results_name
        write_json_atomic(target, coco)
        report.written.insert(0, target)
        return target

    def _image_results(self, paths: list[Path], report: RunReport):
        """Yield ``((path, image), PoseResult)`` per readable image, in order. A backend with
        cross-image batching (ViTPose's ``predict_tagged``) gets all images as one stream, so crops
        of consecutive images share forward passes; unreadable images are reported and skipped."""

        def items():
            for path in _progress(paths, len(paths), "images", self.config.progress):
                try:
                    image = read_image(path)
                    boxes, scores = self._boxes(image, image_id_for(path))
                except PyramidPoseError as exc:
                    report.skipped.append((str(path), str(exc)))
                    continue
                yield (path, image), image, boxes, scores

        predictor = getattr(self.backend, "predictor", None)
        if predictor is not None and hasattr(predictor, "predict_tagged"):
            yield from predictor.predict_tagged(items())
            return
        for tag, image, boxes, scores in items():
            if len(boxes) == 0:
                ks = self.backend.keypoint_set
                yield tag, PoseResult.empty(_num_keypoints(ks), ks)
            else:
                yield tag, self.backend.predict(image, boxes, scores)

    # videos ------------------------------------------------------------------------------------
    def run_video(self, path: Path, report: RunReport) -> VideoOutput | None:
        """``<name>.jsonl`` + annotated ``<name>.mp4`` for one video; None (and a report line) when
        the video cannot be used at all."""
        c = self.config
        out_dir = Path(c.out_dir)
        try:
            info = probe_video(path)
        except PyramidPoseError as exc:
            report.skipped.append((str(path), str(exc)))
            return None
        decode = DecodeReport(path)
        tracker = PoseTracker(sigmas=_sigmas(self.video_backend.keypoint_set)) if c.track else None
        smoother = TrackSmoother(c.one_euro) if (c.smooth and c.track) else None
        jsonl_path = out_dir / f"{path.stem}.jsonl"
        mp4_path = out_dir / f"{path.stem}.mp4"
        fps = (info.fps or 25.0) / max(1, c.video_stride)
        total = info.num_frames // max(1, c.video_stride) if info.num_frames else None
        if c.max_frames is not None and total is not None:
            total = min(total, c.max_frames)
        frames = 0
        prev_boxes = np.zeros((0, 4))
        prev_scores = np.zeros(0)
        fast = self._blazepose_fast_path()
        state: list = []
        try:
            with atomic_path(jsonl_path) as tmp_jsonl, open(tmp_jsonl, "w") as fj, VideoWriter(
                mp4_path, fps, info.width, info.height
            ) as writer:
                for n, (index, t, rgb) in enumerate(_progress(
                    iter_frames(path, decode, stride=c.video_stride, max_frames=c.max_frames),
                    total, path.name, c.progress,
                )):  # fmt: skip
                    detect = n % max(1, c.detect_every) == 0
                    if fast:
                        result, state = self._blazepose_frame(rgb, detect, state)
                    else:
                        if detect or len(prev_boxes) == 0:
                            boxes, scores = self._boxes(rgb, None)
                        else:
                            boxes, scores = prev_boxes, prev_scores
                        if len(boxes):
                            result = self.video_backend.predict(rgb, boxes, scores)
                        else:
                            ks = self.video_backend.keypoint_set
                            result = PoseResult.empty(_num_keypoints(ks), ks)
                    ids = tracker.update(result.keypoints, result.keypoint_scores, result.bboxes) if tracker else None
                    if smoother is not None and len(result):
                        result.keypoints = smoother(ids, result.keypoints, t).astype(np.float32)
                    if ids is not None:
                        result.track_ids = ids
                    prev_boxes, prev_scores = _boxes_from_result(result, rgb.shape), result.box_scores
                    fj.write(dumps(frame_record(index, t, result, ids)) + "\n")
                    writer.write(draw_frame(rgb, result, ids, c.draw_threshold))
                    frames += 1
                    report.people += len(result)
        except (PyramidPoseError, OSError) as exc:
            report.skipped.append((str(path), str(exc)))
            return None
        if decode.skipped or decode.problems:
            report.skipped.append((str(path), decode.summary()))
        out = VideoOutput(path, jsonl_path, mp4_path, frames, decode)
        report.videos.append(out)
        report.written += [jsonl_path, mp4_path]
        return out

    def _blazepose_fast_path(self) -> bool:
        """True when both detector and video backend are the embedded BlazePose models, so that
        the detector's landmarks are reused and people are followed between detections."""
        from pyramidpose.inference.backends import BlazePoseBackend
        from pyramidpose.inference.detectors import BlazePoseDetector

        return (
            self.boxes_file is None
            and isinstance(self.video_backend, BlazePoseBackend)
            and isinstance(self.detector, BlazePoseDetector)
            and self.detector.refine
        )

    def _blazepose_frame(self, rgb: np.ndarray, detect: bool, state: list) -> tuple[PoseResult, list]:
        """One video frame with the embedded models, MediaPipe-style: every known person's crop
        comes from their previous landmarks (one network pass each, no detector); on detection
        frames the detector also looks for new people, and only detections that are not already
        followed are refined (the detector's landmarks are then the poses). People the detector
        loses (it keys on faces) are kept as long as the landmark model still finds them."""
        from pyramidpose.inference.detectors import iou_xywh

        vb = self.video_backend
        tiles = self.config.video_tiles
        lms: list = []
        boxes = np.zeros((0, 4))
        scores = np.zeros(0)
        if state:  # follow everyone from their previous landmarks (one pass each)
            lms, boxes = vb.follow(rgb, [lm for lm, _ in state])
            scores = np.array([lm[3] for lm in lms], np.float64)
        if detect or not state:  # look for new people; known ones are not refined again
            d_boxes, d_scores = self.detector.detect(rgb, skip_boxes=boxes, tiles=tiles)
            d_lms = list(self.detector.last_landmarks)
            keep = d_scores >= self.config.min_box_score
            d_lms = [lm for lm, k in zip(d_lms, keep) if k]
            d_boxes, d_scores = d_boxes[keep], d_scores[keep]
            if len(d_boxes) and len(boxes):
                new = iou_xywh(d_boxes, boxes).max(1) < 0.3
                d_lms = [lm for lm, k in zip(d_lms, new) if k]
                d_boxes, d_scores = d_boxes[new], d_scores[new]
            lms = lms + d_lms
            boxes = np.concatenate([boxes, d_boxes])
            scores = np.concatenate([scores, d_scores])
        result = vb.result_from_landmarks(lms, boxes, scores, rgb.shape)
        return result, list(zip(lms, np.asarray(result.bboxes, np.float64)))

    def run(self, inputs: Iterable[str | os.PathLike[str]], only_names: set[str] | None = None) -> RunReport:
        """Process every input (only files named in ``only_names``, when given); returns what was
        written and what was skipped."""
        images, videos, problems = collect_inputs(inputs)
        if only_names is not None:
            images = [p for p in images if p.name in only_names]
            videos = [p for p in videos if p.name in only_names]
        report = RunReport(skipped=list(problems))
        if not images and not videos:
            raise DataError(
                "no usable input: " + "; ".join(f"{s} ({why})" for s, why in problems)
                if problems else "no inputs given"
            )
        self.run_images(images, report)
        for v in videos:
            self.run_video(v, report)
        return report


def _num_keypoints(keypoint_set: str) -> int:
    from pyramidpose.skeletons import get_keypoint_set

    try:
        return get_keypoint_set(keypoint_set).num_keypoints
    except KeyError:
        return 0


def _sigmas(keypoint_set: str) -> np.ndarray | None:
    """OKS sigmas of a keypoint layout for tracking (0.05 each where the layout has none)."""
    from pyramidpose.skeletons import get_keypoint_set

    try:
        ks = get_keypoint_set(keypoint_set)
    except KeyError:
        return None
    return ks.sigmas_array() if ks.sigmas is not None else np.full(ks.num_keypoints, 0.05)


def _boxes_from_result(result: PoseResult, shape: tuple[int, ...]) -> np.ndarray:
    """Boxes around confident keypoints (expanded 20 %), for frames that skip detection."""
    out = []
    h, w = shape[:2]
    for kp, ks, box in zip(result.keypoints, result.keypoint_scores, result.bboxes):
        good = kp[ks >= 0.3]
        if len(good) < 3:
            out.append(box)
            continue
        x1, y1 = good.min(0)
        x2, y2 = good.max(0)
        bw, bh = (x2 - x1) * 1.2 + 4, (y2 - y1) * 1.2 + 4
        cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
        x1, y1 = max(0.0, cx - bw / 2), max(0.0, cy - bh / 2 - 0.05 * bh)
        out.append([x1, y1, min(w - x1, bw), min(h - y1, bh * 1.05)])
    return np.asarray(out, np.float64).reshape(-1, 4)


def frame_record(index: int, time_s: float, result: PoseResult, ids: np.ndarray | None) -> dict:
    """The JSON-lines record of one video frame (instances with NaN dropped with a warning)."""
    keep = result.finite_mask()
    if not keep.all():
        result = result.finite(f"frame {index}")
        ids = None if ids is None else np.asarray(ids)[keep]
    instances = []
    for i in range(len(result)):
        instances.append(
            {
                "track_id": int(ids[i]) if ids is not None else None,
                "bbox": [round(float(v), 2) for v in result.bboxes[i]],
                "keypoints": [[round(float(x), 2), round(float(y), 2)] for x, y in result.keypoints[i]],
                "keypoint_scores": [round(float(s), 4) for s in result.keypoint_scores[i]],
                "score": round(float(result.scores[i]), 4),
            }
        )
    return {"frame": int(index), "time": round(float(time_s), 4), "instances": instances}
