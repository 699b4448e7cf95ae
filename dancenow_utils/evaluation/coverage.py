"""Pose coverage: which source frames ask the target for poses it never showed in training.

A generator only draws well what it has seen. For every query frame (a source video's poses normalised onto the
target, or a held-out clip) we find the nearest training pose and report how far it is, overall and per body part
(torso, head, each arm, each leg), so a user sees *before* generating which frames will likely fail and why.

**Distance.** Both pose sets are mapped into the pixels of the images the generator sees (each folder's
``crop.json``, at the training images' size). For one query pose and one training pose, each body joint (BODY_25
joints 0-18, the feet excluded as in the evaluation) confident in both costs its Euclidean distance; a joint
confident in only one of them costs :data:`MISSING_COST`; a joint missing in both is ignored. The pose distance
is the mean cost over the counted joints; the nearest training pose is the one with the smallest distance, and
the per-part distances are the same mean over each part's joints against that nearest pose.

**Unit.** Distances are divided by the target's body height: the median head-to-feet height
(:func:`dancenow_utils.pose.normalize.body_height`) of the training poses, in the same pixels. ``0.05`` means
"5 % of the target's height away" whatever the video's resolution or crop, so a threshold carries over from one
resolution or target to another.

**Threshold.** :data:`DEFAULT_THRESHOLD` (0.04) is where measured quality on the demo drops: the distance split
with the largest body-SSIM gap between the frames above and below it (``bench/coverage_forensics.py``; the numbers
in bench/RESULTS.md, "Pose coverage and the forensic detector"). Flags use the mean over joints, which predicts
quality better than the largest part's distance; the per-part distances say which limb is off.

**Which arm is in front.** Where both pose sets carry a depth (:mod:`dancenow_utils.pose.keypoints`), a query
frame whose arms cross or whose hands overlap is also checked against its nearest training pose: when that pose
has the other arm in front, the generator has only seen the crossing the other way round (``other_arm_in_front``
in ``coverage.json``; the distance, from x and y alone, cannot tell). The contact sheet's skeletons are drawn far
to near.
"""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from dancenow_utils.evaluation.metrics import MIN_CONF
from dancenow_utils.evaluation.per_sample import per_sample_file, read_per_sample
from dancenow_utils.evaluation.stats import pearson, spearman
from dancenow_utils.io_utils import atomic_write_text, list_images, read_image, write_image
from dancenow_utils.layout import DatasetLayout
from dancenow_utils.pose.crop import Crops, keypoint_files, people_in_image
from dancenow_utils.pose.formats import joint
from dancenow_utils.pose.keypoints import Person
from dancenow_utils.pose.kinds import pose_kind
from dancenow_utils.pose.normalize import body_height
from dancenow_utils.pose.render import render_pose
from dancenow_utils.pose.settings import BODY_ONLY
from dancenow_utils.visualize import grid, label, overlay, save_figure

COVERAGE_JOINTS = tuple(range(19))  # BODY_25 without the feet points, as evaluation.BODY_JOINTS
BODY_PARTS: dict[str, tuple[int, ...]] = {
    "torso": tuple(joint(n) for n in ("Neck", "RShoulder", "LShoulder", "MidHip", "RHip", "LHip")),
    "head": tuple(joint(n) for n in ("Nose", "REye", "LEye", "REar", "LEar")),
    "left_arm": (joint("LElbow"), joint("LWrist")),
    "right_arm": (joint("RElbow"), joint("RWrist")),
    "left_leg": (joint("LKnee"), joint("LAnkle")),
    "right_leg": (joint("RKnee"), joint("RAnkle")),
}
MISSING_COST = 0.25  # a joint one pose has and the other lacks costs a quarter of the body height
DEFAULT_THRESHOLD = 0.04  # fraction of the target's body height; see the module docstring
UNIT = "fraction of the target's median head-to-feet height"


# ------------------------------------------------------------------------------------------- pure functions
def _as_bodies(a: np.ndarray, what: str) -> np.ndarray:
    arr = np.asarray(a, np.float32)
    if arr.ndim == 2:
        arr = arr[None]
    if arr.ndim != 3 or arr.shape[1:] != (25, 3):
        raise ValueError(f"{what}: expected BODY_25 keypoints of shape (N, 25, 3), got {arr.shape}")
    return arr


