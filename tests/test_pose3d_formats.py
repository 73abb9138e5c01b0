"""Human3.6M (VideoPose3D npz) and 3DPW (sequence pickle) readers, on small files written here in
those exact layouts."""

from __future__ import annotations

import pickle

import numpy as np
import pytest

from pyramidpose.data.pose3d_formats import (
    H36M32_TO_17,
    load_3dpw_sequence,
    load_h36m_2d,
    load_h36m_3d,
    save_h36m_2d,
    save_h36m_3d,
)
from pyramidpose.errors import DataError


def _h36m_3d(rng):
    return {
        "S1": {"Walking": rng.normal(size=(5, 32, 3)).astype(np.float32),
               "Eating 2": rng.normal(size=(3, 32, 3)).astype(np.float32)},
        "S9": {"Sitting": rng.normal(size=(4, 32, 3)).astype(np.float32)},
    }  # fmt: skip


def test_h36m_3d_videopose3d_layout(tmp_path):
    rng = np.random.default_rng(0)
    data = _h36m_3d(rng)
    path = tmp_path / "data_3d_h36m.npz"
    # exactly what VideoPose3D's prepare_data_h36m.py writes
    np.savez_compressed(path, positions_3d=data)
    out = load_h36m_3d(path)
    assert sorted(out) == ["S1", "S9"] and sorted(out["S1"]) == ["Eating 2", "Walking"]
    assert out["S1"]["Walking"].shape == (5, 17, 3)
    np.testing.assert_array_equal(out["S9"]["Sitting"], data["S9"]["Sitting"][:, list(H36M32_TO_17)])
    assert load_h36m_3d(path, keep_all_joints=True)["S1"]["Walking"].shape == (5, 32, 3)
    # our writer produces a file the reader (and VideoPose3D) reads back identically
    save_h36m_3d(tmp_path / "copy.npz", data)
    np.testing.assert_array_equal(load_h36m_3d(tmp_path / "copy.npz")["S1"]["Eating 2"], out["S1"]["Eating 2"])


def test_h36m_2d_videopose3d_layout(tmp_path):
    rng = np.random.default_rng(1)
    pos = {"S1": {"Walking": [rng.uniform(0, 1000, (6, 17, 2)).astype(np.float32) for _ in range(4)]}}
    meta = {"layout_name": "h36m", "num_joints": 17,
            "keypoints_symmetry": [[4, 5, 6, 11, 12, 13], [1, 2, 3, 14, 15, 16]]}  # fmt: skip
    path = tmp_path / "data_2d_h36m_cpn_ft_h36m_dbb.npz"
    np.savez_compressed(path, positions_2d=pos, metadata=meta)
    out, m = load_h36m_2d(path)
    assert m["num_joints"] == 17 and m["layout_name"] == "h36m"
    assert len(out["S1"]["Walking"]) == 4
    np.testing.assert_array_equal(out["S1"]["Walking"][2], pos["S1"]["Walking"][2])
    save_h36m_2d(tmp_path / "w.npz", pos)
    out2, m2 = load_h36m_2d(tmp_path / "w.npz")
    np.testing.assert_array_equal(out2["S1"]["Walking"][3], pos["S1"]["Walking"][3])
    assert m2["keypoints_symmetry"] == meta["keypoints_symmetry"]


def test_h36m_bad_files(tmp_path):
    with pytest.raises(DataError, match="not found"):
        load_h36m_3d(tmp_path / "nope.npz")
    wrong = tmp_path / "wrong.npz"
    np.savez_compressed(wrong, something=np.zeros(3))
    with pytest.raises(DataError, match="positions_3d"):
        load_h36m_3d(wrong)
    bad_shape = tmp_path / "bad_shape.npz"
    np.savez_compressed(bad_shape, positions_3d={"S1": {"A": np.zeros((4, 20, 3))}})
    with pytest.raises(DataError, match="20 joints"):
        load_h36m_3d(bad_shape)
    text = tmp_path / "text.npz"
    text.write_text("hello")
    with pytest.raises(DataError, match="not a readable"):
        load_h36m_3d(text)


