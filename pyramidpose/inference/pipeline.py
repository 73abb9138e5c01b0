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
import warnings
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from pyramidpose.data.boxes import BoxFile, load_box_file, read_image_table
from pyramidpose.data.images import read_image
from pyramidpose.data.video import (
    DecodeReport,
    VideoWriter,
    is_video_path,
    iter_frames,
    probe_video,
    source_name,
    stream_kind,
)
from pyramidpose.errors import ConfigError, DataError, PyramidPoseError
from pyramidpose.inference.backends import (
    DEFAULT_PRESET,
    DEFAULT_VIDEO_PRESET,
    PRESETS,
    load_backend,
    load_detector,
)
from pyramidpose.inference.backends.base import PersonDetector, PoseBackend, SessionOptions
from pyramidpose.inference.results import POSE_NMS, PoseResult
from pyramidpose.inference.smoothing import OneEuroConfig, TrackSmoother
from pyramidpose.inference.tracking import PoseTracker
from pyramidpose.skeletons import get_keypoint_set
from pyramidpose.utils.background import BackgroundWorker, Prefetch
from pyramidpose.utils.io import atomic_path, write_json_atomic
from pyramidpose.utils.jsonio import dumps
from pyramidpose.utils.outputs import EXIT_FAILED, EXIT_OK, EXIT_PARTIAL, Journal, output_stems
from pyramidpose.viz.draw import DrawStyle, draw_result, save_image

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff", ".gif")


@dataclass
class PipelineConfig:
    """Options of a pipeline run (the ``pyramidpose predict`` flags map onto these)."""

    out_dir: Path = Path("predict_out")
    weights: str | None = None  # a checkpoint or a preset name of backends.PRESETS; None -> DEFAULT_PRESET (videos: DEFAULT_VIDEO_PRESET)
    boxes: str | None = None  # COCO detection-results (or GT annotation) file; None -> detector
    mmpose_gt_boxes: bool = False  # with an annotation boxes file: MMPose's GT-box protocol
    images_from: str | None = None  # COCO annotation file: only its images, and their ids
    oks_nms: float | None = None  # greedy OKS-NMS per image at this OKS (MMPose evaluation: 0.9)
    pose_nms: str | None = None  # oks | soft-oks | parametric (oks_nms: the OKS threshold / soft sigma)
    detector: str | None = None  # a name of backends.DETECTORS; None -> the preset's detector (else nanodet)
    image_preset: str = "accurate"  # BlazePose's own preset for still images (BlazePose models only)
    video_preset: str = "fast"  # BlazePose's own preset for video frames (BlazePose models only)
    min_instance_score: float = 0.2  # image overlays: weaker poses and OKS duplicates are not drawn
    min_box_score: float = 0.0
    track: bool = True
    smooth: bool = True
    one_euro: OneEuroConfig = field(default_factory=OneEuroConfig)
    draw: bool = False  # overlay JPEGs for images (videos always get an annotated MP4)
    draw_dir: Path | None = None  # where image overlays go (default: out_dir)
    results_path: Path | None = None  # COCO results of the image set (default: out_dir/results.json)
    draw_style: DrawStyle = field(default_factory=DrawStyle)  # overlay thresholds, sizes, labels
    video_stride: int = 1
    max_frames: int | None = None
    detect_every: int = 5  # video: run the detector every N frames, follow boxes around the poses in between (measured: docs/embedded_models.md)
    max_people: int | None = None  # video: at most this many people per frame (best scores), None: everyone
    mp4_preset: str = "ultrafast"  # x264 preset of the annotated MP4 (measured: docs/embedded_models.md)
    video_tiles: tuple[int, ...] | None = (2,)  # detector tile grids on video frames (None: detector default)
    progress: bool = True
    device: str | None = None
    num_threads: int = 2
    vitpose_options: dict = field(default_factory=dict)  # dataset + TopDownPredictor options
    # torchrun: this process's place (training.distributed.DistInfo); images and videos are shared out
    # by rank, each rank journals its own images, rank 0 merges them into the one results file
    dist: Any = None