def reference_height(train: np.ndarray) -> float:
    """Median head-to-feet height in pixels of the training poses ``(M, 25, 3)``; the unit of every distance."""
    train = _as_bodies(train, "train")
    heights = [h for b in train if (h := body_height(Person(b))) is not None and h > 0]
    if not heights:  # no pose with both head and feet: the vertical extent of the body keypoints instead
        heights = [h for b in train if (h := Person(b).height()) > 0]
    if not heights:
        raise ValueError("train: no training pose has two confident body keypoints; check the keypoint folder")
    return float(np.median(heights))


def pose_distances(query: np.ndarray, train: np.ndarray, scale: float | None = None,
                   joints: tuple[int, ...] = COVERAGE_JOINTS, min_conf: float = MIN_CONF,
                   missing_cost: float = MISSING_COST) -> dict:
    """Distance of every query pose to its nearest training pose, overall and per body part.

    ``query`` ``(N, 25, 3)`` and ``train`` ``(M, 25, 3)`` are BODY_25 keypoints (x, y, confidence) in the same
    pixels; ``scale`` (pixels per unit) defaults to :func:`reference_height` of ``train``. Returns ``nearest``
    (``(N,)`` training index, -1 for a query with fewer than two confident joints), ``distance`` (``(N,)``, NaN
    there), ``parts`` (part name -> ``(N,)``, NaN where the part has no joint in either pose) and ``scale``.
    """
    query, train = _as_bodies(query, "query"), _as_bodies(train, "train")
    if len(train) == 0:
        raise ValueError("train: no training poses")
    scale = reference_height(train) if scale is None else float(scale)
    if not scale > 0:
        raise ValueError(f"scale must be a positive number of pixels, got {scale}")
    cols = list(joints)
    q_xy, q_ok = query[:, cols, :2] / scale, query[:, cols, 2] > min_conf
    t_xy, t_ok = train[:, cols, :2] / scale, train[:, cols, 2] > min_conf
    t_valid = t_ok.sum(1) >= 2
    if not t_valid.any():
        raise ValueError("train: no training pose has two confident body joints; check the keypoint folder")
    part_cols = {p: [cols.index(j) for j in idx if j in cols] for p, idx in BODY_PARTS.items()}
    n = len(query)
    nearest = np.full(n, -1, np.int64)
    overall = np.full(n, np.nan)
    parts = {p: np.full(n, np.nan) for p in BODY_PARTS}
    q_valid = np.flatnonzero(q_ok.sum(1) >= 2)
    chunk = max(1, 2_000_000 // (len(train) * len(cols)))  # bounds the (chunk, M, J) arrays to ~8 MB each
    for s in range(0, len(q_valid), chunk):
        qi = q_valid[s: s + chunk]
        both = q_ok[qi][:, None] & t_ok[None]
        one = q_ok[qi][:, None] ^ t_ok[None]
        d = np.linalg.norm(q_xy[qi][:, None] - t_xy[None], axis=3)
        cost = np.where(both, d, np.where(one, np.float32(missing_cost), np.float32(0)))
        counted = both | one
        mean = cost.sum(2) / np.maximum(counted.sum(2), 1)
        mean[:, ~t_valid] = np.inf
        best = mean.argmin(1)
        rows = np.arange(len(qi))
        nearest[qi] = best
        overall[qi] = mean[rows, best]
        c_best, k_best = cost[rows, best], counted[rows, best]
        for p, pc in part_cols.items():
            den = k_best[:, pc].sum(1)
            parts[p][qi] = np.where(den > 0, c_best[:, pc].sum(1) / np.maximum(den, 1), np.nan)
    return {"nearest": nearest, "distance": overall, "parts": parts, "scale": scale}


def worst_frames(distance: np.ndarray, k: int = 8, min_gap: int = 5) -> list[int]:
    """Indices of the ``k`` largest finite distances, at least ``min_gap`` + 1 frames apart (neighbouring
    frames of one bad moment are near duplicates: one of them is enough)."""
    distance = np.asarray(distance, np.float64)
    chosen: list[int] = []
    for i in np.argsort(-np.where(np.isfinite(distance), distance, -np.inf), kind="stable"):
        if not np.isfinite(distance[i]) or len(chosen) >= k:
            break
        if all(abs(int(i) - j) > min_gap for j in chosen):
            chosen.append(int(i))
    return chosen


def coverage_vs_quality(distances: np.ndarray, per_frame_ssim: np.ndarray) -> dict:
    """Pearson and Spearman correlation of coverage distance with a per-frame quality (e.g. body SSIM).

    Non-finite pairs are dropped; ``n`` is how many remain. A negative correlation means frames further from
    the training poses come out worse. Values are None when fewer than 3 pairs remain or one side is constant.
    """
    d, q = np.asarray(distances, np.float64).ravel(), np.asarray(per_frame_ssim, np.float64).ravel()
    if len(d) != len(q):
        raise ValueError(f"coverage_vs_quality: {len(d)} distances but {len(q)} quality values")
    ok = np.isfinite(d) & np.isfinite(q)

    def clean(v: float) -> float | None:
        return None if math.isnan(v) else round(v, 4)

    return {"pearson": clean(pearson(d[ok], q[ok])), "spearman": clean(spearman(d[ok], q[ok])), "n": int(ok.sum())}


# ------------------------------------------------------------------------------------------------ pose folders
@dataclass
class PoseSet:
    """Named BODY_25 poses in the pixels of ``size`` = (width, height) images (a keypoint folder's crop)."""

    names: list[str]
    bodies: np.ndarray  # (N, 25, 3)
    size: tuple[int, int]
    folder: Path | None = None
    depth: np.ndarray | None = None  # (N, 25) body depth (pose.keypoints), NaN rows for poses without one

    def __post_init__(self) -> None:
        self.bodies = _as_bodies(self.bodies, "bodies") if len(self.names) else np.zeros((0, 25, 3), np.float32)
        if len(self.bodies) != len(self.names):
            raise ValueError(f"PoseSet: {len(self.names)} names but {len(self.bodies)} poses")
        if self.depth is not None:
            self.depth = np.asarray(self.depth, np.float32).reshape(len(self.names), 25)

    def person(self, i: int) -> Person:
        """Pose ``i`` as a :class:`Person`, with its depth when it has one."""
        z = self.depth[i] if self.depth is not None and np.isfinite(self.depth[i]).all() else None
        return Person(self.bodies[i], depth={"body": z} if z is not None else {})

    def front_arm(self, i: int) -> str | None:
        """Which arm of pose ``i`` is nearer the camera, for a pose whose arms cross or whose hands overlap
        (:mod:`~dancenow_utils.pose.kinds`) and that has a depth; None otherwise."""
        p = self.person(i)
        if not p.has_depth or pose_kind(p) not in ("crossed arms", "hands overlapping"):
            return None
        z = p.part_depth("body")
        right = z[joint("RElbow")] + z[joint("RWrist")]
        left = z[joint("LElbow")] + z[joint("LWrist")]
        return None if right == left else ("right" if right < left else "left")

    def sibling(self, suffix: str) -> Path | None:
        """``{phase}_A`` or ``{phase}_B`` beside a ``{phase}_keypoints`` folder, when it exists."""
        if self.folder is None or not self.folder.name.endswith("_keypoints"):
            return None
        d = self.folder.with_name(self.folder.name.removesuffix("_keypoints") + suffix)
        return d if d.is_dir() else None


def load_pose_folder(folder: str | Path, size: tuple[int, int] | None = None) -> PoseSet:
    """Read ``{phase}_keypoints/*_keypoints.json`` (original-frame pixels) and map every pose through the
    folder's ``crop.json`` (or each image's crop in ``crops.json``) into the pixels of images of ``size`` =
    (width, height) (default: the crop's own)."""
    kdir = Path(folder)
    if not kdir.is_dir():
        raise FileNotFoundError(f"{kdir}: no such keypoint folder; run pose extraction (notebook 01) first")
    if not kdir.name.endswith("_keypoints"):
        raise ValueError(f"{kdir}: expected a '<phase>_keypoints' folder as pose extraction writes it, "
                         "e.g. dataset/train_keypoints or dataset_transfer/test_keypoints")
    names = [f.name.removesuffix("_keypoints.json") for f in keypoint_files(kdir)]
    layout = DatasetLayout.of_keypoints_dir(kdir)
    w, h = size or Crops.load(layout).size
    people = people_in_image(layout, names, w, h)
    depth = None
    if any(p.has_depth for p in people):
        depth = np.stack([p.part_depth("body") if p.has_depth else np.full(25, np.nan, np.float32) for p in people])
    return PoseSet(names, np.stack([p.body for p in people]), (int(w), int(h)), kdir, depth)


def _pose_set(x: PoseSet | str | Path, size: tuple[int, int] | None = None) -> PoseSet:
    return x if isinstance(x, PoseSet) else load_pose_folder(x, size)


# ------------------------------------------------------------------------------------------------------ report
@dataclass
class CoverageReport:
    """What :func:`coverage_report` measured and where it wrote it."""

    out_dir: Path
    names: list[str]
    distance: np.ndarray
    parts: dict[str, np.ndarray]
    nearest: list[str | None]
    flagged: np.ndarray
    threshold: float
    scale_px: float
    worst: list[int]
    # the query frames whose arms cross or hands overlap with one arm in front, where the nearest training pose
    # has the other arm in front (depth from both; the generator has seen the crossing the other way round)
    other_arm_in_front: list[str] = field(default_factory=list)
    arms_in_front: int = 0  # query frames whose arms cross or hands overlap with a front arm both sets could say

    @property
    def json_path(self) -> Path:
        return self.out_dir / "coverage.json"

    @property
    def curve_path(self) -> Path:
        return self.out_dir / "coverage.png"

    @property
    def sheet_path(self) -> Path:
        return self.out_dir / "coverage_worst.png"

    def worst_part(self, i: int) -> str | None:
        vals = {p: v[i] for p, v in self.parts.items() if np.isfinite(v[i])}
        return max(vals, key=vals.get) if vals else None

    def summary(self) -> str:
        """A few lines for a notebook: how many frames are flagged, the worst ones and their worst part."""
        n, k = len(self.names), int(self.flagged.sum())
        finite = self.distance[np.isfinite(self.distance)]
        lines = [f"pose coverage: {k} of {n} frames ({100 * k / max(n, 1):.1f} %) are further than "
                 f"{self.threshold:g} body heights from every training pose (body height {self.scale_px:.1f} px)"]
        if len(finite):
            lines.append(f"  distance median {np.median(finite):.4f}, 95th percentile "
                         f"{np.percentile(finite, 95):.4f}, max {finite.max():.4f}")
        if k:
            counts: dict[str, int] = {}
            for i in np.flatnonzero(self.flagged):
                part = self.worst_part(int(i))
                if part:
                    counts[part] = counts.get(part, 0) + 1
            lines.append("  worst part of the flagged frames: " +
                         ", ".join(f"{p} {c}" for p, c in sorted(counts.items(), key=lambda x: -x[1])))
        for i in self.worst[:5]:
            lines.append(f"  {self.names[i]}: {self.distance[i]:.4f} (worst part {self.worst_part(i)}, nearest "
                         f"training frame {self.nearest[i]})")
        if self.arms_in_front:
            lines.append(f"  arms in front: {len(self.other_arm_in_front)} of {self.arms_in_front} crossed-arm or "
                         "overlapping-hand frames have the other arm in front in their nearest training pose")
        return "\n".join(lines)

    def to_dict(self) -> dict:
        def num(v: float) -> float | None:
            return round(float(v), 5) if np.isfinite(v) else None

        finite = self.distance[np.isfinite(self.distance)]
        frames = [{"name": name, "distance": num(self.distance[i]),
                   "parts": {p: num(v[i]) for p, v in self.parts.items()}, "worst_part": self.worst_part(i),
                   "nearest": self.nearest[i], "flagged": bool(self.flagged[i])}
                  for i, name in enumerate(self.names)]
        return {
            "unit": UNIT, "scale_px": round(self.scale_px, 3), "threshold": self.threshold,
            "n_frames": len(self.names), "n_flagged": int(self.flagged.sum()),
            "fraction_flagged": round(float(self.flagged.mean()), 4) if len(self.names) else 0.0,
            "median": num(np.median(finite)) if len(finite) else None,
            "p95": num(np.percentile(finite, 95)) if len(finite) else None,
            "max": num(finite.max()) if len(finite) else None,
            "part_means": {p: num(np.nanmean(v)) if np.isfinite(v).any() else None for p, v in self.parts.items()},
            "worst": [self.names[i] for i in self.worst],
            "arms_in_front": self.arms_in_front, "other_arm_in_front": self.other_arm_in_front,
            "frames": frames,
        }


def coverage_report(query_people: PoseSet | str | Path, train_people: PoseSet | str | Path, out_dir: str | Path,
                    threshold: float = DEFAULT_THRESHOLD, train_frames_dir: str | Path | None = None,
                    query_pose_images: str | Path | None = None, n_worst: int = 8, min_gap: int = 5,
                    tile: int = 128, title: str = "") -> CoverageReport:
    """Measure pose coverage and write ``coverage.json``, ``coverage.png`` and ``coverage_worst.png``.

    ``query_people`` and ``train_people`` are :class:`PoseSet` s or keypoint folders (e.g.
    ``dataset_transfer/test_keypoints`` and ``dataset/train_keypoints``); the query is mapped into the training
    images' pixels. ``train_frames_dir`` (training frames, default ``{phase}_B`` beside the training keypoints)
    and ``query_pose_images`` (default ``{phase}_A`` beside the query keypoints) feed the contact sheet; without
    them it draws the skeletons from the keypoints. Every file is written atomically.
    """
    train = _pose_set(train_people)
    query = _pose_set(query_people, train.size)
    if tuple(query.size) != tuple(train.size):
        raise ValueError(f"query poses are in {query.size} px images but training poses in {train.size} px; "
                         "load both at one size (load_pose_folder(..., size))")
    if not query.names:
        raise ValueError("query: no poses to measure")
    res = pose_distances(query.bodies, train.bodies)
    dist = res["distance"]
    report = CoverageReport(
        out_dir=Path(out_dir), names=list(query.names), distance=dist, parts=res["parts"],
        nearest=[train.names[j] if j >= 0 else None for j in res["nearest"]],
        flagged=np.isfinite(dist) & (dist > threshold), threshold=float(threshold), scale_px=res["scale"],
        worst=worst_frames(dist, n_worst, min_gap))
    for i, j in enumerate(res["nearest"]):
        mine, theirs = query.front_arm(i), train.front_arm(int(j)) if j >= 0 else None
        if mine is not None and theirs is not None:
            report.arms_in_front += 1
            if mine != theirs:
                report.other_arm_in_front.append(query.names[i])
    report.out_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_text(report.json_path, json.dumps(report.to_dict(), indent=1) + "\n")
    plot_coverage(report, report.curve_path, title)
    frames_dir = Path(train_frames_dir) if train_frames_dir else train.sibling("_B")
    poses_dir = Path(query_pose_images) if query_pose_images else query.sibling("_A")
    write_image(report.sheet_path, worst_sheet(report, query, train, frames_dir, poses_dir, tile))
    return report


def plot_coverage(report: CoverageReport, path: str | Path, title: str = "") -> None:
    """The distance over the video with the threshold and the flagged frames marked; per-part curves below."""
    import matplotlib.pyplot as plt

    x = np.arange(len(report.names))
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(11, 5.2), sharex=True, height_ratios=(3, 2))
    top.plot(x, report.distance, color="tab:blue", lw=1.2, label="nearest training pose")
    top.axhline(report.threshold, color="tab:red", ls="--", lw=1, label=f"threshold {report.threshold:g}")
    f = np.flatnonzero(report.flagged)
    top.scatter(f, report.distance[f], color="tab:red", s=10, zorder=3,
                label=f"flagged: {len(f)} of {len(x)} frames")
    for i in report.worst[:5]:
        top.annotate(report.names[i], (i, report.distance[i]), fontsize=7, xytext=(3, 3),
                     textcoords="offset points")
    top.set_ylabel("distance (body heights)")
    top.set_title(title or "pose coverage: distance of each frame's pose to the nearest training pose")
    top.legend(fontsize=8, loc="upper left")
    top.grid(alpha=0.3)
    for p, v in report.parts.items():
        bottom.plot(x, v, lw=0.9, label=p.replace("_", " "))
    bottom.axhline(report.threshold, color="tab:red", ls="--", lw=1)
    bottom.set_ylabel("per part")
    bottom.set_xlabel("frame (position in the video)")
    bottom.legend(fontsize=7, ncol=6, loc="upper right")
    bottom.grid(alpha=0.3)
    fig.tight_layout()
    save_figure(fig, path)
    plt.close(fig)


