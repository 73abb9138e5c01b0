"""The end-to-end pipeline on the real bundled clip and photos, and its handling of bad input."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import numpy as np
import pytest

from pyramidpose.errors import DataError
from pyramidpose.inference.pipeline import Pipeline, PipelineConfig, collect_inputs

SAMPLES = Path(__file__).resolve().parents[1] / "pyramidpose" / "assets" / "samples"
CLIP = SAMPLES / "street_5frames.mp4"

pytest.importorskip("onnxruntime")


@pytest.fixture(scope="module")
def pipeline_factory():
    """Pipelines share one loaded backend/detector (model loading is the slow part)."""
    base = Pipeline(PipelineConfig(progress=False))

    def make(out_dir: Path, **kw) -> Pipeline:
        p = Pipeline(PipelineConfig(out_dir=out_dir, progress=False, **kw), backend=base.backend,
                     detector=base.detector, video_backend=base.video_backend)  # fmt: skip
        return p

    return make


@pytest.fixture(scope="module")
def clip_run(tmp_path_factory, pipeline_factory):
    out = tmp_path_factory.mktemp("clip")
    report = pipeline_factory(out).run([str(CLIP)])
    return out, report


def _records(path: Path) -> list[dict]:
    """The frame records of a video JSONL (after its header record, checked here)."""
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    header = lines[0]["header"]
    assert header["keypoint_names"][0] == "nose" and header["width"] > 0 and header["fps"] > 0
    assert header["skeleton"] and header["model"]
    return lines[1:]


def test_clip_jsonl_has_one_complete_record_per_frame(clip_run):
    out, report = clip_run
    jsonl = out / "street_5frames.jsonl"
    recs = _records(jsonl)
    assert [r["frame"] for r in recs] == [0, 1, 2, 3, 4]
    assert [r["time"] for r in recs] == pytest.approx([0.0, 0.2, 0.4, 0.6, 0.8])
    assert all(r["instances"] for r in recs), "people walk through every frame of this clip"
    for r in recs:
        for inst in r["instances"]:
            assert set(inst) == {"track_id", "bbox", "keypoints", "keypoint_scores", "score"}
            assert isinstance(inst["track_id"], int)
            assert len(inst["bbox"]) == 4 and len(inst["keypoints"]) == 17 and len(inst["keypoint_scores"]) == 17
            x, y, w, h = inst["bbox"]
            assert 0 <= x and 0 <= y and x + w <= 960.01 and y + h <= 540.01
    assert report.videos[0].frames == 5 and report.skipped == []


def test_clip_people_keep_their_track_ids(clip_run):
    out, _ = clip_run
    recs = _records(out / "street_5frames.jsonl")
    from pyramidpose.geometry.boxes import iou_xywh

    continued = 0
    for prev, cur in zip(recs, recs[1:]):
        pb = np.array([i["bbox"] for i in prev["instances"]]).reshape(-1, 4)
        cb = np.array([i["bbox"] for i in cur["instances"]]).reshape(-1, 4)
        iou = iou_xywh(pb, cb)
        for a in range(len(pb)):
            b = int(iou[a].argmax()) if iou.shape[1] else -1
            if b >= 0 and iou[a, b] > 0.5 and iou[:, b].argmax() == a:  # clearly the same person
                assert prev["instances"][a]["track_id"] == cur["instances"][b]["track_id"]
                continued += 1
    assert continued >= 4  # at least one person followed through the whole clip
    ids_per_frame = [{i["track_id"] for i in r["instances"]} for r in recs]
    assert set.intersection(*ids_per_frame), "some id must be present in every frame"
    for ids, r in zip(ids_per_frame, recs):  # ids are unique within a frame
        assert len(ids) == len(r["instances"])


def test_clip_mp4_is_complete_h264_with_every_frame(clip_run):
    from pyramidpose.data.video import iter_frames, probe_video

    out, _ = clip_run
    mp4 = out / "street_5frames.mp4"
    info = probe_video(mp4)
    assert info.codec == "h264" and (info.width, info.height) == (960, 540)
    assert info.fps == pytest.approx(5.0)
    frames = list(iter_frames(mp4))
    assert len(frames) == 5 == len(_records(out / "street_5frames.jsonl"))
    # the overlay was drawn: the output differs from the source frames where people are
    src = [f for _, _, f in iter_frames(CLIP)]
    assert np.abs(frames[0][2].astype(int) - src[0].astype(int)).max() > 100
    assert not list(out.glob(".pp-tmp-*")), "no temporary files left behind"


def test_images_give_coco_results_and_overlays(tmp_path, pipeline_factory):
    imgs = tmp_path / "imgs"
    imgs.mkdir()
    for name in ("000000165518.jpg", "000000434204.jpg"):
        shutil.copy(SAMPLES / name, imgs / name)
    from PIL import Image

    Image.fromarray(np.full((240, 320, 3), 90, np.uint8)).save(imgs / "blank.png")  # nobody here
    (imgs / "broken.jpg").write_bytes(b"\xff\xd8 not really a jpeg")
    out = tmp_path / "out"
    report = pipeline_factory(out, draw=True).run([str(imgs)])
    results = json.loads((out / "results.json").read_text())
    ids = {r["image_id"] for r in results}
    assert 165518 in ids and "blank" not in ids
    for r in results:
        assert len(r["keypoints"]) == 51 and 0 <= r["score"] <= 1
    assert (out / "000000165518_pose.jpg").is_file() and (out / "blank_pose.jpg").is_file()
    assert report.images == 3
    assert [Path(s).name for s, _ in report.skipped] == ["broken.jpg"]


def test_globs_folders_and_missing_inputs(tmp_path):
    images, videos, problems = collect_inputs(
        [str(SAMPLES / "*.jpg"), str(SAMPLES), str(tmp_path / "nope.jpg"), str(tmp_path / "*.png")]
    )
    assert len(images) == 3 and videos == [CLIP]
    assert {why for _, why in problems} == {"not found", "glob matched no files"}


def test_nothing_usable_is_an_error(tmp_path, pipeline_factory):
    with pytest.raises(DataError, match="no usable input"):
        pipeline_factory(tmp_path).run([str(tmp_path / "missing.mp4")])


def test_bad_videos_are_skipped_and_the_run_goes_on(tmp_path, pipeline_factory):
    empty = tmp_path / "empty.mp4"
    empty.write_bytes(b"")
    junk = tmp_path / "junk.mp4"
    junk.write_bytes(b"\x00" * 1000)
    out = tmp_path / "out"
    report = pipeline_factory(out, max_frames=2).run([str(empty), str(junk), str(CLIP)])
    assert sorted(Path(s).name for s, _ in report.skipped) == ["empty.mp4", "junk.mp4"]
    assert len(_records(out / "street_5frames.jsonl")) == 2
    assert not (out / "empty.jsonl").exists() and not (out / "empty.mp4").exists()


def test_a_failing_video_writer_fails_the_run_and_keeps_no_file(tmp_path, pipeline_factory, monkeypatch):
    """Encoding runs in a background thread: its error must still fail the run (not exit 0, not hang)."""
    from pyramidpose.data.video import VideoWriter

    real_write = VideoWriter.write

    def write(self, rgb):
        if self.frames_written == 2:
            raise OSError("No space left on device")
        real_write(self, rgb)

    monkeypatch.setattr(VideoWriter, "write", write)
    out = tmp_path / "out"
    report = pipeline_factory(out).run([str(CLIP)])
    assert report.exit_code() != 0 and not report.videos
    assert len(report.failed) == 1 and "No space left on device" in report.failed[0][1]
    assert not list(out.glob("*.mp4")) and not list(out.glob("*.jsonl")) and not list(out.glob(".pp-tmp-*"))
    assert not _io_threads(), "the reader and writer threads are gone"


def test_decode_errors_from_the_reader_thread_reach_the_report(tmp_path, pipeline_factory):
    """Decoding runs in a background thread: an undecodable video is still skipped with its reason
    (no files), and a damaged frame is still counted in the report."""
    from test_video import _faststart_copy

    full = tmp_path / "full.mp4"
    packets = _faststart_copy(full)
    data = bytearray(full.read_bytes())
    nokey = bytearray(data)
    pos, size = packets[0]  # the key frame: nothing after it can be decoded
    nokey[pos + 4 : pos + size] = bytes(size - 4)
    (tmp_path / "nokey.mp4").write_bytes(bytes(nokey))
    pos, size = packets[2]  # one frame in the middle
    data[pos + 4 : pos + size] = np.random.default_rng(0).integers(0, 256, size - 4, dtype=np.uint8).tobytes()
    (tmp_path / "damaged.mp4").write_bytes(bytes(data))
    out = tmp_path / "out"
    report = pipeline_factory(out).run([str(tmp_path / "nokey.mp4"), str(tmp_path / "damaged.mp4")])
    reasons = dict(report.skipped)
    assert "could be decoded" in reasons[str(tmp_path / "nokey.mp4")]
    assert not (out / "nokey.jsonl").exists() and not (out / "nokey.mp4").exists()
    assert "1 skipped" in reasons[str(tmp_path / "damaged.mp4")]
    assert len(_records(out / "damaged.jsonl")) == 4 == report.videos[0].frames
    assert not _io_threads()


def _io_threads() -> list:
    import threading

    return [t for t in threading.enumerate() if t.name in ("decode", "video-writer") and t.is_alive()]


def test_boxes_file_replaces_the_detector(tmp_path, pipeline_factory):
    boxes = tmp_path / "boxes.json"
    boxes.write_text(json.dumps([{"image_id": 165518, "category_id": 1, "bbox": [240, 160, 200, 320], "score": 0.7}]))
    out = tmp_path / "out"
    report = pipeline_factory(out, boxes=str(boxes)).run([str(SAMPLES / "000000165518.jpg"), str(SAMPLES / "000000434204.jpg")])
    results = json.loads((out / "results.json").read_text())
    assert [r["image_id"] for r in results] == [165518]  # the other image has no boxes in the file
    assert report.people == 1


def test_predict_command_runs_the_pipeline_on_inputs(tmp_path, capsys):
    from pyramidpose.cli import main

    out = tmp_path / "pred"
    code = main([
        "predict", "--input", str(SAMPLES / "000000165518.jpg"), str(CLIP), "--out", str(out),
        "--max-frames", "2", "--no-progress", "--preset", "fast",
    ])  # fmt: skip
    assert code == 0
    printed = capsys.readouterr().out
    assert f"wrote {out / 'results.json'}" in printed
    assert re.search(r"1 image with \d+ (person|people); \d+ box(es)? \(0 zero-area\); 1 video: 2 frames, ", printed)
    recs = _records(out / "street_5frames.jsonl")
    assert len(recs) == 2
    tracks = {i["track_id"] for r in recs for i in r["instances"]}
    dets = sum(len(r["instances"]) for r in recs)
    assert f"{len(tracks)} track" in printed and f"({dets} per-frame detection" in printed  # tracks, not detections
    # --out x.json names the results file; bad inputs are reported, exit code 2 when nothing is usable
    assert main(["predict", "--input", str(tmp_path / "none.jpg"), "--out", str(tmp_path / "r.json")]) == 2
    assert "no usable input" in capsys.readouterr().err


def test_video_detect_every_follows_people_between_detections(tmp_path, pipeline_factory):
    out = tmp_path / "every5"
    pipeline_factory(out, detect_every=5).run([str(CLIP)])
    recs = _records(out / "street_5frames.jsonl")
    assert len(recs) == 5
    first = {i["track_id"] for i in recs[0]["instances"]}
    assert first
    for r in recs[1:]:  # frames 1-4 run no detector: the same people are followed
        assert {i["track_id"] for i in r["instances"]} <= first
        assert len(r["instances"]) >= 1


def test_images_from_annotation_file_limits_the_set(tmp_path, pipeline_factory):
    ann = tmp_path / "ann.json"
    ann.write_text(json.dumps({"images": [{"id": 165518, "file_name": "000000165518.jpg"}]}))
    from pyramidpose.inference.pipeline import coco_file_names

    out = tmp_path / "out"
    report = pipeline_factory(out).run([str(SAMPLES)], only_names=coco_file_names(ann))
    assert report.images == 1 and report.videos == []
    with pytest.raises(DataError, match="not a COCO annotation file"):
        coco_file_names(tmp_path / "out" / "results.json")


def test_vitpose_checkpoint_backend_runs_through_the_pipeline(tmp_path, pipeline_factory):
    """--weights swaps the embedded model for any checkpoint load_model reads (random tiny here:
    only the plumbing is checked: shapes, image coordinates, one JSON record per frame)."""
    import pyramidpose
    from pyramidpose.inference.backends import load_backend
    from pyramidpose.inference.backends.vitpose import ViTPoseBackend

    model = pyramidpose.create_model("vitpose-tiny", num_keypoints=17, input_size=(128, 96))
    ckpt = pyramidpose.save_model(model, tmp_path / "tiny.safetensors")
    backend = load_backend(str(ckpt), device="cpu", flip_test=False, batch_size=4)
    assert isinstance(backend, ViTPoseBackend) and backend.keypoint_set == "coco"
    base = pipeline_factory(tmp_path)
    pipe = Pipeline(PipelineConfig(out_dir=tmp_path / "vit", progress=False, max_frames=1), backend=backend,
                    detector=base.detector)  # fmt: skip
    report = pipe.run([str(CLIP)])
    recs = _records(tmp_path / "vit" / "street_5frames.jsonl")
    assert len(recs) == 1 and report.videos[0].frames == 1
    # image sets go through the predictor's cross-image batching; a blank image gives no rows
    from PIL import Image

    Image.fromarray(np.full((64, 64, 3), 80, np.uint8)).save(tmp_path / "blank.png")
    pipe.run([str(SAMPLES / "000000165518.jpg"), str(tmp_path / "blank.png")])
    rows = json.loads((tmp_path / "vit" / "results.json").read_text())
    assert rows and {r["image_id"] for r in rows} == {165518}
    assert all(len(r["keypoints"]) == 51 for r in rows)
    for r in recs:
        for inst in r["instances"]:
            x, y, w, h = inst["bbox"]
            kp = np.array(inst["keypoints"])
            assert kp.shape == (17, 2)
            # top-down predictions land inside the person's crop: the box grown to the model's 3:4
            # aspect and padded 1.25x, centred on the box
            cw, ch = max(w, 0.75 * h) * 1.25, max(h, w / 0.75) * 1.25
            assert (np.abs(kp[:, 0] - (x + w / 2)) <= cw / 2 + 1).all()
            assert (np.abs(kp[:, 1] - (y + h / 2)) <= ch / 2 + 1).all()