@dataclass
class VideoOutput:
    source: Path | str
    jsonl: Path
    mp4: Path
    frames: int
    report: DecodeReport
    tracks: int = 0  # distinct track ids (people followed over frames)
    detections: int = 0  # person instances summed over frames


@dataclass
class RunReport:
    """What a run wrote, skipped (bad inputs) and failed to write, and why."""

    written: list[Path] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)  # outputs that could not be written
    notes: list[str] = field(default_factory=list)  # e.g. renamed outputs of same-name inputs
    images: int = 0
    people: int = 0
    videos: list[VideoOutput] = field(default_factory=list)
    boxes: int = 0  # person boxes given to the pose model on images
    zero_area_boxes: int = 0  # of those, boxes skipped for having no area inside the image
    resumed: int = 0  # images taken from the journal of an earlier, interrupted run

    def summary(self) -> str:
        """One line: people in photos, tracks (not per-frame detections) in videos, skips, failures."""
        parts = [f"{_count(self.images, 'image')} with {_count(self.people, 'person', 'people')}"]
        if self.resumed:
            parts[0] += f" ({self.resumed} from an earlier run's journal)"
        if self.boxes or self.zero_area_boxes:
            parts.append(f"{_count(self.boxes, 'box', 'boxes')} ({self.zero_area_boxes} zero-area)")
        if self.videos:
            frames = sum(v.frames for v in self.videos)
            tracks = sum(v.tracks for v in self.videos)
            dets = sum(v.detections for v in self.videos)
            parts.append(
                f"{_count(len(self.videos), 'video')}: {_count(frames, 'frame')}, {_count(tracks, 'track')} "
                f"({_count(dets, 'per-frame detection')})"
            )
        if self.skipped:
            parts.append(f"{_count(len(self.skipped), 'item')} skipped")
        if self.failed:
            parts.append(f"{_count(len(self.failed), 'output')} failed")
        return "; ".join(parts)

    def lines(self) -> list[str]:
        out = [f"wrote {p}" for p in self.written]
        out += [f"note: {n}" for n in self.notes]
        out += [f"skipped {item}: {why}" for item, why in self.skipped]
        out += [f"failed {item}: {why}" for item, why in self.failed]
        return out

    def exit_code(self) -> int:
        """0 all done; 1 nothing processed or an output failed; 3 done but inputs were skipped
        (:mod:`pyramidpose.utils.outputs`)."""
        if self.failed or (self.images == 0 and not self.videos):
            return EXIT_FAILED
        return EXIT_PARTIAL if self.skipped else EXIT_OK


def _count(n: int, word: str, plural: str | None = None) -> str:
    return f"{n} {word if n == 1 else plural or word + 's'}"


# -- inputs ---------------------------------------------------------------------------------------


def collect_inputs(
    specs: Iterable[str | int | os.PathLike[str]],
) -> tuple[list[Path], list[Path | str], list[tuple[str, str]]]:
    """Expand files, folders (non-recursive) and glob patterns into (images, videos, problems).
    Camera indices and stream URLs are videos, kept as strings."""
    images: list[Path] = []
    videos: list[Path | str] = []
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
        if stream_kind(spec) is not None:
            videos.append(str(int(spec)) if stream_kind(spec) == "camera" else s)
        elif p.is_dir():
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
    """File names (without folders) of the images a COCO annotation file lists."""
    return {Path(str(im.get("file_name", ""))).name for im in read_image_table(path).values()}


def image_id_for(path: Path) -> int | str:
    """COCO image id of a file: the number for COCO-style names (000000000139.jpg), else the stem."""
    return int(path.stem) if path.stem.isdigit() else path.stem


# -- drawing ----------------------------------------------------------------------------------------


def draw_frame(
    image: np.ndarray, result: PoseResult, track_ids: np.ndarray | None = None, style: DrawStyle | None = None
) -> np.ndarray:
    """A copy of ``image`` with skeletons, boxes and (optional) track ids drawn (colours per track
    id when given, else per person)."""
    if len(result) == 0:  # nobody: the frame as it is
        return np.array(image, np.uint8, copy=True)
    return draw_result(image, result, track_ids=track_ids, style=style)