def _3dpw_dict(rng, n=7, actors=2):
    return {
        "sequence": "courtyard_test_00",
        "genders": ["m", "f"][:actors],
        "betas": [rng.normal(size=10) for _ in range(actors)],
        "poses": [rng.normal(size=(n, 72)) for _ in range(actors)],
        "trans": [rng.normal(size=(n, 3)) for _ in range(actors)],
        "jointPositions": [rng.normal(size=(n, 72)) for _ in range(actors)],
        "poses2d": [rng.uniform(0, 1080, size=(n, 3, 18)) for _ in range(actors)],
        "img_frame_ids": np.arange(n),
        "cam_poses": np.stack([np.eye(4)] * n) + np.concatenate(
            [np.zeros((n, 3, 4)), np.zeros((n, 1, 4))], 1),
        "cam_intrinsics": np.array([[1961.0, 0, 540], [0, 1969.0, 960], [0, 0, 1]]),
        "campose_valid": [np.ones(n, dtype=bool) for _ in range(actors)],
    }


def test_3dpw_sequence_pickle(tmp_path):
    rng = np.random.default_rng(2)
    d = _3dpw_dict(rng)
    d["cam_poses"][:, :3, 3] = [0.1, -0.2, 3.0]  # camera translation
    path = tmp_path / "courtyard_test_00.pkl"
    with open(path, "wb") as f:
        pickle.dump(d, f, protocol=2)  # 3DPW files are Python 2 pickles (protocol 2)
    seq = load_3dpw_sequence(path)
    assert seq.name == "courtyard_test_00" and seq.genders == ["m", "f"]
    assert len(seq.joints3d) == 2 and seq.joints3d[0].shape == (7, 24, 3)
    np.testing.assert_array_equal(seq.joints3d[1], d["jointPositions"][1].reshape(7, 24, 3))
    assert seq.poses2d[0].shape == (7, 18, 3)
    np.testing.assert_array_equal(seq.poses2d[0][:, 5], d["poses2d"][0][:, :, 5])
    cam = seq.joints3d_camera(0)
    np.testing.assert_allclose(cam, seq.joints3d[0] + np.array([0.1, -0.2, 3.0]))
    coco = seq.coco17_2d(1)
    assert coco.shape == (7, 17, 3)
    np.testing.assert_array_equal(coco[:, 5], seq.poses2d[1][:, 5])  # left shoulder
    np.testing.assert_array_equal(coco[:, 6], seq.poses2d[1][:, 2])  # right shoulder
    np.testing.assert_array_equal(coco[:, 0], seq.poses2d[1][:, 0])  # nose


def test_3dpw_rejects_code_and_bad_files(tmp_path):
    class Evil:
        def __reduce__(self):
            return (print, ("pwned",))

    evil = tmp_path / "evil.pkl"
    evil.write_bytes(pickle.dumps({"x": Evil()}, protocol=2))
    with pytest.raises(DataError, match="refusing"):
        load_3dpw_sequence(evil)
    d = _3dpw_dict(np.random.default_rng(3))
    del d["cam_poses"]
    partial = tmp_path / "partial.pkl"
    partial.write_bytes(pickle.dumps(d, protocol=2))
    with pytest.raises(DataError, match="cam_poses"):
        load_3dpw_sequence(partial)


class _RunsCode:
    """An object whose unpickling would create a marker file (stands in for os.system)."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


@pytest.mark.parametrize("loader", [load_h36m_3d, load_h36m_2d])
def test_h36m_npz_object_array_cannot_run_code(tmp_path, loader):
    marker = tmp_path / "pwned"
    payload = {"S1": {"Walking": _RunsCode(marker)}}
    path = tmp_path / "evil.npz"
    np.savez(path, positions_3d=np.array(payload, dtype=object), positions_2d=np.array(payload, dtype=object),
             metadata=np.array({"num_joints": 17}, dtype=object))  # fmt: skip
    with pytest.raises(DataError, match=r"evil\.npz\[positions_.d\].*refusing to load io\.open"):
        loader(path)
    assert not marker.exists()


def test_h36m_npz_lying_header_and_zip_bomb_are_refused(tmp_path):
    import zipfile

    path = tmp_path / "lie.npz"
    with zipfile.ZipFile(path, "w") as zf, zf.open("positions_3d.npy", "w") as f:
        np.lib.format.write_array_header_1_0(f, {"descr": "<f8", "fortran_order": False, "shape": (10**9, 32, 3)})
        f.write(b"\0" * 100)
    with pytest.raises(DataError, match=r"lie\.npz\[positions_3d\]: the header declares"):
        load_h36m_3d(path)
    bomb = tmp_path / "bomb.npz"
    with zipfile.ZipFile(bomb, "w", compression=zipfile.ZIP_BZIP2) as zf:
        zf.writestr("positions_3d.npy", b"\0" * 1000)
    with pytest.raises(DataError, match="compression method"):
        load_h36m_3d(bomb)
