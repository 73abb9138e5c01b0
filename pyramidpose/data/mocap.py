"""CMU motion capture (ASF skeleton + AMC motion) -> 3D joint positions in meters.

ASF describes a skeleton (bone directions, lengths, local axes, degrees of freedom and the
hierarchy); AMC gives, per frame, the root translation/rotation and each bone's joint angles.
:func:`forward_kinematics` turns both into 3D positions of the root and of every bone's end point.

World frame (used by every function here): the CMU capture frame, converted to **meters**,
**Y up**. In the skeleton's rest pose (all angles zero) the subject faces **+Z** and its left side
is **+X** (right-handed). Lengths are converted with the ASF ``:units length`` value ``L`` as
``meters = value / L * 0.0254`` (CMU documents that ASF/AMC lengths divided by ``L = 0.45`` are
inches). Frame rate of CMU AMC files: 120 fps.

Rotation conventions (ASF/AMC specification): a bone's ``axis ax ay az XYZ`` gives its local
frame ``C = Rz(az) Ry(ay) Rx(ax)`` (column vectors, the first letter of the order applied first);
the AMC angles for its ``dof`` compose ``M`` in dof order (``dof rx ry rz`` -> ``M = Rz Ry Rx``).
The bone's global rotation is ``G = G_parent C M C^T`` and its end point is
``p_end = p_parent_end + G (length * direction)``, ``direction`` being in the global rest frame.

Example::

    skel = parse_asf("01.asf"); motion = parse_amc("01_01.amc")
    pos, names = forward_kinematics(skel, motion)       # [F, J, 3] meters, J = 1 + bones + face
    h36m = to_h36m17(pos, names)                         # [F, 17, 3] in skeletons.H36M order
    seq = load_cmu_sequence("01.asf", "01_01.amc", fps=30)  # same, resampled to 30 fps
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from pyramidpose.errors import DataError
from pyramidpose.skeletons import COCO, H36M

__all__ = [
    "CMU_FPS",
    "AsfBone",
    "AsfSkeleton",
    "AmcMotion",
    "parse_asf",
    "parse_amc",
    "forward_kinematics",
    "to_h36m17",
    "to_coco17",
    "resample",
    "load_cmu_sequence",
    "list_cmu_sequences",
    "FACE_POINTS",
]

CMU_FPS = 120.0
INCH = 0.0254

# Approximate face points in the head bone's local frame (meters), relative to the middle of the
# head bone (between the base of the skull and the top of the head). CMU markers carry no face
# landmarks, so COCO's nose/eyes/ears are synthesised rigidly with the head: forward is +Z, left
# is +X, up is +Y in the rest pose. Values are typical adult head proportions (documented guess).
FACE_POINTS: dict[str, tuple[float, float, float]] = {
    "face_nose": (0.0, -0.01, 0.10),
    "face_left_eye": (0.032, 0.025, 0.085),
    "face_right_eye": (-0.032, 0.025, 0.085),
    "face_left_ear": (0.075, 0.0, 0.0),
    "face_right_ear": (-0.075, 0.0, 0.0),
}


@dataclass
class AsfBone:
    """One ASF bone: unit ``direction`` (global rest frame), ``length`` (ASF units),
    ``axis`` angles in degrees with their ``axis_order``, and the AMC ``dofs`` (e.g. rx ry rz)."""

    name: str
    direction: np.ndarray
    length: float
    axis: np.ndarray
    axis_order: str = "XYZ"
    dofs: tuple[str, ...] = ()


@dataclass
class AsfSkeleton:
    """A parsed ASF file.

    ``length_unit`` is the ``:units length`` value (0.45 for CMU); ``angle_unit`` is ``deg`` or
    ``rad``. ``root_order`` lists the root's AMC channels; ``children`` maps a bone (or ``root``)
    to its children in file order; ``bones`` keeps file order.
    """

    path: str
    length_unit: float
    angle_unit: str
    root_order: tuple[str, ...]
    root_axis: str
    root_position: np.ndarray
    root_orientation: np.ndarray
    bones: dict[str, AsfBone]
    children: dict[str, list[str]] = field(default_factory=dict)

    def parents(self) -> dict[str, str]:
        """Map bone name -> parent name (``root`` for the top-level bones)."""
        return {c: p for p, cs in self.children.items() for c in cs}

    def topological_order(self) -> list[str]:
        """Bone names ordered parents before children (depth first, file order)."""
        out: list[str] = []
        stack = list(reversed(self.children.get("root", [])))
        while stack:
            b = stack.pop()
            out.append(b)
            stack.extend(reversed(self.children.get(b, [])))
        return out

    def to_meters(self, value: np.ndarray | float) -> np.ndarray | float:
        """Convert ASF/AMC lengths to meters (``value / length_unit * 0.0254``)."""
        return value / self.length_unit * INCH


@dataclass
class AmcMotion:
    """A parsed AMC file: ``channels[name]`` is a float64 array ``[F, n_channels]`` of the values
    given for that segment (``root`` included), in file channel order; ``frame_ids`` the frame
    numbers written in the file."""

    path: str
    frame_ids: np.ndarray
    channels: dict[str, np.ndarray]
    angle_unit: str = "deg"

    @property
    def num_frames(self) -> int:
        return int(len(self.frame_ids))


def _err(path: str | os.PathLike[str], line: int | None, msg: str) -> DataError:
    where = f"{path}:{line}" if line is not None else str(path)
    return DataError(f"{where}: {msg}")


def _floats(tokens: list[str], path: str | os.PathLike[str], lineno: int, what: str) -> list[float]:
    try:
        return [float(t) for t in tokens]
    except ValueError:
        raise _err(path, lineno, f"expected numbers for {what}, got {' '.join(tokens)!r}") from None


def _read_lines(path: str | os.PathLike[str]) -> list[str]:
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            return f.read().splitlines()
    except OSError as e:
        raise DataError(f"{path}: cannot read motion capture file ({e.strerror or e}).") from None


def parse_asf(path: str | os.PathLike[str]) -> AsfSkeleton:
    """Parse an ASF skeleton file. Raises :class:`DataError` naming file and line on bad input."""
    lines = _read_lines(path)
    length_unit, angle_unit = 1.0, "deg"
    root_order: tuple[str, ...] = ("TX", "TY", "TZ", "RX", "RY", "RZ")
    root_axis = "XYZ"
    root_pos = np.zeros(3)
    root_ori = np.zeros(3)
    bones: dict[str, AsfBone] = {}
    children: dict[str, list[str]] = {}
    section = ""
    cur: dict | None = None
    cur_line = 0
    in_limits = False
    for i, raw in enumerate(lines, start=1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        if line.startswith(":"):
            parts = line.split()
            section = parts[0][1:].lower()
            in_limits = False
            continue
        toks = line.split()
        key = toks[0].lower()
        if section == "units":
            if key == "length":
                (length_unit,) = _floats(toks[1:2], path, i, "units length")
                if length_unit <= 0:
                    raise _err(path, i, f"units length must be positive, got {length_unit}")
            elif key == "angle":
                angle_unit = toks[1].lower() if len(toks) > 1 else "deg"
                if angle_unit not in ("deg", "rad"):
                    raise _err(path, i, f"unknown angle unit {angle_unit!r} (expected deg or rad)")
        elif section == "root":
            if key == "order":
                root_order = tuple(t.upper() for t in toks[1:])
                bad = [t for t in root_order if t not in ("TX", "TY", "TZ", "RX", "RY", "RZ")]
                if bad:
                    raise _err(path, i, f"unknown root channel(s) {bad}")
            elif key == "axis":
                root_axis = toks[1].upper() if len(toks) > 1 else "XYZ"
                if sorted(root_axis) != ["X", "Y", "Z"]:
                    raise _err(path, i, f"root axis order '{root_axis}' is not a permutation of XYZ")
            elif key == "position":
                root_pos = np.array(_floats(toks[1:4], path, i, "root position"))
            elif key == "orientation":
                root_ori = np.array(_floats(toks[1:4], path, i, "root orientation"))
        elif section == "bonedata":
            if key == "begin":
                if cur is not None:
                    raise _err(path, i, "'begin' inside a bone that was not closed with 'end'")
                cur, cur_line, in_limits = {}, i, False
            elif key == "end":
                if cur is None:
                    raise _err(path, i, "'end' without a matching 'begin'")
                for need in ("name", "direction", "length"):
                    if need not in cur:
                        raise _err(path, cur_line, f"bone defined here has no '{need}'")
                d = np.asarray(cur["direction"], dtype=np.float64)
                n = float(np.linalg.norm(d))
                d = d / n if n > 0 else d
                bones[cur["name"]] = AsfBone(
                    name=cur["name"],
                    direction=d,
                    length=float(cur["length"]),
                    axis=np.asarray(cur.get("axis", (0.0, 0.0, 0.0)), dtype=np.float64),
                    axis_order=cur.get("axis_order", "XYZ"),
                    dofs=tuple(cur.get("dof", ())),
                )
                cur = None
            elif cur is None:
                raise _err(path, i, f"unexpected {toks[0]!r} outside a begin/end bone block")
            elif key == "name":
                cur["name"] = toks[1] if len(toks) > 1 else ""
            elif key == "direction":
                cur["direction"] = _floats(toks[1:4], path, i, "direction")
                if len(cur["direction"]) != 3:
                    raise _err(path, i, "direction needs 3 numbers")
            elif key == "length":
                cur["length"] = _floats(toks[1:2], path, i, "length")[0]
            elif key == "axis":
                vals = _floats(toks[1:4], path, i, "axis")
                if len(vals) != 3:
                    raise _err(path, i, "axis needs 3 angles and an order")
                cur["axis"] = vals
                cur["axis_order"] = toks[4].upper() if len(toks) > 4 else "XYZ"
                if sorted(cur["axis_order"]) != ["X", "Y", "Z"]:
                    raise _err(path, i, f"axis order '{cur['axis_order']}' is not a permutation of XYZ")
            elif key == "dof":
                dofs = [t.lower() for t in toks[1:]]
                bad = [t for t in dofs if t not in ("rx", "ry", "rz", "tx", "ty", "tz", "l")]
                if bad:
                    raise _err(path, i, f"unknown dof(s) {bad}")
                cur["dof"] = dofs
                in_limits = False
            elif key == "limits" or in_limits or key.startswith("("):
                in_limits = True  # joint limits are not needed for forward kinematics
            elif key in ("id", "bodymass", "cofmass"):
                pass
            else:
                raise _err(path, i, f"unknown bone field {toks[0]!r}")
        elif section == "hierarchy":
            if key in ("begin", "end"):
                continue
            parent = toks[0]
            if parent != "root" and parent not in bones:
                raise _err(path, i, f"hierarchy names unknown bone {parent!r}")
            for c in toks[1:]:
                if c not in bones:
                    raise _err(path, i, f"hierarchy names unknown bone {c!r}")
                children.setdefault(parent, []).append(c)
    if cur is not None:
        raise _err(path, cur_line, "bone block is never closed with 'end'")
    if not bones:
        raise _err(path, None, "no :bonedata bones found; is this an ASF skeleton file?")
    if "root" not in children:
        raise _err(path, None, "no :hierarchy section linking bones to the root")
    skel = AsfSkeleton(
        path=str(path),
        length_unit=length_unit,
        angle_unit=angle_unit,
        root_order=root_order,
        root_axis=root_axis,
        root_position=root_pos,
        root_orientation=root_ori,
        bones=bones,
        children=children,
    )
    reached = set(skel.topological_order())
    if len(reached) != len(skel.topological_order()):
        raise _err(path, None, "hierarchy has a cycle or a bone with two parents")
    return skel


def parse_amc(path: str | os.PathLike[str]) -> AmcMotion:
    """Parse an AMC motion file (``:FULLY-SPECIFIED``, one block per frame).

    Raises :class:`DataError` naming file and line for a segment line outside a frame, non-numeric
    values, or a segment whose number of values changes between frames.
    """
    lines = _read_lines(path)
    angle_unit = "deg"
    frame_ids: list[int] = []
    data: dict[str, list[list[float]]] = {}
    widths: dict[str, int] = {}
    seen_in_frame: set[str] = set()
    for i, raw in enumerate(lines, start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith(":"):
            if line.upper().startswith(":RADIANS"):
                angle_unit = "rad"
            continue
        toks = line.split()
        if len(toks) == 1 and toks[0].isdigit():
            frame_ids.append(int(toks[0]))
            seen_in_frame = set()
            continue
        if not frame_ids:
            raise _err(path, i, f"segment line {toks[0]!r} before the first frame number")
        name = toks[0]
        try:
            vals = [float(t) for t in toks[1:]]
        except ValueError:
            raise _err(path, i, f"non-numeric value in {line!r}") from None
        if name in seen_in_frame:
            raise _err(path, i, f"segment {name!r} appears twice in frame {frame_ids[-1]}")
        seen_in_frame.add(name)
        rows = data.get(name)
        if rows is None:
            widths[name] = len(vals)
            # segments first seen late are zero-filled for the earlier frames
            rows = data[name] = [[0.0] * len(vals) for _ in range(len(frame_ids) - 1)]
        elif len(vals) != widths[name]:
            raise _err(path, i, f"segment {name!r} has {len(vals)} values here but {widths[name]} before")
        while len(rows) < len(frame_ids) - 1:  # segment missing in some frames: hold zeros
            rows.append([0.0] * widths[name])
        rows.append(vals)
    if not frame_ids:
        raise _err(path, None, "no frames found; is this an AMC motion file?")
    F = len(frame_ids)
    channels = {}
    for name, rows in data.items():
        while len(rows) < F:
            rows.append([0.0] * widths[name])
        channels[name] = np.asarray(rows, dtype=np.float64).reshape(F, widths[name])
    if "root" not in channels:
        raise _err(path, None, "no 'root' segment in any frame")
    return AmcMotion(
        path=str(path), frame_ids=np.asarray(frame_ids, dtype=np.int64), channels=channels, angle_unit=angle_unit
    )


def _axis_rot(axis: str, angle: np.ndarray) -> np.ndarray:
    """Rotation matrices [..., 3, 3] about a coordinate axis by ``angle`` radians."""
    c, s = np.cos(angle), np.sin(angle)
    o, z = np.ones_like(angle), np.zeros_like(angle)
    if axis == "x":
        m = [o, z, z, z, c, -s, z, s, c]
    elif axis == "y":
        m = [c, z, s, z, o, z, -s, z, c]
    else:
        m = [c, -s, z, s, c, z, z, z, o]
    return np.stack(m, axis=-1).reshape(*np.shape(angle), 3, 3)


def _euler(angles: np.ndarray, order: str) -> np.ndarray:
    """Compose rotations applied in ``order`` (first letter first): e.g. XYZ -> Rz @ Ry @ Rx."""
    angles = np.asarray(angles, dtype=np.float64)
    R = np.broadcast_to(np.eye(3), (*angles.shape[:-1], 3, 3)).copy()
    for k, ax in enumerate(order.lower()):
        R = _axis_rot(ax, angles[..., k]) @ R
    return R


def forward_kinematics(
    skel: AsfSkeleton, motion: AmcMotion, *, face_points: bool = True
) -> tuple[np.ndarray, list[str]]:
    """3D positions of the root and every bone's end point, per frame, in meters (Y up).

    Returns ``(positions [F, J, 3] float64, joint_names)`` where ``joint_names`` is ``["root"]``
    followed by the ASF bones (parents before children) and, if ``face_points``, the synthesised
    :data:`FACE_POINTS` moving rigidly with the ``head`` bone (only if the skeleton has one).
    """
    to_rad = math.pi / 180.0 if skel.angle_unit == "deg" else 1.0
    amc_rad = math.pi / 180.0 if motion.angle_unit == "deg" else 1.0
    F = motion.num_frames
    unknown = sorted(set(motion.channels) - set(skel.bones) - {"root"})
    if unknown:
        raise DataError(
            f"{motion.path}: segments {unknown} are not bones of skeleton {skel.path}; "
            "is the AMC from a different subject?"
        )
    root = motion.channels["root"]
    if root.shape[1] != len(skel.root_order):
        raise DataError(
            f"{motion.path}: root has {root.shape[1]} values per frame but {skel.path} declares "
            f"order {' '.join(skel.root_order)}"
        )
    trans = np.tile(skel.root_position, (F, 1))
    rot_angles = np.zeros((F, 3))
    rot_seq = []
    for k, ch in enumerate(skel.root_order):
        if ch.startswith("T"):
            trans[:, "XYZ".index(ch[1])] += root[:, k]
        else:
            rot_seq.append(ch[1])
            rot_angles[:, len(rot_seq) - 1] = root[:, k] * amc_rad
    C_root = _euler(skel.root_orientation * to_rad, skel.root_axis)
    M_root = _euler(rot_angles[:, : len(rot_seq)], "".join(rot_seq)) if rot_seq else np.eye(3)[None]
    glob_rot: dict[str, np.ndarray] = {"root": C_root @ M_root @ C_root.T}
    glob_pos: dict[str, np.ndarray] = {"root": trans}
    names = ["root"]
    for b in skel.topological_order():
        bone = skel.bones[b]
        parent = next(p for p, cs in skel.children.items() if b in cs)
        C = _euler(bone.axis * to_rad, bone.axis_order)
        vals = motion.channels.get(b)
        if vals is not None and vals.shape[1] != len(bone.dofs):
            raise DataError(
                f"{motion.path}: bone {b!r} has {vals.shape[1]} values per frame but {skel.path} "
                f"declares dof {' '.join(bone.dofs) or '(none)'}"
            )
        rot_axes = [d[1] for d in bone.dofs if d.startswith("r")]
        length = np.full(F, bone.length)
        offset = np.zeros((F, 3))
        ang = np.zeros((F, len(rot_axes)))
        j = 0
        for k, d in enumerate(bone.dofs):
            v = vals[:, k] if vals is not None else np.zeros(F)
            if d.startswith("r"):
                ang[:, j] = v * amc_rad
                j += 1
            elif d == "l":
                length = length + v
            else:
                offset[:, "xyz".index(d[1])] += v
        M = _euler(ang, "".join(rot_axes)) if rot_axes else np.eye(3)[None]
        R = glob_rot[parent] @ (C @ M @ C.T)
        vec = bone.direction[None, :] * length[:, None] + offset
        glob_rot[b] = R
        glob_pos[b] = glob_pos[parent] + np.einsum("fij,fj->fi", np.broadcast_to(R, (F, 3, 3)), vec)
        names.append(b)
    pos = np.stack([glob_pos[n] for n in names], axis=1)
    if face_points and "head" in skel.bones and "upperneck" in glob_pos:
        # the head bone's rest frame is the global rest frame, so its rotation moves the offsets
        mid = 0.5 * (glob_pos["upperneck"] + glob_pos["head"])
        R = np.broadcast_to(glob_rot["head"], (F, 3, 3))
        extra = []
        for n, off in FACE_POINTS.items():
            off_units = np.asarray(off) / INCH * skel.length_unit
            extra.append(mid + np.einsum("fij,j->fi", R, off_units))
            names.append(n)
        pos = np.concatenate([pos, np.stack(extra, axis=1)], axis=1)
    return skel.to_meters(pos), names


# H36M-17 joints from CMU joint names (each entry averages the listed joints' positions).
_H36M_FROM_CMU: dict[str, tuple[str, ...]] = {
    "pelvis": ("root",),
    "right_hip": ("rhipjoint",),
    "right_knee": ("rfemur",),
    "right_ankle": ("rtibia",),
    "left_hip": ("lhipjoint",),
    "left_knee": ("lfemur",),
    "left_ankle": ("ltibia",),
    "spine": ("upperback",),
    "thorax": ("thorax",),
    "neck": ("upperneck",),
    "head": ("head",),
    "left_shoulder": ("lclavicle",),
    "left_elbow": ("lhumerus",),
    "left_wrist": ("lradius",),
    "right_shoulder": ("rclavicle",),
    "right_elbow": ("rhumerus",),
    "right_wrist": ("rradius",),
}

_COCO_FROM_CMU: dict[str, tuple[str, ...]] = {
    "nose": ("face_nose",),
    "left_eye": ("face_left_eye",),
    "right_eye": ("face_right_eye",),
    "left_ear": ("face_left_ear",),
    "right_ear": ("face_right_ear",),
    "left_shoulder": ("lclavicle",),
    "right_shoulder": ("rclavicle",),
    "left_elbow": ("lhumerus",),
    "right_elbow": ("rhumerus",),
    "left_wrist": ("lradius",),
    "right_wrist": ("rradius",),
    "left_hip": ("lhipjoint",),
    "right_hip": ("rhipjoint",),
    "left_knee": ("lfemur",),
    "right_knee": ("rfemur",),
    "left_ankle": ("ltibia",),
    "right_ankle": ("rtibia",),
}


def _select(positions: np.ndarray, joint_names: list[str], table: dict, order: tuple[str, ...]) -> np.ndarray:
    positions = np.asarray(positions)
    if positions.ndim != 3 or positions.shape[1] != len(joint_names) or positions.shape[2] != 3:
        raise DataError(
            f"positions of shape {positions.shape} do not match {len(joint_names)} joint names (need [F, J, 3])"
        )
    idx = {n: i for i, n in enumerate(joint_names)}
    out = []
    for name in order:
        srcs = table[name]
        missing = [s for s in srcs if s not in idx]
        if missing:
            raise DataError(f"cannot build joint '{name}': CMU joint(s) {missing} not in the skeleton")
        out.append(positions[:, [idx[s] for s in srcs]].mean(axis=1))
    return np.stack(out, axis=1)


def to_h36m17(positions: np.ndarray, joint_names: list[str]) -> np.ndarray:
    """Map CMU FK output ``[F, J, 3]`` to ``[F, 17, 3]`` in :data:`pyramidpose.skeletons.H36M` order.

    pelvis = root, hips = end of l/rhipjoint, knees = end of femur, ankles = end of tibia,
    spine = end of upperback, thorax = end of thorax (neck base), neck = end of upperneck
    (base of skull), head = end of head (top), shoulders = end of clavicle, elbows = end of
    humerus, wrists = end of radius.
    """
    return _select(positions, joint_names, _H36M_FROM_CMU, H36M.keypoints)


def to_coco17(positions: np.ndarray, joint_names: list[str]) -> np.ndarray:
    """Map CMU FK output to ``[F, 17, 3]`` in :data:`pyramidpose.skeletons.COCO` order.

    Body joints as in :func:`to_h36m17`. Nose, eyes and ears are APPROXIMATE: CMU has no face
    markers, so they are the :data:`FACE_POINTS` offsets carried rigidly by the head bone
    (requires ``forward_kinematics(..., face_points=True)``, the default).
    """
    return _select(positions, joint_names, _COCO_FROM_CMU, COCO.keypoints)


def resample(x: np.ndarray, src_fps: float, dst_fps: float) -> np.ndarray:
    """Resample a sequence ``[F, ...]`` from ``src_fps`` to ``dst_fps`` by linear interpolation.

    Output frame ``k`` is at time ``k / dst_fps``; frames run while that time is within the input
    (``(F - 1) / src_fps``), so ``F' = floor((F - 1) * dst_fps / src_fps) + 1``.
    """
    x = np.asarray(x)
    if src_fps <= 0 or dst_fps <= 0:
        raise ValueError(f"frame rates must be positive, got {src_fps} -> {dst_fps}")
    F = x.shape[0]
    if F == 0:
        return x.copy()
    n_out = int(math.floor((F - 1) * dst_fps / src_fps + 1e-9)) + 1
    t = np.arange(n_out) * (src_fps / dst_fps)
    i0 = np.clip(np.floor(t).astype(np.int64), 0, F - 1)
    i1 = np.clip(i0 + 1, 0, F - 1)
    w = (t - i0).reshape(-1, *([1] * (x.ndim - 1)))
    return (1.0 - w) * x[i0] + w * x[i1]


_ASF_CACHE: dict[tuple[str, float], AsfSkeleton] = {}


def _cached_asf(path: str | os.PathLike[str]) -> AsfSkeleton:
    p = str(Path(path).resolve())
    try:
        key = (p, os.path.getmtime(p))
    except OSError:
        raise DataError(f"{path}: ASF skeleton file not found.") from None
    if key not in _ASF_CACHE:
        _ASF_CACHE[key] = parse_asf(p)
    return _ASF_CACHE[key]


def load_cmu_sequence(
    asf_path: str | os.PathLike[str],
    amc_path: str | os.PathLike[str],
    *,
    fps: float | None = None,
    layout: str = "h36m",
) -> np.ndarray:
    """Load one CMU sequence as 3D joints in meters (Y-up CMU world frame, see module doc).

    ``layout``: ``"h36m"`` or ``"coco"`` -> ``[F, 17, 3]``; ``"cmu"`` -> all FK joints
    ``[F, J, 3]`` (names from :func:`forward_kinematics`). ``fps``: resample from 120 fps to
    this rate (``None`` keeps 120).
    """
    skel = _cached_asf(asf_path)
    motion = parse_amc(amc_path)
    pos, names = forward_kinematics(skel, motion)
    if layout == "h36m":
        out = to_h36m17(pos, names)
    elif layout == "coco":
        out = to_coco17(pos, names)
    elif layout == "cmu":
        out = pos
    else:
        raise ValueError(f"unknown layout {layout!r}; use 'h36m', 'coco' or 'cmu'")
    if fps is not None and fps != CMU_FPS:
        out = resample(out, CMU_FPS, fps)
    return out


def list_cmu_sequences(
    root: str | os.PathLike[str], subjects: tuple[str, ...] | list[str] = ("01", "02")
) -> list[tuple[str, Path, Path]]:
    """List ``(subject, asf_path, amc_path)`` for the given subjects, sorted by file name.

    ``root`` may be the ``subjects`` directory or its parent (``.../cmu-mocap``). Each subject
    directory holds ``<subject>.asf`` (or exactly one ``.asf``) and its ``.amc`` files.
    """
    root = Path(root)
    if not root.is_dir():
        raise DataError(f"{root}: CMU mocap directory not found.")
    if (root / "subjects").is_dir():
        root = root / "subjects"
    out: list[tuple[str, Path, Path]] = []
    for s in subjects:
        d = root / str(s)
        if not d.is_dir():
            raise DataError(f"{d}: CMU subject directory not found (have: {sorted(p.name for p in root.iterdir())}).")
        asf = d / f"{s}.asf"
        if not asf.is_file():
            asfs = sorted(d.glob("*.asf"))
            if len(asfs) != 1:
                raise DataError(f"{d}: expected one .asf skeleton file, found {len(asfs)}.")
            asf = asfs[0]
        for amc in sorted(d.glob("*.amc")):
            out.append((str(s), asf, amc))
    return out
