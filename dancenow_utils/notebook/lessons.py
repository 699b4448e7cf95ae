"""Lesson figures: what each stage of the pipeline does to one frame, drawn so a student can see it.

:class:`ExtractionLesson` (notebook 01) takes a few dozen frames of a source through detection (the raw keypoints
extraction saved) and smoothing and one of them through the crop and the drawing: raw keypoints on the frame, a
joint's track before and after smoothing, the crop box, the stick figure. :class:`NormalizationLesson` (notebook 04)
fits global pose normalisation exactly as pose transfer does and draws the source skeleton over the target's crop
before and after it, with the ankle lines and the scale the method derives. :func:`depth_lesson_image` (notebook 01)
draws one crossed-arms frame without and with depth; :func:`hand_weight_image` (notebook 02) shows what
``hand_weight`` weighs, :func:`jitter_image` what ``jitter`` does to a training pair and :func:`mirror_image` what
``mirror`` does. Only figures are made here: every stage is the package's own code
(:mod:`~dancenow_utils.pose.extract`'s stages, :mod:`~dancenow_utils.pose.smoothing`,
:mod:`~dancenow_utils.pose.crop`, :mod:`~dancenow_utils.pose.render`, :mod:`~dancenow_utils.pose.normalize`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from dancenow_utils.io_utils import read_image
from dancenow_utils.layout import DatasetLayout
from dancenow_utils.params import check_int
from dancenow_utils.pose.crop import Crop, Crops, keypoint_files, people_in_image, read_single_person
from dancenow_utils.pose.detect import detect
from dancenow_utils.pose.extract import Detections, detect_frames
from dancenow_utils.pose.formats import BODY_25_NAMES, N_FACE, joint
from dancenow_utils.pose.keypoints import MIN_CONF, Person
from dancenow_utils.pose.normalize import PoseNormalizer, check_method, edn_measure, normalize_sequence
from dancenow_utils.pose.render import render_pose
from dancenow_utils.pose.settings import BODY_ONLY, PoseSettings
from dancenow_utils.pose.smoothing import smooth_sequence
from dancenow_utils.pose.sources import FrameSource
from dancenow_utils.visualize import hstack, label


def _figure(figsize: tuple[float, float]):
    """A matplotlib figure outside pyplot's registry: shown once by ``display(fig)``, never twice, never leaked."""
    from matplotlib.figure import Figure

    return Figure(figsize=figsize, layout="constrained")


def _frame_at(source: FrameSource, pos: int) -> np.ndarray:
    for p, _, rgb in source.frames(pos, pos + 1):
        if p == pos and rgb is not None:
            return rgb
    raise ValueError(f"{source.path}: frame {pos} cannot be read")


def _joint_track(people: list[Person | None], j: int) -> np.ndarray:
    """``(T, 2)`` x, y of body joint ``j`` over a sequence; NaN where it is missing."""
    out = np.full((len(people), 2), np.nan)
    for t, p in enumerate(people):
        if p is not None and p.body[j, 2] > MIN_CONF:
            out[t] = p.body[j, :2]
    return out


def _read_person(path: Path) -> Person | None:
    return read_single_person(path) if path.exists() else None


def check_joint(name: str) -> int:
    """BODY_25 index of ``name``; a ValueError listing the valid names otherwise."""
    if name not in BODY_25_NAMES:
        raise ValueError(f"unknown joint {name!r}; use one of {', '.join(BODY_25_NAMES)}")
    return joint(name)


# ------------------------------------------------------------------------------------------------ notebook 01

