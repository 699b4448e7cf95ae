"""Per-frame keypoint container and OpenPose ``--write_json`` files.

A :class:`Person` always stores its body in BODY_25 order; COCO-18 is converted on the way in and out so that
every other module deals with one layout. Arrays are ``(N, 3)`` float32 of pixel x, pixel y, confidence; a missing
keypoint is ``0, 0, 0`` as in OpenPose.

Depth: where the source has one (MediaPipe's relative z, the demo character's drawing order) a person also carries
a depth per keypoint, ``Person.depth[part]`` of shape ``(N,)``, in pixels of the same frame, smaller is nearer the
camera (MediaPipe's sign), relative to the person (0 at the hips' plane). OpenPose JSON has no place for it, so it
is written beside the JSON file, ``depth/<id>_depth.json`` next to ``<id>_keypoints.json`` (:func:`depth_path`):
the JSON files stay exactly what OpenPose tools read (the subfolder keeps the sidecars out of a tool's
``*.json``), and a file without its sidecar loads without depth.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from dancenow_utils.io_utils import atomic_write_text
from dancenow_utils.pose.formats import (
    BODY_25_MIRROR,
    COCO_18_TO_BODY_25,
    FACE_70_MIRROR,
    N_BODY,
    N_COCO,
    N_FACE,
    N_HAND,
    joint,
)

PARTS = ("body", "face", "left_hand", "right_hand")  # a Person's arrays, in order
# the sidecar's key for each part's depth (the OpenPose JSON keys with _depth for _keypoints_2d)
DEPTH_KEYS = {"body": "pose_depth", "face": "face_depth", "left_hand": "hand_left_depth",
              "right_hand": "hand_right_depth"}
DEPTH_FORMAT = 1
DEPTH_FOLDER = "depth"  # the sidecars' subfolder of a keypoint folder
DEPTH_UNITS = "pixels of the frame, smaller is nearer the camera, relative to the person"

# a keypoint with a confidence above this is present: drawn, measured, cropped around (evaluation's stricter
# threshold for comparing poses is dancenow_utils.evaluation.metrics.MIN_CONF)
MIN_CONF = 0.05
MAX_COORD = 1e5  # pixels: a keypoint coordinate beyond this is garbage in the file, not a place in an image


def _empty(n: int) -> np.ndarray:
    return np.zeros((n, 3), np.float32)


@dataclass
class Person:
    """One person's keypoints in a frame (body BODY_25, optional face 70 and hands 21)."""

    body: np.ndarray = field(default_factory=lambda: _empty(N_BODY))
    face: np.ndarray | None = None
    left_hand: np.ndarray | None = None
    right_hand: np.ndarray | None = None
    depth: dict[str, np.ndarray] = field(default_factory=dict)  # part -> (N,) depth, for the parts that have one

    def __post_init__(self) -> None:
        self.body = _as_points(self.body, N_BODY, "body")
        for name, n in (("face", N_FACE), ("left_hand", N_HAND), ("right_hand", N_HAND)):
            if getattr(self, name) is not None:
                setattr(self, name, _as_points(getattr(self, name), n, name))
        self.depth = {part: _as_depth(z, getattr(self, part), part) for part, z in (self.depth or {}).items()
                      if z is not None and getattr(self, part) is not None}

    @property
    def has_depth(self) -> bool:
        """Whether the body has a depth per keypoint (what drawing with depth needs)."""
        return "body" in self.depth

    def part_depth(self, part: str) -> np.ndarray | None:
        """The ``(N,)`` depth of ``part`` (``"body"``, ``"face"``, ``"left_hand"``, ``"right_hand"``), or None."""
        return self.depth.get(part)

    def copy(self) -> Person:
        return Person(*(None if a is None else a.copy() for a in self.arrays()),
                      depth={k: v.copy() for k, v in self.depth.items()})

    def arrays(self) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None, np.ndarray | None]:
        return self.body, self.face, self.left_hand, self.right_hand

    def all_points(self, min_conf: float = MIN_CONF) -> np.ndarray:
        """Every confident keypoint (body, face, hands) as an ``(M, 2)`` array of pixel coordinates."""
        pts = [a[a[:, 2] > min_conf, :2] for a in self.arrays() if a is not None]
        return np.concatenate(pts) if pts else np.zeros((0, 2), np.float32)

    def height(self, min_conf: float = MIN_CONF) -> float:
        """Vertical extent of the confident body keypoints in pixels (0 when fewer than two)."""
        ys = self.body[self.body[:, 2] > min_conf, 1]
        return float(ys.max() - ys.min()) if len(ys) >= 2 else 0.0

    def transformed(self, scale: float | np.ndarray, offset: np.ndarray | tuple[float, float]) -> Person:
        """Return a copy with ``xy * scale + offset`` applied to every present keypoint; depth (in pixels) is
        scaled too (by the mean of an ``(sx, sy)`` scale)."""
        out = self.copy()
        for a in out.arrays():
            if a is not None:
                present = a[:, 2] > 0
                a[present, :2] = a[present, :2] * np.asarray(scale, np.float32) + np.asarray(offset, np.float32)
        z_scale = np.float32(np.mean(np.asarray(scale, np.float32)))
        for z in out.depth.values():
            z *= z_scale
        return out

    def mirrored(self, width: int) -> Person:
        """The person as seen in the image flipped left to right (``width`` pixels wide): each x becomes
        ``width - 1 - x`` and the sides swap names, so the right arm of the mirror image is stored (and drawn in the
        colours of) a right arm: the original's left. Depth is kept, so the arm in front stays in front."""
        order = {"body": BODY_25_MIRROR, "face": FACE_70_MIRROR}

        def flipped(a: np.ndarray | None, part: str) -> np.ndarray | None:
            if a is None:
                return None
            out = a[list(order[part])].copy() if part in order else a.copy()
            present = out[:, 2] > 0
            out[present, 0] = np.float32(width - 1) - out[present, 0]
            return out

        swap = {"body": "body", "face": "face", "left_hand": "right_hand", "right_hand": "left_hand"}
        depth = {swap[part]: (z[list(order[part])] if part in order else z).copy() for part, z in self.depth.items()}
        return Person(flipped(self.body, "body"), flipped(self.face, "face"), flipped(self.right_hand, "right_hand"),
                      flipped(self.left_hand, "left_hand"), depth=depth)

    def ankle_y(self, min_conf: float = MIN_CONF) -> float | None:
        """Mean y of the confident ankles (the floor contact used by pose normalisation)."""
        ankles = self.body[[joint("RAnkle"), joint("LAnkle")]]
        ok = ankles[:, 2] > min_conf
        return float(ankles[ok, 1].mean()) if ok.any() else None