# -- the pipeline -----------------------------------------------------------------------------------


def _progress(iterable, total: int | None, desc: str, enabled: bool):
    if not enabled:
        return iterable
    from tqdm import tqdm

    return tqdm(iterable, total=total, desc=desc, unit="it", file=sys.stderr, leave=False)


class _StopOnInterrupt:
    """For live sources (cameras, streams have no end): the first Ctrl-C sets ``requested`` so the
    frame loop ends cleanly and the outputs are kept; a second one interrupts as usual. For files
    (or outside the main thread) it does nothing."""

    def __init__(self, live: bool) -> None:
        self.live = live
        self.requested = False
        self._old = None

    def __enter__(self) -> _StopOnInterrupt:
        import signal
        import threading

        if self.live and threading.current_thread() is threading.main_thread():
            self._old = signal.signal(signal.SIGINT, self._handle)
        return self

    def _handle(self, signum, frame) -> None:
        import signal

        if self.requested:
            signal.default_int_handler(signum, frame)
        self.requested = True
        print("stopping after this frame (Ctrl-C again to abort)", file=sys.stderr)

    def __exit__(self, *exc) -> None:
        if self._old is not None:
            import signal

            signal.signal(signal.SIGINT, self._old)


class Pipeline:
    """Detection -> pose -> (tracking, smoothing) -> outputs.

    Only the protocol methods of :mod:`pyramidpose.inference.backends.base` are called: images go
    through :meth:`PoseBackend.predict_many` (boxes from the boxes file or the detector, none for a
    bottom-up backend), each video through a fresh :meth:`PoseBackend.video_session`.

    Args:
        config: run options.
        backend: a pose backend; default from ``config.weights`` (see :func:`load_backend`).
        detector: a :class:`PersonDetector` or any callable image -> (boxes xywh, scores); default
            the detector named by ``config.detector``.
        video_backend: the backend for video frames (default: with no model named,
            ``backends.DEFAULT_VIDEO_PRESET``; a BlazePose preset with ``config.video_preset``;
            else ``backend``).
    """

    def __init__(
        self,
        config: PipelineConfig | None = None,
        backend: PoseBackend | None = None,
        detector: PersonDetector | Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]] | None = None,
        video_backend: PoseBackend | None = None,
    ) -> None:
        self.config = config or PipelineConfig()
        c = self.config
        if backend is not None:
            self.backend = backend
        elif c.weights is None or c.weights in PRESETS:
            self.backend = load_backend(c.weights, **_embedded_options(c.weights, c.image_preset, c.num_threads))
        else:
            self.backend = load_backend(c.weights, device=c.device, **c.vitpose_options)
        # video frames: the given backend, or an embedded preset of their own (built on first use,
        # so image-only runs never load it), or the image backend
        self._video_backend = video_backend
        self._video_preset: str | None = None
        blaze = PRESETS.get(str(c.weights or DEFAULT_PRESET))
        if video_backend is None and backend is None:
            if c.weights is None and DEFAULT_VIDEO_PRESET != DEFAULT_PRESET:
                self._video_preset = DEFAULT_VIDEO_PRESET  # no model named: the faster default (measured)
            elif blaze is not None and blaze.module == "blazepose" and c.video_preset != c.image_preset:
                self._video_preset = str(c.weights or DEFAULT_PRESET)
        if self._video_backend is None and self._video_preset is None:
            self._video_backend = self.backend
        if c.mmpose_gt_boxes and not c.boxes:
            raise ConfigError("--mmpose-gt-boxes needs --boxes with a COCO annotation file")
        self.image_table = read_image_table(c.images_from) if c.images_from else {}
        self.box_file: BoxFile | None = None
        if c.boxes:
            self.box_file = load_box_file(
                c.boxes, det_thr=c.min_box_score, mmpose_gt=c.mmpose_gt_boxes, images=self.image_table or None
            )
        self._sigmas = None
        self._pose_nms = c.pose_nms or ("oks" if c.oks_nms is not None else None)
        if self._pose_nms is not None and self._pose_nms not in POSE_NMS:
            raise ConfigError(f"--pose-nms must be one of {', '.join(POSE_NMS)}, got {self._pose_nms!r}")
        if c.oks_nms is not None and not 0 < c.oks_nms <= 1:
            raise ConfigError(f"--oks-nms must be in (0, 1], got {c.oks_nms}")
        if self._pose_nms in ("oks", "soft-oks"):
            self._sigmas = _oks_sigmas(self.backend.keypoint_set)
        self._detector = None if detector is None else load_detector(detector)

    @property
    def video_backend(self) -> PoseBackend:
        """The pose backend of video frames (an embedded preset of its own is built on first use)."""
        if self._video_backend is None:
            name, c = self._video_preset, self.config
            self._video_backend = load_backend(name, **_embedded_options(name, c.video_preset, c.num_threads))
        return self._video_backend

    @property
    def detector(self) -> PersonDetector:
        """The person detector (built on first use)."""
        if self._detector is None:
            name = self.config.detector
            if name is None:
                preset = PRESETS.get(str(self.config.weights or DEFAULT_PRESET))
                name = preset.detector if preset is not None and preset.detector else "nanodet"
            self._detector = load_detector(name, **({"num_threads": self.config.num_threads} if name != "hog" else {}))
        return self._detector

    def image_id(self, path: Path) -> int | str:
        """COCO image id of an input image: from the boxes file or ``images_from`` table when they
        name the file, else :func:`image_id_for`."""
        if self.box_file is not None:
            return self.box_file.image_id_for(path)
        for iid, im in self.image_table.items():
            if Path(str(im.get("file_name", ""))).name == path.name:
                return iid
        return image_id_for(path)

    def _boxes(self, image: np.ndarray, image_id: object) -> tuple[np.ndarray, np.ndarray]:
        """Person boxes of one still image: from the boxes file, else the detector (score-filtered)."""
        if self.box_file is not None:
            return self.box_file.get(image_id)
        boxes, scores = self.detector.detect(image)
        keep = scores >= self.config.min_box_score
        return boxes[keep], scores[keep]

    def predict_image(self, image: np.ndarray, image_id: object = None) -> PoseResult:
        """Poses in one RGB image (boxes from the boxes file for ``image_id``, else the detector)."""
        boxes, scores = self._boxes(image, image_id) if self.backend.needs_boxes else (None, None)
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=r".*zero-area box.*")
            return next(iter(self.backend.predict_many([(None, image, boxes, scores)])))[1]

    # images ------------------------------------------------------------------------------------
    def _journal_meta(self) -> dict:
        c = self.config
        return {
            "model": self.backend.name, "weights": c.weights, "boxes": c.boxes, "images_from": c.images_from,
            "mmpose_gt_boxes": c.mmpose_gt_boxes, "oks_nms": c.oks_nms, "pose_nms": c.pose_nms, "min_box_score": c.min_box_score,
            "detector": c.detector, "image_preset": c.image_preset, "vitpose_options": c.vitpose_options,
        }  # fmt: skip

    def run_images(
        self, paths: list[Path], report: RunReport, results_name: str = "results.json",
        stems: dict | None = None,
    ) -> Path | None:  # fmt: skip
        """COCO results JSON for ``paths`` (+ overlays with ``draw``); bad images are skipped.

        Each finished image goes to a journal (``.results.json.journal.jsonl``) at once, so a killed
        run keeps it and the next run with the same model and options skips it; the results file is
        assembled atomically at the end and only when at least one image was processed (an earlier
        good file is never replaced by an empty one). Same-name images from different folders get
        distinct ids and overlay names (their relative folders, see :func:`output_stems`).
        """
        if not paths:
            return None
        c = self.config
        out_dir = Path(c.out_dir)
        target = Path(c.results_path) if c.results_path else out_dir / results_name
        if stems is None:
            stems, notes = output_stems(paths)
            report.notes += notes
        keys = {p: stems[p] for p in paths}
        rank, world = (self.config.dist.rank, self.config.dist.world_size) if self.config.dist else (0, 1)
        mine = paths[rank::world]  # this rank's share (all of them in one process)
        journal = Journal(_rank_target(target, rank, world), self._journal_meta())
        todo = [p for p in mine if keys[p] not in journal.done]
        report.resumed += len(mine) - len(todo)
        try:
            for (path, image_id, image), result in self._image_results(todo, report, keys):
                report.zero_area_boxes += result.num_skipped_boxes
                if self._pose_nms is not None:
                    result = result.pose_nms(self._pose_nms, c.oks_nms, self._sigmas)
                if c.draw or c.draw_dir:
                    overlay = draw_frame(image, result.confident(c.min_instance_score), style=c.draw_style)
                    where = Path(c.draw_dir or out_dir) / f"{keys[path]}_pose.jpg"
                    try:
                        report.written.append(save_image(where, overlay))
                    except OSError as exc:
                        report.failed.append((str(where), f"could not be written ({exc})"))
                journal.add(keys[path], {"people": len(result), "rows": result.to_coco(image_id)})
        finally:
            journal.close()
        finished = journal.done
        if world > 1:  # every rank's journal is complete before rank 0 reads them all
            from pyramidpose.training.distributed import barrier

            barrier(self.config.dist)
            if rank != 0:
                return None
            journals = [journal] + [Journal(_rank_target(target, r, world), self._journal_meta()) for r in range(1, world)]
            finished = {k: v for j in journals for k, v in j.done.items()}
            for j in journals[1:]:
                j.close()
        else:
            journals = [journal]
        done = [finished[keys[p]] for p in paths if keys[p] in finished]
        report.images += len(done)
        report.people += sum(int(d["people"]) for d in done)
        if self.box_file is not None:  # boxes for images that were not among the inputs
            inputs = {self.image_id(p) for p in paths}
            for iid in self.box_file.image_ids():
                if iid not in inputs:
                    report.skipped.append((f"image_id {iid}", "the boxes file has boxes for it but no input image matches"))
        if not done:
            kept = f"; the existing {target} was kept" if target.exists() else ""
            report.failed.append((str(target), f"not written: none of the {len(paths)} images could be processed{kept}"))
            return None
        try:
            write_json_atomic(target, [row for d in done for row in d["rows"]])
        except OSError as exc:
            report.failed.append((str(target), f"could not be written ({exc}); finished images are kept in {journal.path}"))
            return None
        for j in journals:
            j.close(remove=True)
        report.written.insert(0, target)
        return target

    def _image_results(self, paths: list[Path], report: RunReport, keys: dict | None = None):
        """Yield ``((path, image_id, image), PoseResult)`` per readable image, in order, through the
        backend's ``predict_many`` (which may batch crops across images); unreadable images are
        reported and skipped."""
        top_down = self.backend.needs_boxes

        def items():
            for path in _progress(paths, len(paths), "images", self.config.progress):
                image_id = self.image_id(path)
                if keys is not None and self.box_file is None and keys[path] != path.stem:
                    image_id = keys[path]  # a same-name image from another folder: its relative path
                try:
                    image = read_image(path)
                    boxes, scores = self._boxes(image, image_id) if top_down else (None, None)
                except PyramidPoseError as exc:
                    report.skipped.append((str(path), str(exc)))
                    continue
                report.boxes += 0 if boxes is None else len(boxes)
                yield (path, image_id, image), image, boxes, scores

        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=r".*zero-area box.*")
            yield from self.backend.predict_many(items())

    # videos ------------------------------------------------------------------------------------
    def iter_video(
        self, source: Path | str | int, decode: DecodeReport | None = None, *, stride: int | None = None,
        max_frames: int | None = None, total: int | None = None,
    ) -> Iterator[tuple[int, float, np.ndarray, PoseResult]]:  # fmt: skip
        """Yield ``(frame_index, time_s, rgb, result)`` for a video file, camera or stream URL:
        one pose session per source, track ids (``result.track_ids``) and smoothing per the config."""
        c = self.config
        stride = c.video_stride if stride is None else stride
        max_frames = c.max_frames if max_frames is None else max_frames
        vb = self.video_backend
        tracker = PoseTracker(sigmas=_sigmas(vb.keypoint_set)) if c.track else None
        smoother = TrackSmoother(c.one_euro) if (c.smooth and c.track) else None
        session = vb.video_session(
            self.detector if vb.needs_boxes else None,
            SessionOptions(min_box_score=c.min_box_score, detector_tiles=c.video_tiles, max_people=c.max_people),
        )
        # decoding runs in a thread, a few frames ahead of the models (PyAV releases the GIL)
        with Prefetch(iter_frames(source, decode, stride=stride, max_frames=max_frames), 4, "decode") as frames:
            for n, (index, t, rgb) in enumerate(_progress(frames, total, source_name(source), c.progress)):
                result = session.step(rgb, detect=n % max(1, c.detect_every) == 0)
                ids = tracker.update(result.keypoints, result.keypoint_scores, result.bboxes) if tracker else None
                if smoother is not None and len(result):
                    result.keypoints = smoother(ids, result.keypoints, t).astype(np.float32)
                if ids is not None:
                    result.track_ids = ids
                yield index, t, rgb, result

    def video_header(self, source: Path | str, info, fps: float) -> dict:
        """The first record of a video's JSON lines: what a reader needs without any other file."""
        ks = get_keypoint_set(self.video_backend.keypoint_set)
        return {
            "header": {
                "format": "pyramidpose-video-poses", "version": 1, "source": str(source),
                "model": self.video_backend.name, "keypoint_set": ks.name, "keypoint_names": list(ks.keypoints),
                "skeleton": [list(limb) for limb in ks.limbs], "fps": round(float(fps), 4),
                "width": int(info.width), "height": int(info.height), "stride": int(self.config.video_stride),
                "tracked": bool(self.config.track),
            }
        }  # fmt: skip

    def run_video(self, path: Path | str, report: RunReport, stem: str | None = None) -> VideoOutput | None:
        """``<stem>.jsonl`` (a header record, then one record per frame) + annotated ``<stem>.mp4``
        for one video; None (and a report line) when the video cannot be used at all."""
        c = self.config
        out_dir = Path(c.out_dir)
        try:
            info = probe_video(path)
        except PyramidPoseError as exc:
            report.skipped.append((str(path), str(exc)))
            return None
        decode = DecodeReport(path)
        stem = stem or source_name(path)
        jsonl_path = out_dir / f"{stem}.jsonl"
        mp4_path = out_dir / f"{stem}.mp4"
        fps = (info.fps or 25.0) / max(1, c.video_stride)
        total = info.num_frames // max(1, c.video_stride) if info.num_frames else None
        if c.max_frames is not None and total is not None:
            total = min(total, c.max_frames)
        frames = detections = 0
        track_set: set[int] = set()
        try:
            with atomic_path(jsonl_path) as tmp_jsonl, open(tmp_jsonl, "w") as fj, VideoWriter(
                mp4_path, fps, info.width, info.height, preset=c.mp4_preset
            ) as writer, _StopOnInterrupt(live=stream_kind(path) is not None) as stop:
                fj.write(dumps(self.video_header(path, info, fps)) + "\n")

                def write(item: tuple[int, float, np.ndarray, PoseResult]) -> None:
                    index, t, rgb, result = item
                    fj.write(dumps(frame_record(index, t, result, result.track_ids)) + "\n")
                    writer.write(draw_frame(rgb, result, result.track_ids, c.draw_style))

                # records, drawing and H.264 encoding run in a thread, in frame order, while the
                # models work on the next frame; its first error ends the loop here (files not kept)
                with BackgroundWorker(write, 4, "video-writer") as out:
                    for index, t, rgb, result in self.iter_video(path, decode, total=total):
                        ids = result.track_ids
                        out.submit((index, t, rgb, result))
                        frames += 1
                        detections += len(result)
                        if ids is not None:
                            track_set.update(int(i) for i in ids)
                        if stop.requested:  # Ctrl-C on a live source: finish the files written so far
                            break
        except PyramidPoseError as exc:
            report.skipped.append((str(path), str(exc)))
            return None
        except OSError as exc:
            report.failed.append((str(jsonl_path), f"could not be written ({exc})"))
            return None
        if decode.skipped or decode.problems:
            report.skipped.append((str(path), decode.summary()))
        out = VideoOutput(path, jsonl_path, mp4_path, frames, decode, tracks=len(track_set), detections=detections)
        report.videos.append(out)
        report.written += [jsonl_path, mp4_path]
        return out

    def run(self, inputs: Iterable[str | os.PathLike[str]], only_names: set[str] | None = None) -> RunReport:
        """Process every input (only files named in ``only_names``, when given); returns what was
        written, skipped and failed (see :meth:`RunReport.exit_code`)."""
        images, videos, problems = collect_inputs(inputs)
        if only_names is not None:
            images = [p for p in images if p.name in only_names]
            videos = [p for p in videos if isinstance(p, str) or p.name in only_names]
        report = RunReport(skipped=list(problems))
        if not images and not videos:
            raise DataError(
                "no usable input: " + "; ".join(f"{s} ({why})" for s, why in problems)
                if problems else "no inputs given"
            )
        image_stems, notes = output_stems(images)
        video_stems, more = output_stems(videos)
        report.notes += notes + more
        self.run_images(images, report, stems=image_stems)
        dist = self.config.dist
        rank, world = (dist.rank, dist.world_size) if dist else (0, 1)
        for v in videos[rank::world]:
            self.run_video(v, report, stem=video_stems[v])
        if world > 1:  # one merged report on every rank (rank 0 prints it)
            from pyramidpose.training.distributed import all_gather_objects

            report = merge_reports(all_gather_objects(report, dist))
        return report