@dataclass
class ExtractionLesson:
    """A few dozen frames of a source through detection and smoothing, and one of them (``index``) through the
    crop and the drawing: what extraction saved (raw detections ``detections.npz``, ``crop.json``,
    ``settings.json``)."""

    frame_ids: list[str]
    raw: list[Person | None]
    smoothed: list[Person | None]
    index: int
    frame: np.ndarray
    crop: Crop
    settings: PoseSettings
    frame_step: int = 1
    truth: list[Person | None] | None = None

    @classmethod
    def run(cls, source: str | Path, keypoints_dir: str | Path, n_frames: int = 40, frame_step: int = 1,
            weights: str = "", json_dir: str = "", truth_dir: str | Path = "", index: int | None = None,
            progress: bool = False) -> ExtractionLesson:
        """The raw keypoints of the first ``n_frames`` frames of ``source`` (every ``frame_step``-th, as extraction
        read them), smoothed with the window saved in ``keypoints_dir`` (extraction's ``{phase}_keypoints``).

        The raw keypoints are the ones extraction detected (its ``detections.npz``); for data extracted before
        they were saved, or from another source or frame step, the detector runs again on these frames with the
        backend and drawing settings extraction saved (``weights``, ``json_dir`` as for extraction).
        ``truth_dir`` is a folder of ground-truth OpenPose JSON with the same frame ids (the demo has one);
        ``index`` picks the lesson frame (default: the middle one with a person).
        """
        keypoints_dir = Path(keypoints_dir)
        layout = DatasetLayout.of_keypoints_dir(keypoints_dir)
        settings = PoseSettings.load(layout.settings)
        if settings is None:
            raise FileNotFoundError(f"{keypoints_dir}/settings.json: no extraction settings; run the extraction "
                                    "(notebook 01) before the lesson")
        crops = Crops.load(layout)
        n_frames = check_int("n_frames", n_frames, 3, " (the lesson needs at least 3 frames to show smoothing)")
        src = FrameSource.open(source, frame_step, n_frames)
        detections = Detections.load(layout.detections)
        if detections is not None and detections.is_of(source, frame_step):
            detections = detections.first(n_frames)
        else:
            detections = detect_frames(src, settings, weights, json_dir, workers=1, progress=progress)
        results = detections.results
        raw = detections.people()
        found = [i for i, p in enumerate(raw) if p is not None]
        if not found:
            raise ValueError(f"{source}: nobody was detected in its first {len(raw)} frames; the lesson needs a "
                             "person (try another source or more frames)")
        if index is None:
            index = min(found, key=lambda i: abs(i - len(raw) // 2))
        elif not 0 <= index < len(raw) or raw[index] is None:
            raise ValueError(f"index={index}: pick a frame with a person, one of {found[:10]}...")
        ids = [r.frame_id for r in results]
        truth = None
        if truth_dir and Path(truth_dir).is_dir():
            truth = [_read_person(Path(truth_dir) / f"{i}_keypoints.json") for i in ids]
        smoothed = smooth_sequence(raw, window=settings.smooth_window)
        return cls(ids, raw, smoothed, index, _frame_at(src, index), crops.of(ids[index]), settings, frame_step,
                   truth)

    @property
    def frames(self) -> np.ndarray:
        """The source's frame numbers of the lesson's positions."""
        return np.arange(len(self.raw)) * self.frame_step

    def _draw(self, person: Person, width: int, height: int, canvas: np.ndarray | None = None) -> np.ndarray:
        return render_pose([person], self.settings, size=(width, height), canvas=canvas)

    def detected_image(self) -> np.ndarray:
        """Stage 1: the raw keypoints (body, face, hands as extracted) drawn on the original frame."""
        h, w = self.frame.shape[:2]
        return label(self._draw(self.raw[self.index], w, h, self.frame), f"{self.frame_ids[self.index]}: detected")

    def jitter(self, joint_name: str = "RWrist") -> dict[str, float]:
        """How much a joint shakes: the mean size (pixels) of its frame-to-frame acceleration, raw and smoothed,
        and with ground truth its mean distance to the truth."""
        j = check_joint(joint_name)
        out = {}
        tracks = {"raw": self.raw, "smoothed": self.smoothed}
        for key, seq in tracks.items():
            xy = _joint_track(seq, j)
            acc = np.linalg.norm(xy[2:] - 2 * xy[1:-1] + xy[:-2], axis=1)
            out[f"{key}_jitter_px"] = float(np.nanmean(acc)) if np.isfinite(acc).any() else float("nan")
        if self.truth is not None:
            true = _joint_track(self.truth, j)
            for key, seq in tracks.items():
                err = np.linalg.norm(_joint_track(seq, j) - true, axis=1)
                out[f"{key}_error_px"] = float(np.nanmean(err)) if np.isfinite(err).any() else float("nan")
        return out

    def jitter_figure(self, joint_name: str = "RWrist"):
        """Stage 2: one joint's x and y over time, detected (raw) and smoothed (and the demo's ground truth)."""
        j = check_joint(joint_name)
        fig = _figure((11, 3.3))
        axes = fig.subplots(1, 2, sharex=True)
        t = self.frames
        raw, smooth = _joint_track(self.raw, j), _joint_track(self.smoothed, j)
        true = _joint_track(self.truth, j) if self.truth is not None else None
        for k, ax in enumerate(axes):
            ax.plot(t, raw[:, k], ".-", color="0.55", lw=0.8, ms=4, label="detected (raw)")
            ax.plot(t, smooth[:, k], "-", color="C1", lw=2, label=f"smoothed (median of {self.settings.smooth_window})")
            if true is not None:
                ax.plot(t, true[:, k], "--", color="C2", lw=1.2, label="ground truth (demo)")
            ax.axvline(t[self.index], color="k", alpha=0.25, lw=3, label="lesson frame")
            ax.set_xlabel("frame")
            ax.set_ylabel(f"{joint_name} {'xy'[k]} (pixels)")
            ax.grid(alpha=0.3)
        axes[1].invert_yaxis()  # image y grows downwards: up on the plot is up in the frame
        axes[0].legend(loc="best", fontsize=8)
        j_stats = self.jitter(joint_name)
        text = (f"frame-to-frame jitter {j_stats['raw_jitter_px']:.2f} px raw, "
                f"{j_stats['smoothed_jitter_px']:.2f} smoothed")
        if "raw_error_px" in j_stats:
            text += (f"; distance to the truth {j_stats['raw_error_px']:.2f} px raw, "
                     f"{j_stats['smoothed_error_px']:.2f} smoothed")
        fig.suptitle(f"{joint_name} over {len(t)} frames: {text}", fontsize=10)
        return fig

    def crop_image(self) -> np.ndarray:
        """Stage 3: the crop box (one for the whole video) on the original frame, and what it cuts out."""
        c = self.crop
        box = self.frame.copy()
        p0 = (int(round(c.x0)), int(round(c.y0)))
        p1 = (int(round(c.x0 + c.width / c.scale)), int(round(c.y0 + c.height / c.scale)))
        cv2.rectangle(box, p0, p1, (255, 230, 0), max(1, round(max(box.shape[:2]) / 200)), cv2.LINE_AA)
        cut = c.apply_image(self.frame)
        return hstack([label(box, "original frame + crop box"), label(cut, f"cropped, {c.width}x{c.height}")],
                      height=max(box.shape[0], cut.shape[0]))

    def pose_image(self) -> np.ndarray:
        """The lesson frame's smoothed pose moved into the crop and drawn as extraction draws it (``{phase}_A``)."""
        c = self.crop
        return self._draw(c.apply_person(self.smoothed[self.index]), c.width, c.height)

    def drawn_image(self) -> np.ndarray:
        """Stage 4: the training pair: the cropped frame (``{phase}_B``) and the smoothed pose drawn as an
        OpenPose stick figure (``{phase}_A``), with the figure over the frame to check it sits on the body."""
        c = self.crop
        cut = c.apply_image(self.frame)
        over = self._draw(c.apply_person(self.smoothed[self.index]), c.width, c.height, cut)
        return hstack([label(cut, "frame (B)"), label(over, "both"), label(self.pose_image(), "pose (A)")])


def crossed_arms_frame(keypoints_dir: str | Path) -> str:
    """The frame id of the stored pose (``{phase}_keypoints``) whose crossed arms differ most in depth, the right
    one in front if any is (OpenPose's fixed order draws the left arm on top, so there drawing with depth changes
    the picture); a ValueError when no stored pose crosses its arms with a depth."""
    from dancenow_utils.pose.kinds import pose_kind

    best, best_key = None, (False, -1.0)
    for f in keypoint_files(keypoints_dir):
        p = read_single_person(f)
        if p is None or not p.has_depth or pose_kind(p) != "crossed arms":
            continue
        z = p.part_depth("body")
        gap = float(z[joint("LElbow")] + z[joint("LWrist")] - z[joint("RElbow")] - z[joint("RWrist")])
        key = (gap > 0, abs(gap))  # the right arm nearer first, then the largest difference
        if key > best_key:
            best, best_key = f.name.removesuffix("_keypoints.json"), key
    if best is None:
        raise ValueError(f"{keypoints_dir}: no stored pose crosses its arms with a depth per keypoint (the demo's "
                         "do; OpenPose JSON has no depth)")
    return best


def depth_lesson_image(dataroot: str | Path, phase: str = "train", frame_id: str | None = None,
                       zoom: int = 2) -> np.ndarray:
    """One crossed-arms frame of a dataset drawn both ways: the frame (``{phase}_B``), today's OpenPose drawing
    (``depth="none"``: a fixed order, the left arm always on top), far to near (``"order"``: the nearer arm on
    top) and shaded by depth (``"shade"``); below, the arms ``zoom`` times larger. ``frame_id`` defaults to
    :func:`crossed_arms_frame`."""
    import dataclasses

    layout = DatasetLayout(dataroot, phase)
    settings = PoseSettings.load(layout.settings) or PoseSettings()
    frame_id = frame_id or crossed_arms_frame(layout.keypoints)
    person = read_single_person(layout.keypoint_file(frame_id))
    if person is None:
        raise ValueError(f"{layout.keypoint_file(frame_id)}: not one person")
    crop = Crops.load(layout).of(frame_id)
    p = crop.apply_person(person)
    frame_file = next((f for f in (layout.B / f"{frame_id}{e}" for e in (".png", ".jpg")) if f.exists()), None)
    frame = read_image(frame_file) if frame_file is not None else np.zeros((crop.height, crop.width, 3), np.uint8)
    drawings = {"frame": frame}
    for mode, text in (("none", "today: fixed order"), ("order", "far to near"), ("shade", "shaded by depth")):
        drawings[text] = render_pose([p], dataclasses.replace(settings, depth=mode), size=(crop.width, crop.height))
    arms = p.body[[joint(n) for n in ("RElbow", "RWrist", "LElbow", "LWrist")], :2]
    cx, cy = arms.mean(axis=0)
    half = max(8, int(0.5 * max(np.ptp(arms[:, 0]), np.ptp(arms[:, 1])) + 0.06 * crop.height))
    x0, y0 = int(np.clip(cx - half, 0, crop.width - 2 * half)), int(np.clip(cy - half, 0, crop.height - 2 * half))

    def zoomed(img: np.ndarray) -> np.ndarray:
        cut = img[y0:y0 + 2 * half, x0:x0 + 2 * half]
        return cv2.resize(cut, None, fx=zoom, fy=zoom, interpolation=cv2.INTER_NEAREST)

    top = hstack([label(img, text) for text, img in drawings.items()])
    bottom = hstack([zoomed(img) for img in drawings.values()], height=top.shape[0])
    width = max(top.shape[1], bottom.shape[1])
    pad = [np.pad(x, ((0, 2), (0, width - x.shape[1]), (0, 0)), constant_values=255) for x in (top, bottom)]
    return np.concatenate(pad, axis=0)[:-2]


def hand_weight_image(dataroot: str | Path, phase: str = "train", zoom: int = 2) -> np.ndarray:
    """What ``hand_weight`` weighs (notebook 02): one training frame per pose kind (crossed arms, hands
    overlapping, arms raised, others; the first of each), with the hands and forearms that the L1 term counts
    ``1 + hand_weight`` times tinted, as :func:`~dancenow_utils.data.hands.hand_map` maps them from the frame's
    keypoints; ``zoom`` times larger. A ValueError names the folder when the dataset has no keypoints."""
    from dancenow_utils.data.datasets import pair_files
    from dancenow_utils.data.hands import hand_map
    from dancenow_utils.pose.kinds import POSE_KINDS, pose_kind

    layout = DatasetLayout(dataroot, phase)
    if not layout.keypoints.is_dir():
        raise ValueError(f"{layout.keypoints} does not exist: extract the poses with notebook 01, which writes it")
    pairs = pair_files(dataroot, phase, need_b=True)
    first = read_image(pairs[0][1])
    h, w = first.shape[:2]
    people = people_in_image(layout, [a.stem for a, _ in pairs], w, h)
    chosen: dict[str, int] = {}
    for i, p in enumerate(people):
        chosen.setdefault(pose_kind(p), i)
        if len(chosen) == len(POSE_KINDS):
            break
    tiles = []
    for kind in (k for k in POSE_KINDS if k in chosen):
        i = chosen[kind]
        frame = read_image(pairs[i][1])
        weighed = hand_map(people[i], w, h) > 0
        tinted = frame.copy()
        tinted[weighed] = (0.45 * frame[weighed] + 0.55 * np.array([255, 40, 200])).astype(np.uint8)
        big = cv2.resize(tinted, None, fx=zoom, fy=zoom, interpolation=cv2.INTER_NEAREST)
        tiles.append(label(big, f"{kind} ({100 * weighed.mean():.1f} %)"))
    return hstack(tiles)


def jitter_image(dataroot: str | Path, size: tuple[int, int], strength: float, kind: str = "affine",
                 n: int = 4, phase: str = "train", zoom: int = 2, seed: int = 0) -> np.ndarray:
    """What ``jitter`` does (notebook 02): the first training pair at the training ``size`` (width, height), as
    filmed and moved by ``n - 1`` draws of ``strength`` and ``kind`` (:func:`~dancenow_utils.data.datasets.
    jitter_draws`, :func:`~dancenow_utils.data.datasets.jittered`, as training does), the stick figure drawn over
    its frame so that one sees them move together, background and all; ``zoom`` times larger."""
    import torch

    from dancenow_utils.data.datasets import jitter_draws, jittered, load_resized, pair_files, to_image, to_tensor

    pair = pair_files(dataroot, phase, need_b=True)[0]
    item = {k: to_tensor(load_resized(path, *size)) for k, path in zip(("A", "B"), pair)}
    draws = jitter_draws(n - 1, strength, torch.Generator().manual_seed(seed), kind)
    tiles = []
    for transform in [None, *draws]:
        moved = item if transform is None else jittered(item, transform)
        text = "as filmed"
        if transform is not None:
            dx, dy, scale, degrees = transform[:4]
            text = f"{dx * size[0]:+.1f}, {dy * size[1]:+.1f} px, x{scale:.3f}, {degrees:+.1f} deg"
        tiles.append(label(_pose_over_frame(to_image(moved["A"]), to_image(moved["B"]), zoom), text))
    return hstack(tiles)


def _pose_over_frame(pose: np.ndarray, frame: np.ndarray, zoom: int) -> np.ndarray:
    """A training pair as one picture: the stick figure's pixels (its background is black) drawn over the frame,
    ``zoom`` times larger."""
    out = frame.astype(np.float32)
    drawn = pose.max(axis=2) > 60
    out[drawn] = 0.3 * out[drawn] + 0.7 * pose[drawn]
    return cv2.resize(out.astype(np.uint8), None, fx=zoom, fy=zoom, interpolation=cv2.INTER_NEAREST)


def mirror_image(dataroot: str | Path, size: tuple[int, int], phase: str = "train", zoom: int = 2) -> np.ndarray:
    """What ``mirror`` does (notebook 02): the first crossed-arms training pair (the first pair where none crosses
    them) at the training ``size`` (width, height), as filmed, flipped as pix2pixHD flips it (the right arm's
    colours move to the left side) and mirrored as ``mirror`` trains on it (the pose drawn again from the mirrored
    keypoints, :class:`~dancenow_utils.data.mirror.MirroredPoses`), each stick figure over its frame; ``zoom``
    times larger. A ValueError names the folder when the dataset has no keypoints."""
    from dancenow_utils.data.datasets import load_resized, pair_files
    from dancenow_utils.data.mirror import MirroredPoses
    from dancenow_utils.pose.kinds import pose_kind

    layout = DatasetLayout(dataroot, phase)
    if not layout.keypoints.is_dir():
        raise ValueError(f"{layout.keypoints} does not exist: extract the poses with notebook 01, which writes it")
    pairs = pair_files(dataroot, phase, need_b=True)
    people = people_in_image(layout, [a.stem for a, _ in pairs], *size)
    i = next((k for k, p in enumerate(people) if pose_kind(p) == "crossed arms"), 0)
    pose, frame = (load_resized(path, *size) for path in pairs[i])
    mirrored = MirroredPoses(layout, [pairs[i][0].stem], *size)[0]
    tiles = [("as filmed", pose, frame), ("flipped: colours swap sides", pose[:, ::-1], frame[:, ::-1]),
             ("mirrored: pose drawn again", mirrored, frame[:, ::-1])]
    return hstack([label(_pose_over_frame(a, b, zoom), text) for text, a, b in tiles])


# ------------------------------------------------------------------------------------------------ notebook 04

def _probe(p: Person) -> Person:
    """A copy of ``p`` carrying two extra points 100 px apart vertically (in the face slots), to read off the
    scale a normaliser applies to it."""
    face = np.zeros((N_FACE, 3), np.float32)
    face[0] = (0.0, 0.0, 1.0)
    face[1] = (0.0, 100.0, 1.0)
    return Person(p.body, face)


@dataclass
class NormalizationLesson:
    """Global pose normalisation of a source onto a target, fitted as pose transfer fits it, for drawing.

    ``raw`` and ``before`` (smoothed) are the source's keypoints in source-frame pixels; ``after`` is what the
    transfer draws (target-frame pixels); ``target`` is the target's stored keypoints, ``target_ids`` their frame
    ids, ``target_layout`` the target dataset (its ``{phase}_B`` frames are the backgrounds).
    """

    method: str
    normalizer: PoseNormalizer
    raw: list[Person | None]
    before: list[Person | None]
    after: list[Person | None]
    target: list[Person | None]
    target_ids: list[str]
    target_layout: DatasetLayout
    crop: Crop

    @classmethod
    def run(cls, source: str | Path, target_keypoints: str | Path = "dataset/train_keypoints",
            method: str = "project", smooth_window: int = 7, max_frames: int = 0,
            progress: bool = False, detections: str | Path | None = None) -> NormalizationLesson:
        """The source's bodies (the frames pose transfer uses: the first ``max_frames``, 0 = all), smoothed and
        normalised onto ``target_keypoints`` exactly as ``prepare_poses`` does.

        The raw bodies are the ones ``prepare_poses`` detected (its ``detections.npz``, given as ``detections``);
        without them, or when they are of another source, the detector runs again on the body only (faces and
        hands do not change the body keypoints, and normalisation needs the body only).
        """
        check_method(method)
        folder = Path(target_keypoints)
        files = keypoint_files(folder)
        ids = [f.name.removesuffix("_keypoints.json") for f in files]
        target = [read_single_person(f) for f in files]
        crop = Crops.load(DatasetLayout.of_keypoints_dir(folder)).single
        if crop is None:
            raise ValueError(f"{folder}: a target of independent images has no single crop; normalisation needs the "
                             "target's video (extract it with sequence=True)")
        saved = Detections.load(detections) if detections is not None else None
        if saved is not None and saved.is_of(source, 1):
            results = saved.first(max_frames).results
        else:
            src = FrameSource.open(source, 1, max_frames)
            results = detect(src, "mediapipe", face=False, hands=False, workers=1, progress=progress)
        raw = [r.person if r.status == "ok" else None for r in results]
        if sum(p is not None for p in raw) < 3:
            raise ValueError(f"{source}: fewer than 3 frames with a person; normalisation needs more")
        frame_width = next((r.size[0] for r in results if r.status == "ok" and r.size[0]), None)
        before = smooth_sequence(raw, window=smooth_window)
        normalizer = PoseNormalizer.fit(before, target, method, frame_width)
        after = normalize_sequence(raw, target, method, smooth_window, frame_width)
        return cls(method, normalizer, raw, before, after, target, ids, DatasetLayout.of_keypoints_dir(folder), crop)

    def ankle_position(self, p: Person | None) -> float | None:
        """Where a person stands, as the method measures it: the lower ankle's y (``edn``) or the ankles' mean y
        (``project``)."""
        if p is None:
            return None
        if self.method == "edn":
            m = edn_measure(p)
            return m[1] if m is not None else None
        return p.ankle_y()

    def ankle_lines(self) -> dict[str, tuple[float, float]]:
        """``{"source": (far, close), "target": (far, close)}``: the ankle positions (frame pixels) that the
        method maps onto each other (the target's are EDN's shrunk range when the source moves less in depth)."""
        m = self.normalizer.mapping
        if self.method == "edn":
            return {"source": (m.source_far, m.source_close), "target": (m.target_far, m.target_close)}
        return {"source": (m.source.ankle_far, m.source.ankle_close),
                "target": (m.target.ankle_far, m.target.ankle_close)}

    def _measured(self) -> list[Person | None]:
        """The keypoints the method measures each frame on: EDN the raw ones, the project's method smoothed."""
        return self.raw if self.method == "edn" else self.before

    def scale(self, i: int) -> float | None:
        """The scale the method gives source frame ``i`` (None for a frame with nobody)."""
        p = self._measured()[i]
        if p is None or self.ankle_position(p) is None:
            return None
        q = self.normalizer([_probe(p)])[0]
        return float(q.face[1, 1] - q.face[0, 1]) / 100.0

    def pick_frames(self) -> list[int]:
        """The source's farthest and closest frames (smallest and largest ankle position): where the scales
        differ most."""
        pos = [(self.ankle_position(p), i) for i, p in enumerate(self._measured())]
        pos = [(a, i) for a, i in pos if a is not None and self.after[i] is not None]
        if not pos:
            return [next(i for i, p in enumerate(self.after) if p is not None)]
        far, close = min(pos)[1], max(pos)[1]
        return [far] if far == close else [far, close]

    def describe(self) -> str:
        """The fitted numbers in one paragraph."""
        lines = self.ankle_lines()
        scales = [s for s in (self.scale(i) for i in range(len(self.raw))) if s is not None]
        text = (f"method {self.method!r}: source ankles from y={lines['source'][0]:.0f} (far) to "
                f"{lines['source'][1]:.0f} px (close), mapped onto the target's {lines['target'][0]:.0f} to "
                f"{lines['target'][1]:.0f} px; scales {min(scales):.3f} to {max(scales):.3f} over "
                f"{len(scales)} measured frames")
        if self.method == "edn":
            m = self.normalizer.mapping
            text += f" (far {m.scale_far:.3f}, close {m.scale_close:.3f}, anchor {m.anchor[0]:.0f}, {m.anchor[1]:.0f})"
        return text

    def _target_image(self, ankle: float | None) -> np.ndarray:
        """The target training frame whose ankle position is nearest to ``ankle`` (a target standing where the
        normalised source stands), at the crop's size."""
        pos = [(abs(a - ankle) if ankle is not None else 0.0, k)
               for k, a in enumerate(self.ankle_position(p) for p in self.target) if a is not None]
        k = min(pos)[1] if pos else 0
        path = self.target_layout.B / f"{self.target_ids[k]}.png"
        c = self.crop
        if not path.exists():
            return np.zeros((c.height, c.width, 3), np.uint8)
        img = read_image(path)
        return cv2.resize(img, c.size, interpolation=cv2.INTER_AREA) if img.shape[:2] != (c.height, c.width) else img

    def figure(self, frames: list[int] | None = None):
        """Rows: source frames (default: the farthest and the closest). Columns: the source skeleton over the
        target's crop before normalisation (with the source's far and close ankle lines) and after (with the
        target's), and the scale of every frame against its ankle position."""
        c = self.crop
        frames = frames or self.pick_frames()
        lines = self.ankle_lines()
        fig = _figure((13, 4.1 * len(frames)))
        gs = fig.add_gridspec(len(frames), 3, width_ratios=[1, 1, 1.25])

        def y_in_crop(y: float) -> float:
            return (y - c.y0) * c.scale

        for r, i in enumerate(frames):
            background = self._target_image(self.ankle_position(self.after[i]))
            for col, (people, which, colour) in enumerate(((self.before, "source", "orange"),
                                                           (self.after, "target", "cyan"))):
                ax = fig.add_subplot(gs[r, col])
                person = people[i]
                ax.imshow(render_pose([c.apply_person(person)], BODY_ONLY, canvas=background)
                          if person is not None else background)
                for y, style, name in ((lines[which][0], ":", "far"), (lines[which][1], "--", "close")):
                    ax.axhline(y_in_crop(y), color=colour, ls=style, lw=1.5, label=f"{which} {name} ankles")
                a = self.ankle_position(person)
                if a is not None:
                    ax.axhline(y_in_crop(a), color="white", lw=0.8, alpha=0.7, label="this frame's ankles")
                if col == 0:
                    ax.set_title(f"source frame {i}: before normalisation", fontsize=9)
                else:
                    s = self.scale(i)
                    ax.set_title(f"after: scale {s:.2f}" if s is not None else "after", fontsize=9)
                ax.set_xlim(0, c.width)
                ax.set_ylim(c.height, 0)
                ax.set_axis_off()
                ax.legend(loc="lower left", fontsize=6, framealpha=0.6)
        ax = fig.add_subplot(gs[:, 2])
        pos = [(self.ankle_position(p), self.scale(i)) for i, p in enumerate(self._measured())]
        pos = np.array([(a, s) for a, s in pos if a is not None and s is not None])
        if len(pos):
            ax.scatter(pos[:, 0], pos[:, 1], s=8, color="C0", label="source frames")
        for i in frames:
            a, s = self.ankle_position(self._measured()[i]), self.scale(i)
            if a is not None and s is not None:
                ax.scatter([a], [s], s=60, facecolors="none", edgecolors="C3", lw=1.5)
                ax.annotate(f"frame {i}", (a, s), textcoords="offset points", xytext=(5, 5), fontsize=8)
        for y, style, name in ((lines["source"][0], ":", "far"), (lines["source"][1], "--", "close")):
            ax.axvline(y, color="orange", ls=style, lw=1.2, label=f"source {name} ankles")
        ax.set_xlabel("source ankle position, y in the source frame (pixels; larger = closer)")
        ax.set_ylabel("scale applied to the skeleton")
        ax.set_title(f"one scale per frame, from where the feet are ({self.method!r} method)", fontsize=9)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
        return fig