def _as_points(a: np.ndarray | list, n: int, what: str) -> np.ndarray:
    arr = np.asarray(a, np.float32)
    if arr.ndim == 1:
        if arr.size != n * 3:
            raise ValueError(f"{what}: expected {n * 3} numbers ({n} keypoints x 3), got {arr.size}")
        arr = arr.reshape(n, 3)
    if arr.shape != (n, 3):
        raise ValueError(f"{what}: expected shape ({n}, 3), got {arr.shape}")
    return arr.copy()


def _as_depth(z: np.ndarray | list, points: np.ndarray, part: str) -> np.ndarray:
    arr = np.asarray(z, np.float32).reshape(-1)
    if arr.shape != (len(points),):
        raise ValueError(f"{part} depth: expected {len(points)} values (one per keypoint), got {arr.size}")
    arr = np.where(np.isfinite(arr), arr, 0.0).astype(np.float32)
    arr[points[:, 2] <= 0] = 0.0  # a missing keypoint has no depth
    return arr


def coco18_to_body25(coco: np.ndarray) -> np.ndarray:
    """Convert ``(18, 3)`` COCO-18 keypoints to BODY_25; MidHip is the hips' midpoint, feet stay missing."""
    coco = np.asarray(coco, np.float32).reshape(N_COCO, 3)
    body = _empty(N_BODY)
    body[list(COCO_18_TO_BODY_25)] = coco
    rhip, lhip = body[joint("RHip")], body[joint("LHip")]
    if rhip[2] > 0 and lhip[2] > 0:
        body[joint("MidHip")] = [(rhip[0] + lhip[0]) / 2, (rhip[1] + lhip[1]) / 2, min(rhip[2], lhip[2])]
    return body


