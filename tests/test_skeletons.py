"""Keypoint layouts: sizes, flip pairs, sigmas and the mappings between layouts."""

from __future__ import annotations

import numpy as np
import pytest

from pyramidpose.skeletons import (
    COCO_WHOLEBODY,
    KEYPOINT_SETS,
    convert_keypoints,
    get_keypoint_set,
    keypoint_mapping,
)

SIZES = {"coco": 17, "h36m": 17, "mpii": 16, "crowdpose": 14, "aic": 14, "coco_wholebody": 133, "blazepose": 33,
         "goliath": 308}


def test_registered_sizes() -> None:
    assert {n: s.num_keypoints for n, s in KEYPOINT_SETS.items()} == SIZES


# Goliath marks sides as l_/r_ and swaps some contour points crosswise: tests/test_sapiens.py checks it.
@pytest.mark.parametrize("name", sorted(set(SIZES) - {"goliath"}))
def test_flip_index_is_an_involution_mapping_left_to_right(name: str) -> None:
    ks = get_keypoint_set(name)
    perm = ks.flip_index()
    assert sorted(perm.tolist()) == list(range(ks.num_keypoints))
    np.testing.assert_array_equal(perm[perm], np.arange(ks.num_keypoints))
    for i, n in enumerate(ks.keypoints):
        j = int(perm[i])
        if "left" in n:
            assert ks.keypoints[j] == n.replace("left", "right")
        elif "right" in n:
            assert ks.keypoints[j] == n.replace("right", "left")
        elif not n.startswith("face-"):
            assert j == i, f"{name}: midline keypoint {n} is flipped onto {ks.keypoints[j]}"
    # every name with a side has a partner
    sided = [n for n in ks.keypoints if "left" in n or "right" in n]
    assert sum(perm[ks.index(n)] != ks.index(n) for n in sided) == len(sided)


@pytest.mark.parametrize("name", sorted(SIZES))
def test_sigmas_lengths_and_pairs_symmetric(name: str) -> None:
    ks = get_keypoint_set(name)
    if ks.sigmas is None:
        with pytest.raises(ValueError):
            ks.sigmas_array()
        return
    sig = ks.sigmas_array()
    assert sig.shape == (ks.num_keypoints,) and (sig > 0).all() and (sig < 0.2).all()
    perm = ks.flip_index()
    # The published AI Challenger sigmas and COCO-WholeBody's face and feet sigmas are not left/right
    # symmetric (kept as published, since OKS must match the official evaluation; Goliath inherits the feet).
    feet = ("toe", "heel")
    check = [
        i for i, n in enumerate(ks.keypoints)
        if name != "aic" and not n.startswith("face-") and not (name in ("coco_wholebody", "goliath") and n.endswith(feet))
    ]  # fmt: skip
    np.testing.assert_allclose(sig[check], sig[perm][check])


def test_wholebody_layout() -> None:
    ks = COCO_WHOLEBODY
    assert ks.keypoints[:17] == KEYPOINT_SETS["coco"].keypoints
    assert ks.keypoints[17:23] == (
        "left_big_toe", "left_small_toe", "left_heel", "right_big_toe", "right_small_toe", "right_heel",
    )  # fmt: skip
    assert ks.keypoints[23] == "face-0" and ks.keypoints[90] == "face-67"
    assert ks.keypoints[91] == "left_hand_root" and ks.keypoints[112] == "right_hand_root"
    assert ks.keypoints[132] == "right_pinky_finger4"
    perm = ks.flip_index()
    assert perm[23] == 23 + 16 and perm[23 + 8] == 23 + 8  # jaw end <-> end, chin stays
    assert perm[23 + 36] == 23 + 45  # outer eye corners


def test_aliases() -> None:
    assert get_keypoint_set("MediaPipe").name == "blazepose"
    assert get_keypoint_set("COCO-WholeBody").name == "coco_wholebody"
    with pytest.raises(KeyError):
        get_keypoint_set("nope")


def test_blazepose_to_coco_by_name() -> None:
    rng = np.random.default_rng(0)
    kp = rng.uniform(0, 100, size=(2, 33, 2))
    sc = rng.uniform(0, 1, size=(2, 33))
    out, out_sc = convert_keypoints(kp, "blazepose", "coco", sc)
    bp = get_keypoint_set("blazepose")
    coco = get_keypoint_set("coco")
    for i, n in enumerate(coco.keypoints):
        np.testing.assert_allclose(out[:, i], kp[:, bp.index(n)])
        np.testing.assert_allclose(out_sc[:, i], sc[:, bp.index(n)])


def test_coco_to_h36m_derived_joints() -> None:
    coco = get_keypoint_set("coco")
    h36m = get_keypoint_set("h36m")
    kp = np.random.default_rng(1).uniform(0, 50, size=(17, 3))
    sc = np.linspace(0.1, 0.9, 17)
    out, out_sc = convert_keypoints(kp, "coco", "h36m", sc)
    lh, rh = kp[coco.index("left_hip")], kp[coco.index("right_hip")]
    np.testing.assert_allclose(out[h36m.index("pelvis")], (lh + rh) / 2)
    np.testing.assert_allclose(out[h36m.index("left_knee")], kp[coco.index("left_knee")])
    assert out_sc[h36m.index("pelvis")] == pytest.approx(min(sc[11], sc[12]))
    assert keypoint_mapping("coco", "h36m").valid.all()


def test_mapping_marks_missing_targets() -> None:
    m = keypoint_mapping("crowdpose", "coco")
    assert not m.valid[0]  # no nose in CrowdPose
    out, sc = m.apply(np.ones((14, 2)), np.ones(14))
    assert sc[0] == 0 and (out[0] == 0).all() and sc[5] == 1