def _image_or_skeleton(folder: Path | None, name: str | None, body: Person, size: tuple[int, int],
                       tile: tuple[int, int]) -> np.ndarray:
    """The image ``folder/<name>.*`` resized to ``tile`` (width, height), or the skeleton drawn from ``body`` (in
    ``size`` pixels; far to near where it has a depth) when there is none."""
    if folder is not None and name is not None:
        for ext in (".png", ".jpg", ".jpeg"):
            f = folder / f"{name}{ext}"
            if f.exists():
                return cv2.resize(read_image(f), tile, interpolation=cv2.INTER_AREA)
    drawing = dataclasses.replace(BODY_ONLY, depth="order")  # a pose without depth is drawn as today
    return cv2.resize(render_pose([body], drawing, size=size), tile, interpolation=cv2.INTER_AREA)


def worst_sheet(report: CoverageReport, query: PoseSet, train: PoseSet, train_frames_dir: Path | None,
                query_pose_images: Path | None, tile: int = 128) -> np.ndarray:
    """Contact sheet: per worst frame, its pose | the nearest training frame | that frame under the pose; tiles
    ``tile`` pixels high with the training images' aspect ratio."""
    if query_pose_images is not None and not list_images(query_pose_images):
        query_pose_images = None
    w, h = train.size
    box = (max(8, round(tile * w / h)), tile)
    triples = []
    index = {n: j for j, n in enumerate(train.names)}
    for i in report.worst:
        j = index[report.nearest[i]]
        pose = _image_or_skeleton(query_pose_images, report.names[i], query.person(i), query.size, box)
        frame = _image_or_skeleton(train_frames_dir, train.names[j], train.person(j), train.size, box)
        part = report.worst_part(i)
        triples.append([label(pose, f"{report.names[i]} {report.distance[i]:.3f}"),
                        label(frame, f"nearest {train.names[j]}"),
                        label(overlay((frame * 0.6).astype(np.uint8), pose), f"{part} {report.parts[part][i]:.3f}")])
    if not triples:
        return label(np.full((tile, 3 * box[0], 3), 64, np.uint8), "no frame with a person")
    per_row = 2
    rows = [sum(triples[k: k + per_row], []) for k in range(0, len(triples), per_row)]
    return grid(rows)