def body25_to_coco18(body: np.ndarray) -> np.ndarray:
    """Convert ``(25, 3)`` BODY_25 keypoints to COCO-18 (MidHip and the feet are dropped)."""
    return np.asarray(body, np.float32).reshape(N_BODY, 3)[list(COCO_18_TO_BODY_25)].copy()


def people_to_json(people: list[Person], pose_format: str = "BODY_25") -> dict:
    """The OpenPose ``--write_json`` dictionary for one frame."""
    def flat(a: np.ndarray | None) -> list[float]:
        return [] if a is None else [round(float(v), 3) for v in a.reshape(-1)]

    out = []
    for p in people:
        body = p.body if pose_format == "BODY_25" else body25_to_coco18(p.body)
        out.append({
            "person_id": [-1],
            "pose_keypoints_2d": flat(body),
            "face_keypoints_2d": flat(p.face),
            "hand_left_keypoints_2d": flat(p.left_hand),
            "hand_right_keypoints_2d": flat(p.right_hand),
            "pose_keypoints_3d": [], "face_keypoints_3d": [],
            "hand_left_keypoints_3d": [], "hand_right_keypoints_3d": [],
        })
    return {"version": 1.3, "people": out}


def depth_path(path: str | Path) -> Path:
    """The depth sidecar of an OpenPose JSON file ``<folder>/<id>_keypoints.json``: ``<folder>/depth/<id>_depth.json``
    (in a subfolder, so that a tool reading every ``*.json`` of the folder sees OpenPose's files only)."""
    path = Path(path)
    stem = path.name.removesuffix("_keypoints.json") if path.name.endswith("_keypoints.json") else path.stem
    return path.parent / DEPTH_FOLDER / f"{stem}_depth.json"


def people_depth_to_json(people: list[Person]) -> dict:
    """The depth sidecar's dictionary for one frame: per person, each part's depth (an empty list: none)."""
    return {"format": DEPTH_FORMAT, "units": DEPTH_UNITS,
            "people": [{key: [] if p.part_depth(part) is None else [round(float(v), 3) for v in p.part_depth(part)]
                        for part, key in DEPTH_KEYS.items()} for p in people]}


def write_openpose_json(path: str | Path, people: list[Person], pose_format: str = "BODY_25") -> None:
    """Write one frame's people as an OpenPose JSON file (atomically), and their depth, where they have one, as
    its sidecar (:func:`depth_path`; a stale sidecar is removed)."""
    atomic_write_text(path, json.dumps(people_to_json(people, pose_format)))
    sidecar = depth_path(path)
    if any(p.depth for p in people):
        atomic_write_text(sidecar, json.dumps(people_depth_to_json(people)))
    else:
        sidecar.unlink(missing_ok=True)


def attach_depth(people: list[Person], data: dict, source: str = "<depth json>") -> list[Person]:
    """Give ``people`` (one frame's, in file order) the depth of a sidecar dictionary; errors name ``source``."""
    if not isinstance(data, dict) or not isinstance(data.get("people"), list):
        raise ValueError(f"{source}: not a depth sidecar (no 'people' list)")
    if len(data["people"]) != len(people):
        raise ValueError(f"{source}: depth for {len(data['people'])} people, but its keypoint file has "
                         f"{len(people)}; delete the sidecar (the keypoints load without depth) or re-extract")
    for i, (p, d) in enumerate(zip(people, data["people"])):
        for part, key in DEPTH_KEYS.items():
            vals = d.get(key) or []
            if vals and getattr(p, part) is not None:
                try:
                    p.depth[part] = _as_depth(_as_float_array(vals, source, i, key), getattr(p, part), part)
                except ValueError as exc:
                    raise ValueError(f"{source}: person {i} {exc}") from None
    return people