def _embedded_options(name: str | None, blazepose_preset: str, num_threads: int) -> dict:
    """``load_backend`` options of an embedded preset: threads, and BlazePose's own preset."""
    preset = PRESETS[str(name or DEFAULT_PRESET)]
    return {"num_threads": num_threads, **({"preset": blazepose_preset} if preset.module == "blazepose" else {})}


def _rank_target(target: Path, rank: int, world: int) -> Path:
    """The file a rank journals under: the results file itself in one process, else a per-rank name."""
    return target if world == 1 else target.with_name(f"{target.name}.rank{rank}-of-{world}")


def merge_reports(reports: list[RunReport]) -> RunReport:
    """One :class:`RunReport` from the ranks' reports (lists joined in rank order, counts summed)."""
    out = RunReport()
    for r in reports:
        for name in ("written", "skipped", "failed", "videos"):
            getattr(out, name).extend(getattr(r, name))
        for name in ("images", "people", "boxes", "zero_area_boxes", "resumed"):
            setattr(out, name, getattr(out, name) + getattr(r, name))
    out.notes = list(dict.fromkeys(n for r in reports for n in r.notes))  # every rank computes the same notes
    return out


def _oks_sigmas(keypoint_set: str) -> np.ndarray:
    """OKS sigmas of a keypoint layout for OKS-NMS (a ConfigError when it defines none)."""
    try:
        ks = get_keypoint_set(keypoint_set)
    except KeyError:
        ks = None
    if ks is None or ks.sigmas is None:
        raise ConfigError(f"OKS-NMS needs OKS sigmas, which keypoint set '{keypoint_set}' does not define")
    return ks.sigmas_array()


def _sigmas(keypoint_set: str) -> np.ndarray | None:
    """OKS sigmas of a keypoint layout for tracking (0.05 each where the layout has none)."""
    try:
        ks = get_keypoint_set(keypoint_set)
    except KeyError:
        return None
    return ks.sigmas_array() if ks.sigmas is not None else np.full(ks.num_keypoints, 0.05)


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
