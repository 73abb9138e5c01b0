"""ASF/AMC parsing, forward kinematics (bone lengths), layout mappings and resampling."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from pyramidpose.data.mocap import (
    CMU_FPS,
    forward_kinematics,
    list_cmu_sequences,
    load_cmu_sequence,
    parse_amc,
    parse_asf,
    resample,
    to_coco17,
    to_h36m17,
)
from pyramidpose.errors import DataError
from pyramidpose.skeletons import COCO, H36M

DATA = Path(__file__).parent / "data" / "mocap"
ASF = DATA / "01.asf"
AMC = DATA / "01_01_first60.amc"


@pytest.fixture(scope="module")
def fk():
    skel = parse_asf(ASF)
    motion = parse_amc(AMC)
    pos, names = forward_kinematics(skel, motion)
    return skel, motion, pos, names


def test_parse_excerpt(fk):
    skel, motion, pos, names = fk
    assert skel.length_unit == pytest.approx(0.45)
    assert len(skel.bones) == 30
    assert motion.num_frames == 60
    assert list(motion.frame_ids[:3]) == [1, 2, 3]
    assert motion.channels["root"].shape == (60, 6)
    assert motion.channels["lfemur"].shape == (60, 3)
    assert pos.shape == (60, len(names), 3)
    assert names[0] == "root"


def test_bone_lengths_constant_across_frames(fk):
    """Must show 1: every FK bone keeps its ASF length (in meters) in every frame."""
    skel, _, pos, names = fk
    idx = {n: i for i, n in enumerate(names)}
    parents = skel.parents()
    for bone, b in skel.bones.items():
        seg = pos[:, idx[bone]] - pos[:, idx[parents[bone]]]
        lengths = np.linalg.norm(seg, axis=-1)
        expected = b.length / 0.45 * 0.0254
        np.testing.assert_allclose(lengths, expected, atol=1e-9, err_msg=bone)
    # and it is a real motion: the joints do move
    assert np.ptp(pos[:, idx["lradius"]], axis=0).max() > 0.01


def test_root_translation_in_meters(fk):
    _, motion, pos, _ = fk
    expected = motion.channels["root"][:, :3] / 0.45 * 0.0254
    np.testing.assert_allclose(pos[:, 0], expected, atol=1e-12)


def test_h36m_mapping_is_anatomically_plausible(fk):
    _, _, pos, names = fk
    h = to_h36m17(pos, names)
    assert h.shape == (60, 17, 3)
    y = h[..., 1]  # Y up
    head, ankle_l, ankle_r = H36M.index("head"), H36M.index("left_ankle"), H36M.index("right_ankle")
    assert np.all(y[:, head] > y[:, H36M.index("thorax")])
    assert np.all(y[:, H36M.index("thorax")] > y[:, H36M.index("pelvis")])
    assert np.all(y[:, H36M.index("pelvis")] > y[:, ankle_l])
    stature = y[:, head] - 0.5 * (y[:, ankle_l] + y[:, ankle_r])
    assert np.all((stature > 1.3) & (stature < 2.0))
    # left is +X in the rest frame; subject 01_01 walks roughly along Z, so left hip has larger X
    assert np.mean(h[:, H36M.index("left_hip"), 0] - h[:, H36M.index("right_hip"), 0]) > 0.05


def test_coco_mapping_face_near_head(fk):
    _, _, pos, names = fk
    c = to_coco17(pos, names)
    h = to_h36m17(pos, names)
    assert c.shape == (60, 17, 3)
    nose = c[:, COCO.index("nose")]
    d = np.linalg.norm(nose - h[:, H36M.index("head")], axis=-1)
    assert np.all((d > 0.05) & (d < 0.25))
    ears = np.linalg.norm(c[:, COCO.index("left_ear")] - c[:, COCO.index("right_ear")], axis=-1)
    np.testing.assert_allclose(ears, 0.15, atol=1e-6)
    np.testing.assert_allclose(c[:, COCO.index("left_knee")], h[:, H36M.index("left_knee")])


def test_resample_linear():
    x = np.arange(13, dtype=np.float64)[:, None] * np.array([[1.0, -2.0]])
    y = resample(x, 120, 30)
    assert y.shape == (4, 2)
    np.testing.assert_allclose(y[:, 0], [0, 4, 8, 12])
    z = resample(x, 10, 25)  # upsampling interpolates linearly
    np.testing.assert_allclose(z[:, 0], np.arange(z.shape[0]) * 0.4, atol=1e-12)
    assert z.shape[0] == 31


def test_load_cmu_sequence_fps(fk):
    seq = load_cmu_sequence(ASF, AMC, fps=30)
    assert seq.shape == (15, 17, 3)  # 60 frames at 120 fps -> t = 0..59/120 s -> 15 frames at 30 fps
    full = load_cmu_sequence(ASF, AMC)
    np.testing.assert_allclose(seq, full[::4])
    assert load_cmu_sequence(ASF, AMC, layout="coco").shape == (60, 17, 3)
    assert CMU_FPS == 120.0


def test_malformed_inputs_name_file_and_line(tmp_path):
    bad = tmp_path / "bad.amc"
    bad.write_text(":FULLY-SPECIFIED\n:DEGREES\n1\nroot 0 0 0 0 0 0\nlfemur 1 two 3\n")
    with pytest.raises(DataError, match=r"bad\.amc:5"):
        parse_amc(bad)
    text = ASF.read_text()
    broken = tmp_path / "broken.asf"
    broken.write_text(text.replace("length 7.1578", "length seven", 1))
    with pytest.raises(DataError, match=r"broken\.asf:\d+.*length"):
        parse_asf(broken)
    with pytest.raises(DataError, match="not found|cannot read"):
        parse_asf(tmp_path / "missing.asf")
    other = tmp_path / "other.amc"
    other.write_text(":FULLY-SPECIFIED\n1\nroot 0 0 0 0 0 0\ntail 1 2\n")
    with pytest.raises(DataError, match="not bones"):
        forward_kinematics(parse_asf(ASF), parse_amc(other))


def test_list_cmu_sequences_real(shared_data):
    seqs = list_cmu_sequences(shared_data / "cmu-mocap" / "subjects", subjects=("03",))
    assert len(seqs) == 4 and all(s == "03" and a.suffix == ".asf" and m.suffix == ".amc" for s, a, m in seqs)
    with pytest.raises(DataError):
        list_cmu_sequences(shared_data / "cmu-mocap", subjects=("99",))


def test_bone_lengths_constant_full_real_sequences(shared_data):
    """Must show 1 on complete trials of every subject (shared data; skipped where absent)."""
    root = shared_data / "cmu-mocap" / "subjects"
    for subject in ("01", "02", "03"):
        _, asf, amc = list_cmu_sequences(root, subjects=(subject,))[0]
        skel = parse_asf(asf)
        pos, names = forward_kinematics(skel, parse_amc(amc))
        idx = {n: i for i, n in enumerate(names)}
        parents = skel.parents()
        assert pos.shape[0] > 300
        for bone, b in skel.bones.items():
            lengths = np.linalg.norm(pos[:, idx[bone]] - pos[:, idx[parents[bone]]], axis=-1)
            np.testing.assert_allclose(lengths, skel.to_meters(b.length), atol=1e-9, err_msg=f"{amc.name} {bone}")
