"""The synthetic people generator: exact labels, depth-ordered visibility, determinism, splits."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from pyramidpose.data.synthetic import (
    KEYPOINT_PARTS,
    NUM_PARTS,
    SPLIT_SUBJECTS,
    BackgroundBank,
    MotionBank,
    SceneConfig,
    SyntheticPeople,
    _place,
    random_person,
    render_scene,
    write_coco,
)
from pyramidpose.geometry.cameras import random_virtual_camera

DATA = Path(__file__).parent / "data"
SHARED_MOCAP = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "cmu-mocap"


@pytest.fixture(scope="module")
def bank() -> MotionBank:
    return MotionBank.from_files([("01", DATA / "mocap" / "01.asf", DATA / "mocap" / "01_01_first60.amc")], fps=30.0)


@pytest.fixture(scope="module")
def backgrounds() -> BackgroundBank:
    return BackgroundBank.from_coco(DATA / "coco" / "person_keypoints_mini.json", DATA / "coco" / "images")


def _flat_scene(bank: MotionBank, seed: int, n: int = 4, crowd: float = 0.45):
    """People with one unique flat colour per (person, part), no effects, crowded together."""
    rng = np.random.default_rng(seed)
    h, w = 240, 240
    cam = random_virtual_camera(rng, np.array([0.0, 1.0, 0.0]), focal_px=(300, 500), image_size=(w, h),
                                target_jitter_m=0.0)  # fmt: skip
    people = []
    for p in range(n):
        person = random_person(rng, bank, SceneConfig())
        person.colors = np.array([[10 + 12 * p, 20 + 15 * k, 200 - 7 * p] for k in range(NUM_PARTS)], np.float32)
        uv = np.array([w / 2, h / 2]) + rng.uniform(-crowd, crowd, 2) * 120
        people.append(_place(rng, person, cam, float(rng.uniform(60, 200)), uv))
    bg = np.full((h, w, 3), 255, np.uint8)
    return people, cam, render_scene(people, cam, bg, rng, effects=False)


def test_keypoints_lie_exactly_on_their_rendered_limbs(bank: MotionBank) -> None:
    """Pixel test: a v=2 keypoint's pixel shows one of its own parts' colours, a v=1 one never does;
    keypoints are the independent (OpenCV) projection of the 3D joints."""
    n_vis = n_occ = 0
    for seed in range(6):
        people, cam, sc = _flat_scene(bank, seed)
        h, w = sc.image.shape[:2]
        for p, person in enumerate(people):
            ref, _ = cv2.projectPoints(person.coco, cv2.Rodrigues(cam.R)[0], cam.t, cam.K, None)
            np.testing.assert_allclose(sc.keypoints[p, :, :2], ref[:, 0], atol=1e-3)
            for k in range(17):
                x, y, v = sc.keypoints[p, k]
                inside = -0.5 <= x < w - 0.5 and -0.5 <= y < h - 0.5
                assert (v > 0) == inside
                if not inside:
                    continue
                pix = sc.image[int(round(y)), int(round(x))].astype(int)
                own = [person.colors[part].astype(int) for part in KEYPOINT_PARTS[k]]
                on_own = any((pix == c).all() for c in own)
                if v == 2:
                    assert on_own, (seed, p, k, pix, own)
                    n_vis += 1
                elif k > 4:  # a face point on the far side of the head is v=1 on the head's colour
                    assert not on_own, (seed, p, k)
                    n_occ += 1
    assert n_vis > 100 and n_occ > 5  # the scenes really had visible and covered keypoints


def test_visibility_follows_depth_order_not_list_order(bank: MotionBank) -> None:
    rng = np.random.default_rng(3)
    cam = random_virtual_camera(rng, np.array([0.0, 1.0, 0.0]), elevation_deg=(0, 0), image_size=(240, 240),
                                target_jitter_m=0.0)  # fmt: skip
    person = random_person(rng, bank, SceneConfig())
    near = _place(rng, person, cam, 180.0, np.array([120.0, 120.0]))
    far = _place(rng, person, cam, 90.0, np.array([120.0, 120.0]))
    bg = np.zeros((240, 240, 3), np.uint8)
    a = render_scene([near, far], cam, bg, effects=False)
    b = render_scene([far, near], cam, bg, effects=False)
    np.testing.assert_array_equal(a.keypoints[0], b.keypoints[1])  # same visibility whatever the order
    np.testing.assert_array_equal(a.keypoints[1], b.keypoints[0])
    owner = (a.labels - 1) // NUM_PARTS  # person index of every pixel (-1: background)
    covered_far = 0
    for p in (0, 1):
        for x, y, v in a.keypoints[p]:
            o = owner[int(round(y)), int(round(x))]
            if p == 1 and o == 0:  # the far person's keypoint under the near person
                assert v == 1
                covered_far += 1
            assert not (p == 0 and o == 1)  # the far person never covers the near one
    assert covered_far >= 8
    assert (a.keypoints[0, :, 2] == 2).sum() >= 10
    assert a.occlusion[1] > 0.5 and a.occlusion[0] == 0.0
    assert a.depth_mm.shape == (2, 17) and abs(a.depth_mm[0]).max() < 600  # pelvis-relative millimetres


def test_seed_reproduces_images_bit_for_bit(bank: MotionBank, backgrounds: BackgroundBank) -> None:
    cfg = SceneConfig(image_size=(192, 192))
    g1 = SyntheticPeople("train", seed=7, motion=bank, backgrounds=backgrounds, config=cfg)
    g2 = SyntheticPeople("train", seed=7, motion=bank,
                         backgrounds=BackgroundBank(backgrounds.items), config=cfg)  # fmt: skip
    _ = g2[9]  # another index first: no state carries over
    for i in (0, 5):
        s1, s2 = g1[i], g2[i]
        assert s1.image.tobytes() == s2.image.tobytes()
        assert s1.keypoints.tobytes() == s2.keypoints.tobytes() and s1.labels.tobytes() == s2.labels.tobytes()
    other = SyntheticPeople("train", seed=8, motion=bank, backgrounds=backgrounds, config=cfg)[0]
    assert other.image.tobytes() != g1[0].image.tobytes()
    test_split = SyntheticPeople("test", seed=7, motion=bank, backgrounds=backgrounds, config=cfg)[0]
    assert test_split.image.tobytes() != g1[0].image.tobytes()


def test_train_and_test_subjects_are_disjoint() -> None:
    assert not set(SPLIT_SUBJECTS["train"]) & set(SPLIT_SUBJECTS["test"])
    if not SHARED_MOCAP.is_dir():
        pytest.skip(f"CMU mocap not found at {SHARED_MOCAP} (the shared data is not beside the repository)")
    from pyramidpose.data.mocap import list_cmu_sequences

    train_trials = {p.stem for _, _, p in list_cmu_sequences(SHARED_MOCAP, SPLIT_SUBJECTS["train"])}
    test = MotionBank.for_split(SHARED_MOCAP, "test")
    test_trials = {n.split(":")[0] for n in test.names}
    assert test.subjects == ("03",) and test_trials and train_trials
    assert not train_trials & test_trials and all(t.startswith("03_") for t in test_trials)
    scene = SyntheticPeople("test", seed=0, mocap_root=SHARED_MOCAP, config=SceneConfig(image_size=(128, 128)))[0]
    assert all(s.startswith("03_") for s in scene.sources)


def test_small_and_large_people_are_present(bank: MotionBank) -> None:
    gen = SyntheticPeople("train", seed=0, motion=bank, config=SceneConfig(image_size=(256, 256)))
    heights, labelled = [], []
    for i in range(25):
        sc = gen[i]
        heights += list(sc.height_px)
        labelled += list((sc.keypoints[:, :, 2] > 0).sum(1))
    heights, labelled = np.array(heights), np.array(labelled)
    assert ((heights < 64) & (labelled >= 5)).sum() >= 5  # small labelled people
    assert (heights > 150).sum() >= 3
    assert len(heights) >= 40  # several people per image


def test_coco_labels_score_ap_above_099_against_themselves(bank: MotionBank, backgrounds: BackgroundBank,
                                                           tmp_path: Path) -> None:  # fmt: skip
    from pyramidpose.evaluation.coco_eval import coco_keypoint_eval

    gen = SyntheticPeople("test", seed=1, motion=bank, backgrounds=backgrounds, config=SceneConfig(image_size=(256, 256)))
    ann = tmp_path / "synthetic.json"
    doc = write_coco(gen, range(12), ann, image_dir=tmp_path / "images")
    assert len(doc["annotations"]) >= 20
    written = cv2.cvtColor(cv2.imread(str(tmp_path / "images" / "00000003.png")), cv2.COLOR_BGR2RGB)
    np.testing.assert_array_equal(written, gen[3].image)  # lossless images
    gt = json.loads(ann.read_text())
    results = [{"image_id": a["image_id"], "category_id": 1, "keypoints": a["keypoints"], "score": 1.0}
               for a in gt["annotations"]]  # fmt: skip
    stats = coco_keypoint_eval(str(ann), results)
    assert stats["AP"] > 0.99
    shifted = [dict(r, keypoints=[v + (6.0 if i % 3 == 0 else 0.0) for i, v in enumerate(r["keypoints"])])
               for r in results]  # fmt: skip
    assert coco_keypoint_eval(str(ann), shifted)["AP"] < stats["AP"]  # the evaluation can tell


def test_backgrounds_avoid_every_person_box(tmp_path: Path) -> None:
    covered = np.full((100, 100, 3), 77, np.uint8)  # one person box covers this whole image
    path = tmp_path / "covered.png"
    cv2.imwrite(str(path), covered)
    bank = BackgroundBank([(str(path), np.array([[0, 0, 100, 100]]))])
    rng = np.random.default_rng(0)
    for _ in range(5):
        out = bank.sample(rng, (64, 64))
        assert out.shape == (64, 64, 3) and not (out == 77).all()  # never a crop of the person
    free = BackgroundBank([(str(path), np.zeros((0, 4)))])
    assert (free.sample(rng, (64, 64)) == 77).all()


def test_motion_cache_round_trip(tmp_path: Path) -> None:
    import shutil

    subj = tmp_path / "cmu" / "subjects" / "03"
    subj.mkdir(parents=True)
    shutil.copy(DATA / "mocap" / "01.asf", subj / "03.asf")
    shutil.copy(DATA / "mocap" / "01_01_first60.amc", subj / "03_01.amc")
    first = MotionBank.for_split(tmp_path / "cmu", "test", fps=30.0, cache_dir=tmp_path / "cache")
    (cached,) = list((tmp_path / "cache").glob("motion_test_*.npz"))
    again = MotionBank.for_split(tmp_path / "cmu", "test", fps=30.0, cache_dir=tmp_path / "cache")
    np.testing.assert_array_equal(first.coco, again.coco)
    assert again.names == first.names and again.subjects == ("03",) and len(first) == 15
    cached.write_bytes(b"not an npz")  # a damaged cache is rebuilt, not trusted
    assert MotionBank.for_split(tmp_path / "cmu", "test", fps=30.0, cache_dir=tmp_path / "cache").names == first.names


def _mini_cmu(root: Path) -> Path:
    """A cmu-mocap layout whose subjects 01, 02 and 03 all hold the repository's 60-frame excerpt."""
    import shutil

    for s in ("01", "02", "03"):
        d = root / "subjects" / s
        d.mkdir(parents=True)
        shutil.copy(DATA / "mocap" / "01.asf", d / f"{s}.asf")
        shutil.copy(DATA / "mocap" / "01_01_first60.amc", d / f"{s}_01.amc")
    return root