# ------------------------------------------------------------------------------------- against measured quality
def per_sample_values(path: str | Path, column: str = "body_ssim") -> dict[str, float]:
    """``name -> value`` of one column of the evaluation's ``per_sample.csv`` (notebook 03; the file or the
    ``checkpoints/<name>_test`` folder holding it)."""
    rows = read_per_sample(path)
    if rows and column not in rows[0]:
        raise KeyError(f"{per_sample_file(path)}: no column {column!r}; columns are {', '.join(rows[0])}")
    return {str(r["name"]): float("nan") if r[column] is None else float(r[column]) for r in rows}


def coverage_vs_per_sample(report: CoverageReport, per_sample_csv: str | Path, column: str = "body_ssim") -> dict:
    """:func:`coverage_vs_quality` of a held-out coverage report against notebook 03's per-frame metric, joined
    by frame name; adds the mean metric below and above the report's threshold."""
    quality = per_sample_values(per_sample_csv, column)
    idx = [i for i, n in enumerate(report.names) if n in quality]
    if not idx:
        raise ValueError(f"{per_sample_csv}: no frame name in common with the coverage report; measure coverage "
                         "on the same held-out keypoints the cross-validation used")
    d = report.distance[idx]
    q = np.array([quality[report.names[i]] for i in idx])
    out = {"metric": column, **coverage_vs_quality(d, q)}
    above = np.isfinite(d) & (d > report.threshold)
    for key, sel in (("below_threshold", ~above & np.isfinite(d)), ("above_threshold", above)):
        vals = q[sel & np.isfinite(q)]
        out[f"{key}_n"] = int(len(vals))
        out[f"{key}_mean"] = round(float(vals.mean()), 4) if len(vals) else None
    return out