def people_from_json(data: dict, source: str = "<json>") -> list[Person]:
    """Parse an OpenPose JSON dictionary; BODY_25 and COCO-18 bodies are recognised by their length."""
    if not isinstance(data, dict) or not isinstance(data.get("people"), list):
        raise ValueError(f"{source}: not an OpenPose JSON file (no 'people' list)")
    people = []
    for i, d in enumerate(data["people"]):
        if not isinstance(d, dict):
            raise ValueError(f"{source}: person {i} is {type(d).__name__} {d!r:.40}, not an object with "
                             "pose_keypoints_2d; re-export with OpenPose's --write_json")
        pose = _numbers(d, "pose_keypoints_2d", source, i)
        if len(pose) == N_BODY * 3:
            body = _as_float_array(pose, source, i, "pose_keypoints_2d").reshape(N_BODY, 3)
        elif len(pose) == N_COCO * 3:
            coco = _finite_points(_as_float_array(pose, source, i, "pose_keypoints_2d").reshape(N_COCO, 3), source,
                                  i, "pose_keypoints_2d", required=True)
            body = coco18_to_body25(coco)
        else:
            raise ValueError(
                f"{source}: person {i} has {len(pose)} pose numbers; expected {N_BODY * 3} (BODY_25) or "
                f"{N_COCO * 3} (COCO-18). Re-export with OpenPose's --write_json and a BODY_25 or COCO model."
            )

        body = _finite_points(body, source, i, "pose_keypoints_2d", required=True)

        def part(key: str, n: int, d: dict = d, i: int = i) -> np.ndarray | None:
            vals = _numbers(d, key, source, i)
            if not vals:
                return None
            if len(vals) != n * 3:
                raise ValueError(f"{source}: person {i} {key} has {len(vals)} numbers; expected {n * 3}")
            return _finite_points(_as_float_array(vals, source, i, key).reshape(n, 3), source, i, key)

        people.append(Person(body, part("face_keypoints_2d", N_FACE), part("hand_left_keypoints_2d", N_HAND),
                             part("hand_right_keypoints_2d", N_HAND)))
    return people


def _numbers(d: dict, key: str, source: str, i: int) -> list:
    """The flat list of numbers under ``key`` (missing or null: empty); anything else is an error naming it."""
    values = d.get(key)
    if values is None:
        return []
    if not isinstance(values, list):
        raise ValueError(f"{source}: person {i} {key} is {type(values).__name__} {values!r:.40}, not a list of "
                         "x, y, confidence numbers; re-export with OpenPose's --write_json")
    return values


def _as_float_array(values: list, source: str, i: int, key: str) -> np.ndarray:
    if any(isinstance(v, bool) for v in values):
        raise ValueError(f"{source}: person {i} {key} holds true/false values, not numbers")
    try:
        arr = np.asarray(values, np.float64)
    except (TypeError, ValueError):
        raise ValueError(f"{source}: person {i} {key} holds values that are not numbers") from None
    coords = arr.reshape(-1, 3)[:, :2] if arr.size % 3 == 0 else arr
    far = np.isfinite(coords) & (np.abs(coords) > MAX_COORD)
    if far.any():
        raise ValueError(f"{source}: person {i} {key} has a coordinate of {coords[far][0]:g} pixels, far outside "
                         f"any image (beyond {MAX_COORD:g}); re-export this frame, or delete the file to skip it")
    return arr.astype(np.float32)


def _finite_points(points: np.ndarray, source: str, i: int, key: str, required: bool = False) -> np.ndarray:
    """Keypoints with a NaN or infinite value become missing (0, 0, 0); with ``required``, a part whose every
    keypoint is NaN or infinite is an error (it is not a person at the origin)."""
    bad = ~np.isfinite(points).all(axis=1)
    if bad.all() and required:
        raise ValueError(f"{source}: person {i} has no usable keypoint: all {len(points)} {key} keypoints are NaN "
                         "or infinite. Re-export this frame from OpenPose, or delete the file to skip the frame.")
    if bad.any():
        points = points.copy()
        points[bad] = 0
    return points


def _read_json(path: Path, what: str) -> dict:
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise FileNotFoundError(f"{path}: no such {what}") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ValueError(f"{path}: not valid JSON ({exc})") from exc


def read_openpose_json(path: str | Path) -> list[Person]:
    """Read one OpenPose JSON file, with the depth of its sidecar when there is one (:func:`depth_path`); errors
    name the file and what is wrong with it."""
    path = Path(path)
    people = people_from_json(_read_json(path, "keypoint file"), str(path))
    sidecar = depth_path(path)
    if sidecar.exists():
        attach_depth(people, _read_json(sidecar, "depth file"), str(sidecar))
    return people