def test_synthetic_source_trains_and_validates_through_the_engine(tmp_path: Path) -> None:
    from pyramidpose.training.config import load_config
    from pyramidpose.training.engine import make_dataset, train

    _mini_cmu(tmp_path / "cmu-mocap")
    repo = Path(__file__).resolve().parents[1]
    sets = [
        f"data.root={tmp_path}", f"data.synthetic.cache_dir={tmp_path / 'cache'}",
        f"data.synthetic.train_backgrounds_ann={DATA / 'coco' / 'person_keypoints_mini.json'}",
        f"data.synthetic.train_backgrounds_images={DATA / 'coco' / 'images'}",
        "data.synthetic.test_backgrounds_ann=null", "data.synthetic.train_scenes=8", "data.synthetic.test_scenes=3",
        "data.synthetic.image_size=[128,128]", "data.synthetic.height_px=[40.0,110.0]", "data.num_workers=0",
        "model.input_size=[64,48]", "model.embed_dim=32", "model.depth=2", "model.num_heads=2", "model.head_channels=32",
        "train.batch_size=4", "train.tensorboard=false", "eval.batch_size=8", "eval.flip_test=false",
        "optim.warmup_iters=1",
    ]  # fmt: skip
    cfg = load_config(repo / "configs" / "synthetic_tiny.yaml", sets)
    tr, va = make_dataset(cfg, True), make_dataset(cfg, False)
    from pyramidpose.data.coco import CocoKeypointDataset

    coco = CocoKeypointDataset(DATA / "coco" / "person_keypoints_mini.json", DATA / "coco" / "images", codec=tr.codec)
    missing = sorted(set(vars(coco)) - set(vars(tr)) - {"image_dir"})
    assert not missing, f"SyntheticKeypointDataset lacks CocoKeypointDataset attributes {missing}"
    s = tr[(2, (0, 0, 2))]
    assert s["valid"] and s["image"].shape == (3, 64, 48) and s["target"].shape == (17, 16, 12)
    assert s["target_weight"].sum() >= 4
    np.testing.assert_array_equal(tr[(2, (0, 0, 2))]["image"], s["image"])  # deterministic crops
    assert len(va) == len(va.gt["annotations"]) > 0 and va.ann_file.is_file()
    assert {"height_px", "occlusion", "depth_mm"} <= set(va.gt["annotations"][0])
    out = train(cfg, tmp_path / "run", max_steps=1)
    assert out["step"] == 1 and out["AP"] is not None and 0.0 <= out["AP"] <= 1.0
