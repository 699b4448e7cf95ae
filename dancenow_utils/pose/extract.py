"""Step 1 of the pipeline: a video or image folder -> aligned training pairs and OpenPose JSON.

For every usable frame it writes ``{dataroot}/{phase}_A/<id>.png`` (the stick figure), ``{phase}_B/<id>.png``
(the frame) with identical names, and ``{phase}_keypoints/<id>_keypoints.json`` in original-frame pixels
(layout: :mod:`dancenow_utils.layout`). How the stick figures were drawn is saved as ``settings.json``.

A video's frames are a *sequence*: keypoints are smoothed over time, shot cuts are found (the first frames of each
new shot are skipped and nothing is smoothed across a cut), and one crop, at the training images' aspect ratio,
covers all detected keypoints (no per-frame jitter; ``crop.json``), so that poses normalised onto this video can
be drawn the same way. A folder's images are *independent* unless ``sequence=True``: nothing is smoothed across
them and each image gets its own crop (``crops.json``), whatever its size.

Extraction runs four stages, each a function of this module that the lessons reuse: :func:`detect_frames`
(with :func:`screen_frames`: counts, cuts), :func:`smooth_poses` (smoothing or normalisation), :func:`crop_poses`
and :func:`write_pairs`; the raw detections are saved too (``detections.npz``), so notebook 01's lesson shows them
without detecting again. Their building blocks live in their own modules: frame sources
(:mod:`~dancenow_utils.pose.sources`), detection (:mod:`~dancenow_utils.pose.detect`), cuts, temporal smoothing,
global normalisation, the crops (:mod:`~dancenow_utils.pose.crop`) and drawing. Frames with nobody, several
people, unreadable images or bad or missing JSON are skipped and counted by reason; when no frame is usable the
error lists the counts and the first files. Everything is written into a staging folder and swapped into place at
the end: an error or Ctrl-C leaves the earlier output as it was, never a half-written set.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
import warnings
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from dancenow_utils.io_utils import (
    atomic_path,
    reporting_write_errors,
    swap_folders_into_place,
    write_image,
    write_json,
)
from dancenow_utils.layout import DatasetLayout
from dancenow_utils.params import check_bool, check_int, check_optional_bool
from dancenow_utils.pose.crop import Crop, Crops, normalisation_target
from dancenow_utils.pose.cuts import CUT_MARGIN, find_cuts
from dancenow_utils.pose.detect import BACKENDS, REASONS, FrameResult, detect
from dancenow_utils.pose.formats import N_BODY, N_FACE, N_HAND
from dancenow_utils.pose.keypoints import (
    MIN_CONF,
    Person,
    attach_depth,
    depth_path,
    read_openpose_json,
    write_openpose_json,
)
from dancenow_utils.pose.normalize import DEFAULT_METHOD, check_method, normalize_sequence
from dancenow_utils.pose.render import render_pose
from dancenow_utils.pose.settings import DEFAULT_DEPTH, PoseSettings
from dancenow_utils.pose.smoothing import smooth_sequence
from dancenow_utils.pose.sources import FrameSource

MAX_OUTSIDE_CROP = 0.5  # normalised poses: refuse when more than this share would be drawn entirely outside
MAX_MESSAGES = 100  # per-frame reasons kept in the summary (the counts cover every frame)
DETECTIONS_FORMAT = 1  # detections.npz: a file of another format is not read (the lesson detects again)
_PARTS = {"body": N_BODY, "face": N_FACE, "left_hand": N_HAND, "right_hand": N_HAND}  # a Person's arrays


class ExtractionWarning(UserWarning):
    """Something in the source deserves a look, but pairs were written (truncated video, cuts, poses off-crop)."""


def image_size_of(image_size: int | tuple[int, int] | list[int]) -> tuple[int, int]:
    """``256`` -> ``(256, 256)``; ``[512, 256]`` -> ``(512, 256)`` (width, height), validated."""
    if isinstance(image_size, (int, np.integer)) and not isinstance(image_size, bool):
        size = (int(image_size), int(image_size))
    elif isinstance(image_size, (tuple, list)) and len(image_size) == 2 and \
            all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in image_size):
        size = (int(image_size[0]), int(image_size[1]))
    else:
        raise ValueError(f"image_size must be a number (square) or [width, height], got {image_size!r}")
    if min(size) < 16:
        raise ValueError(f"image_size must be at least 16 px on each side, got {image_size!r}")
    return size


# what to try when every frame was rejected for one reason
_HINTS = {
    "no_person": "check that a whole person is visible, or try another backend",
    "multiple": "dancenow learns one person: film the target alone, or crop the video to one dancer",
    "no_upper_body": "film or crop so that the dancer's head and shoulders are in the frame (the stick figure needs "
                     "them)",
    "unreadable": "replace or delete the unreadable images",
    "bad_json": "re-export the keypoints with OpenPose's --write_json (BODY_25 or COCO model)",
    "missing_json": "keypoints_dir needs one JSON file per frame, named <frame id>_keypoints.json (or, for a "
                    "video, OpenPose's <video name>_<12-digit frame number>_keypoints.json)",
    "near_cut": "the shots are too short: every new shot's first frames are skipped",
}


@dataclass
class ExtractionSummary:
    """What extraction found: frames written, frames skipped by reason, shot cuts, warnings."""

    source: str
    total: int = 0
    written: int = 0
    no_person: int = 0
    multiple: int = 0
    no_upper_body: int = 0  # legs only: no head or shoulders in the frame
    unreadable: int = 0
    bad_json: int = 0
    missing_json: int = 0
    near_cut: int = 0
    sequence: bool = True
    cuts: list[str] = field(default_factory=list)  # frame ids that start a new shot
    outside_crop: int = 0  # normalised poses drawn entirely outside the image (black pose images)
    partly_outside: int = 0  # normalised poses with a body joint clearly beyond an edge of the image
    depth: str = "none"  # how the stick figures show depth (settings.depth; "none" when the source has none)
    with_depth: int = 0  # frames written whose pose has a depth per keypoint
    ignored_files: list[str] = field(default_factory=list)
    transparent: int = 0  # images with transparent pixels, composited on a plain white background
    messages: list[str] = field(default_factory=list)  # per skipped frame, which and why (the first 100)
    warnings: list[str] = field(default_factory=list)

    @property
    def detection_rate(self) -> float:
        return self.written / self.total if self.total else 0.0

    def skipped(self) -> dict[str, int]:
        """Skipped frames by reason (only reasons that occurred), in :data:`REASONS` order."""
        return {key: getattr(self, key) for key in REASONS if getattr(self, key)}

    def counts_text(self) -> str:
        """``"no person 3, several people 2"``."""
        return ", ".join(f"{REASONS[k]} {n}" for k, n in self.skipped().items()) or "none skipped"

    def first_files(self, n: int = 5) -> str:
        more = sum(self.skipped().values()) - n
        return "; ".join(self.messages[:n]) + (f"; ... ({more} more)" if more > 0 else "")

    def nothing_usable(self, what: str = "") -> str:
        """The error when no pair can be written: counts by reason, the first files, and what to try."""
        skipped = self.skipped()
        main = max(skipped, key=skipped.get) if skipped else "no_person"
        if not what:
            what = (f"nobody was found in any of its {self.total} frames" if set(skipped) == {"no_person"}
                    else "no frame gave a usable pose")
        text = f"{self.source}: {what}. Of {self.total} frames: {self.counts_text()}."
        if self.messages:
            text += f" First files: {self.first_files()}."
        return f"{text} To fix: {_HINTS[main]}."

    def warn(self, message: str) -> None:
        self.warnings.append(message)
        warnings.warn(message, ExtractionWarning, stacklevel=3)

    def to_dict(self) -> dict:
        d = asdict(self)
        d["detection_rate"] = round(self.detection_rate, 4)
        return d

    def __str__(self) -> str:
        lines = [f"{self.source}: {self.written} of {self.total} frames written "
                 f"({100 * self.detection_rate:.1f} %)" + ("" if self.sequence else ", as independent images")]
        for key, n in self.skipped().items():
            lines.append(f"  skipped, {REASONS[key]}: {n}")
        if self.cuts:
            lines.append(f"  shot cuts: {len(self.cuts)} (new shots at {', '.join(self.cuts[:5])}"
                         + (" ...)" if len(self.cuts) > 5 else ")"))
        if self.ignored_files:
            lines.append(f"  ignored non-image files: {', '.join(self.ignored_files[:5])}"
                         + (" ..." if len(self.ignored_files) > 5 else ""))
        if self.transparent:
            lines.append(f"  transparent images: {self.transparent}, composited on a plain white background")
        if self.depth != "none" or self.with_depth:
            lines.append(f"  depth: {self.with_depth} of {self.written} poses have one; drawn with depth={self.depth}")
        lines += [f"  {m}" for m in self.messages[:5]]
        if len(self.messages) > 5:
            lines.append(f"  ... ({sum(self.skipped().values()) - 5} more; the first {MAX_MESSAGES} in summary.json)")
        lines += [f"  warning: {w}" for w in self.warnings]
        return "\n".join(lines)


# ---------------------------------------------------------------------------------------------------- pipeline
def _mark_cuts(results: list[FrameResult], cuts: list[int]) -> None:
    """Skip the first :data:`CUT_MARGIN` frames of every new shot (the tracker re-locks there)."""
    for c in cuts:
        for r in results[c: c + CUT_MARGIN]:
            if r.status == "ok":
                r.status, r.person = "near_cut", None
                r.message = f"{r.frame_id}: first frames of a new shot (cut at {results[c].frame_id})"


def _check_sizes(src: FrameSource) -> None:
    """A folder given as one sequence gets one crop: its images must share one size."""
    sizes = src.image_sizes()
    if len(set(sizes.values())) > 1:
        first = next(iter(sizes.items()))
        other = next((k, v) for k, v in sizes.items() if v != first[1])
        raise ValueError(f"{src.path}: sequence=True, but the images differ in size ({first[0]} is "
                         f"{first[1][0]}x{first[1][1]}, {other[0]} is {other[1][0]}x{other[1][1]}); frames of one "
                         "video share a size. Pass sequence=False for independent images (each gets its own crop).")


def _outside(person: Person, width: int, height: int, tolerance: float = 0.05) -> tuple[bool, bool]:
    """``(entirely, partly)`` outside the ``width`` x ``height`` image, for a person in image pixels: entirely
    when no keypoint is inside (the pose image is black); partly when a body joint lies beyond an edge by more
    than ``tolerance`` of the image's size (a fingertip or a hair beyond the edge does not count)."""
    pts = person.all_points()
    inside = (pts[:, 0] >= 0) & (pts[:, 0] < width) & (pts[:, 1] >= 0) & (pts[:, 1] < height)
    if not inside.any():
        return True, False
    body = person.body[person.body[:, 2] > MIN_CONF, :2]
    tx, ty = tolerance * width, tolerance * height
    beyond = (body[:, 0] < -tx) | (body[:, 0] >= width + tx) | (body[:, 1] < -ty) | (body[:, 1] >= height + ty)
    return False, bool(beyond.any())


def _check_inside(summary: ExtractionSummary, ok: list[tuple[FrameResult, Person]], crops: Crops,
                  width: int, height: int, normalize_to: str) -> None:
    """Normalised poses must land in the target's crop: refuse when most would be black, else warn with counts."""
    blank = []
    for r, p in ok:
        entirely, partly = _outside(crops.of(r.frame_id).apply_person(p), width, height)
        summary.outside_crop += entirely
        summary.partly_outside += partly
        if entirely:
            blank.append(r.frame_id)
    if not blank and not summary.partly_outside:
        return
    counts = (f"{summary.outside_crop} of {len(ok)} normalised poses fall entirely outside the target's crop "
              f"(their pose images would be black) and {summary.partly_outside} partly (a body joint beyond an edge)")
    names = f" (first: {', '.join(blank[:5])})" if blank else ""
    if summary.outside_crop > MAX_OUTSIDE_CROP * len(ok):
        raise ValueError(f"{summary.source}: {counts}{names}; nothing was written. The source moves where the target "
                         f"({normalize_to}) never was: try normalize_method='project' (re-centres the dancer), "
                         "or normalize=False, or a target video whose crop covers more of the frame.")
    summary.warn(f"{counts}{names}: those frames of the transfer will show the character cut off or missing.")


@dataclass
class Detections:
    """The detect stage's output: every frame's result as the detector gave it (before shot cuts are marked and
    before smoothing), with how the frames were read. Extraction saves it beside the keypoints
    (``detections.npz``), so the lessons show raw keypoints without running the detector again."""

    results: list[FrameResult]
    source: str
    frame_step: int = 1
    backend: str = "mediapipe"

    def people(self) -> list[Person | None]:
        """The raw person of every frame (None where the frame gave no usable pose)."""
        return [r.person if r.status == "ok" else None for r in self.results]

    def first(self, n: int) -> Detections:
        """The first ``n`` frames (0 = all)."""
        return dataclasses.replace(self, results=self.results[:n] if n else list(self.results))

    def is_of(self, source: str | Path, frame_step: int) -> bool:
        """Whether these are the detections of ``source`` read every ``frame_step``-th frame."""
        return self.frame_step == frame_step and Path(self.source).resolve() == Path(source).resolve()

    def save(self, path: str | Path) -> None:
        """Write the detections as one compressed NumPy archive (missing parts are zeros, flagged)."""
        n = len(self.results)
        arrays = {name: np.zeros((n, k, 3), np.float32) for name, k in _PARTS.items()}
        depths = {f"{name}_depth": np.zeros((n, k), np.float32) for name, k in _PARTS.items()}
        present = np.zeros((n, len(_PARTS)), bool)
        has_depth = np.zeros((n, len(_PARTS)), bool)
        for t, r in enumerate(self.results):
            for col, name in enumerate(_PARTS):
                a = getattr(r.person, name) if r.person is not None else None
                if a is not None:
                    arrays[name][t], present[t, col] = a, True
                    z = r.person.part_depth(name)
                    if z is not None:
                        depths[f"{name}_depth"][t], has_depth[t, col] = z, True
        with atomic_path(path) as tmp, open(tmp, "wb") as f:
            np.savez_compressed(
                f, format=DETECTIONS_FORMAT, source=self.source, frame_step=self.frame_step, backend=self.backend,
                pos=np.array([r.pos for r in self.results], np.int64),
                frame_id=np.array([r.frame_id for r in self.results], str),
                status=np.array([r.status for r in self.results], str),
                size=np.array([r.size for r in self.results], np.int64).reshape(n, 2),
                present=present, has_depth=has_depth, **arrays, **depths)

    @classmethod
    def load(cls, path: str | Path) -> Detections | None:
        """The detections saved at ``path``; None when there are none (data extracted before they were saved, or
        in another format)."""
        path = Path(path)
        if not path.exists():
            return None
        try:
            with np.load(path, allow_pickle=False) as z:
                if int(z["format"]) != DETECTIONS_FORMAT:
                    return None
                present, parts = z["present"], [z[name] for name in _PARTS]
                # depth was added later (issue 25): files without it load without depth
                has_depth = z["has_depth"] if "has_depth" in z.files else np.zeros_like(present)
                depths = [z[f"{name}_depth"] if "has_depth" in z.files else None for name in _PARTS]
                results = []
                for t, (pos, frame_id, status, size) in enumerate(zip(z["pos"], z["frame_id"], z["status"],
                                                                        z["size"])):
                    person = None
                    if present[t, 0]:
                        depth = {name: depths[k][t] for k, name in enumerate(_PARTS)
                                 if present[t, k] and has_depth[t, k]}
                        person = Person(*(a[t] if present[t, k] else None for k, a in enumerate(parts)), depth=depth)
                    results.append(FrameResult(int(pos), str(frame_id), str(status), person,
                                               (int(size[0]), int(size[1]))))
                return cls(results, str(z["source"]), int(z["frame_step"]), str(z["backend"]))
        except (OSError, KeyError, ValueError) as exc:
            raise ValueError(f"{path}: unreadable detections ({exc}); re-run pose extraction") from None


@dataclass
class Target:
    """The target that poses are normalised onto: its keypoint folder, stored keypoints, crop and the method."""

    keypoints_dir: str
    people: list[Person | None]
    crop: Crop
    method: str = DEFAULT_METHOD

    @classmethod
    def load(cls, keypoints_dir: str | Path, method: str = DEFAULT_METHOD) -> Target:
        """Read and check the target (before any work)."""
        check_method(method)
        people, crop = normalisation_target(keypoints_dir)
        return cls(str(keypoints_dir), people, crop, method)


def detect_frames(src: FrameSource, settings: PoseSettings, weights: str = "", keypoints_dir: str = "",
                  workers: int = 0, progress: bool = True) -> Detections:
    """Stage 1, detect: every frame's person (the body, and the face and hands when ``settings`` draws them)."""
    results = detect(src, settings.backend, weights, keypoints_dir, settings.draw_face, settings.draw_hands, workers,
                     progress, settings.sequence)
    return Detections(results, str(src.path), src.frame_step, settings.backend)


def screen_frames(detections: Detections, src: FrameSource, settings: PoseSettings,
                  summary: ExtractionSummary) -> list[FrameResult]:
    """Count the frames by status into ``summary``, warn about a truncated video and, for a sequence, find shot
    cuts and skip the first frames of each new shot. Returns the frames' results with the cuts applied (copies:
    ``detections`` keeps what the detector gave)."""
    results = [dataclasses.replace(r) for r in detections.results]
    summary.total = len(results)
    if summary.total == 0:
        raise ValueError(f"{summary.source}: no frames could be read")
    if src.is_video and src.header_frames() > summary.total:
        summary.warn(f"{summary.source}: the video's header announces {src.header_frames()} frames (with "
                     f"frame_step={src.frame_step}, max_frames={src.max_frames}) but only {summary.total} could be "
                     "decoded: the file is probably truncated or damaged. Pairs come from the decoded frames; "
                     "re-download or re-encode the video to use all of it.")
    if settings.sequence:
        cuts = find_cuts([r.change for r in results])
        _mark_cuts(results, cuts)
        summary.cuts = [results[c].frame_id for c in cuts]
    for r in results:
        if r.status != "ok":
            setattr(summary, r.status, getattr(summary, r.status) + 1)
            if r.message and len(summary.messages) < MAX_MESSAGES:
                summary.messages.append(r.message)
    if summary.cuts:
        summary.warn(f"{len(summary.cuts)} shot cut(s) found (new shots at {', '.join(summary.cuts[:5])}"
                     f"{' ...' if len(summary.cuts) > 5 else ''}); the first {CUT_MARGIN} frames of each new shot "
                     "were skipped and nothing is smoothed across a cut. dancenow learns one person: if the shots "
                     "show different people, cut the video into shots and extract one.")
    return results


def smooth_poses(results: list[FrameResult], settings: PoseSettings, summary: ExtractionSummary,
                 target: Target | None = None) -> list[tuple[FrameResult, Person]]:
    """Stage 2, smooth or normalise: a sequence is smoothed over time (with ``target``, normalised onto it in the
    order its method prescribes); independent images are kept as detected. Returns the usable frames."""
    raw = [r.person if r.status == "ok" else None for r in results]
    if target is not None:
        if sum(p is not None for p in raw) < 3:
            raise ValueError(summary.nothing_usable("too few frames with a person to normalise (at least 3 needed)"))
        frame_width = next((r.size[0] for r in results if r.status == "ok" and r.size[0]), None)
        seq = normalize_sequence(raw, target.people, target.method, settings.smooth_window, frame_width)
    elif settings.sequence:
        seq = smooth_sequence(raw, window=settings.smooth_window)
    else:
        seq = raw  # independent images: nothing is shared between them
    ok = [(r, p) for r, p in zip(results, seq) if r.status == "ok" and p is not None]
    if not ok:
        raise ValueError(summary.nothing_usable())
    return ok


def depth_setting(ok: list[tuple[FrameResult, Person]], settings: PoseSettings,
                  summary: ExtractionSummary) -> PoseSettings:
    """The settings the pairs are drawn with: ``settings``, or with ``depth="none"`` when no pose has a depth
    (OpenPose JSON, an OpenPose network); says so in ``summary``. Poses without depth among others that have one
    are drawn without it (:func:`~dancenow_utils.pose.render.render_pose`)."""
    summary.with_depth = sum(p.has_depth for _, p in ok)
    if settings.uses_depth and not summary.with_depth:
        summary.warn(f"{summary.source}: depth={settings.depth!r} asks for stick figures that show which arm is in "
                     f"front, but this source has no depth ({settings.backend} gives none): they are drawn without "
                     "it (depth='none', recorded so in settings.json). MediaPipe's backend gives a depth.")
        settings = dataclasses.replace(settings, depth="none")
    summary.depth = settings.depth
    return settings


def crop_poses(ok: list[tuple[FrameResult, Person]], settings: PoseSettings, summary: ExtractionSummary,
               target: Target | None = None) -> Crops:
    """Stage 3, crop: the target's crop (normalised poses: most of them outside it is an error), one crop around
    every keypoint of a sequence, or one crop per independent image, at the training images' size."""
    width, height = settings.width, settings.height
    if target is not None:
        crops = Crops(single=target.crop.resized(width, height))
        _check_inside(summary, ok, crops, width, height, target.keypoints_dir)
        return crops
    if settings.sequence:
        return Crops(single=Crop.around([p for _, p in ok], ok[0][0].size, width, height))
    return Crops(per_frame={r.frame_id: Crop.around([p], r.size, width, height) for r, p in ok})


def write_pairs(src: FrameSource, ok: list[tuple[FrameResult, Person]], crops: Crops, settings: PoseSettings,
                layout: DatasetLayout, summary: ExtractionSummary, detections: Detections | None = None,
                write_frames: bool = True, progress: bool = True) -> None:
    """Stage 4, write: the stick figures, the cropped frames (``write_frames``) and the keypoints, then the crops,
    the settings, the raw ``detections`` and the summary, into staging folders swapped into place at the end (an
    error or Ctrl-C leaves the earlier output as it was)."""
    final = layout.folders()
    staging = {k: v.with_name(f".{v.name}.staging") for k, v in final.items()}
    if not write_frames:
        final.pop("B")
        staging.pop("B")
    for d in staging.values():
        shutil.rmtree(d, ignore_errors=True)
        with reporting_write_errors(d):
            d.mkdir(parents=True)
    keypoints = staging["keypoints"]

    def write_pair(frame_id: str, rgb: np.ndarray | None, person: Person) -> None:
        crop = crops.of(frame_id)
        stick = render_pose([crop.apply_person(person)], settings)
        if rgb is not None:
            write_image(staging["B"] / f"{frame_id}.png", crop.apply_image(rgb))
        write_image(staging["A"] / f"{frame_id}.png", stick)
        write_openpose_json(keypoints / layout.keypoint_file(frame_id).name, [person], settings.pose_format)

    try:
        by_pos = {r.pos: p for r, p in ok}
        frames = src.frames() if write_frames else ((r.pos, r.frame_id, None) for r, _ in ok)
        # OpenCV's drawing and encoding and the file writes release the GIL: two threads write pairs
        with tqdm(total=len(ok), desc="writing pairs", disable=not progress) as bar, \
                ThreadPoolExecutor(2) as pool:
            in_flight: list = []
            for pos, frame_id, rgb in frames:
                person = by_pos.get(pos)
                if person is None:
                    continue
                in_flight.append(pool.submit(write_pair, frame_id, rgb if write_frames else None, person))
                if len(in_flight) >= 8:  # bounded: long high-resolution videos must not pile up in memory
                    in_flight.pop(0).result()
                    bar.update(1)
            for fut in in_flight:
                fut.result()
                bar.update(1)
        summary.written = len(ok)
        crops.save(keypoints)
        settings.save(keypoints / layout.settings.name)
        if detections is not None:
            detections.save(keypoints / layout.detections.name)
        write_json(keypoints / layout.summary.name, summary.to_dict())
        swap_folders_into_place(staging, final)
    finally:
        for d in staging.values():
            shutil.rmtree(d, ignore_errors=True)


def extract_poses(source: str | Path, settings: PoseSettings, dataroot: str | Path = "dataset", phase: str = "train",
                  weights: str = "", keypoints_dir: str = "", frame_step: int = 1, max_frames: int = 0,
                  normalize_to: str = "", normalize_method: str = DEFAULT_METHOD, write_frames: bool = True,
                  workers: int = 0, progress: bool = True, depth_from: str | Path = "") -> ExtractionSummary:
    """:func:`extract` with the drawing and extraction settings given whole (format, face, hands, size, smoothing,
    backend, sequence): detect, screen, smooth or normalise, crop, write. Checks everything before any work.
    ``depth_from``: a keypoint folder whose depth sidecars replace the detector's depth (:func:`depth_of`)."""
    if depth_from and not Path(depth_from).is_dir():
        raise FileNotFoundError(f"{depth_from}: depth_from must be a keypoint folder with depth sidecars "
                                "(depth/<frame id>_depth.json)")
    workers = check_int("workers", workers, 0, " (0 = automatic)")
    if settings.backend not in BACKENDS:
        raise ValueError(f"unknown backend {settings.backend!r}; choose one of {BACKENDS}")
    src = FrameSource.open(source, frame_step, max_frames)
    if settings.sequence and not src.is_video:
        _check_sizes(src)
    if normalize_to and not settings.sequence:
        raise ValueError(f"{source}: normalize_to needs the frames of one video (its statistics come from how the "
                         "dancer moves in one camera view), but these are independent images. Pass sequence=True "
                         "if they are consecutive frames, or normalize=False.")
    if not settings.sequence:
        settings = dataclasses.replace(settings, smooth_window=1)
    target = Target.load(normalize_to, normalize_method) if normalize_to else None
    summary = ExtractionSummary(str(source), sequence=settings.sequence, ignored_files=src.ignored_files(),
                                transparent=len(src.transparent_images()))
    detections = detect_frames(src, settings, weights, keypoints_dir, workers, progress)
    if depth_from:
        detections = depth_of(detections, depth_from)
    results = screen_frames(detections, src, settings, summary)
    ok = smooth_poses(results, settings, summary, target)
    settings = depth_setting(ok, settings, summary)
    crops = crop_poses(ok, settings, summary, target)
    write_pairs(src, ok, crops, settings, DatasetLayout(dataroot, phase), summary, detections, write_frames, progress)
    return summary


def extract(
    source: str | Path,
    dataroot: str | Path = "dataset",
    phase: str = "train",
    backend: str = "mediapipe",
    weights: str = "",
    keypoints_dir: str = "",
    image_size: int | tuple[int, int] | list[int] = 256,
    pose_format: str = "BODY_25",
    draw_face: bool = True,
    draw_hands: bool = True,
    smooth_window: int = 7,
    frame_step: int = 1,
    max_frames: int = 0,
    normalize_to: str = "",
    normalize_method: str = DEFAULT_METHOD,
    write_frames: bool = True,
    workers: int = 0,
    progress: bool = True,
    sequence: bool | None = None,
    depth: str = DEFAULT_DEPTH,
    depth_from: str | Path = "",
) -> ExtractionSummary:
    """Run pose extraction on ``source`` and write aligned pairs under ``dataroot`` (see module docstring).

    ``image_size`` is a side (square) or ``[width, height]`` (e.g. ``[512, 256]`` for the EDN presets).
    ``sequence``: whether the frames are consecutive frames of one video (smoothed, one crop, cuts found); the
    default is True for a video and False for a folder of images (independent pictures, one crop each).
    ``normalize_to`` names a target's keypoint folder (e.g. ``dataset/train_keypoints``): poses are then mapped
    onto that target with global pose normalisation (``normalize_method``: ``"project"`` or EDN's ``"edn"``, see
    :mod:`~dancenow_utils.pose.normalize`) and drawn with the target's crop, ready for transfer; more than half of
    them landing outside that crop is an error, a few a warning. ``depth`` (``"none"``, ``"order"``,
    ``"shade"``): how the stick figures show which arm is in front (:mod:`~dancenow_utils.pose.render`; a source
    without depth is drawn as ``"none"`` and the summary says so); ``depth_from``: a keypoint folder whose depth
    sidecars replace the detector's depth, frame by frame (the demo passes its character's own drawing order).
    Every parameter is checked before any work.
    The keywords are packed once into a :class:`PoseSettings` for :func:`extract_poses`.
    """
    width, height = image_size_of(image_size)
    smooth_window = check_int("smooth_window", smooth_window, 1, " (1 = no smoothing)")
    check_int("workers", workers, 0, " (0 = automatic)")
    if backend not in BACKENDS:
        raise ValueError(f"unknown backend {backend!r}; choose one of {BACKENDS}")
    src = FrameSource.open(source, frame_step, max_frames)
    given = check_optional_bool("sequence", sequence)
    sequence = src.is_video if given is None else given
    settings = PoseSettings(pose_format, check_bool("draw_face", draw_face), check_bool("draw_hands", draw_hands),
                            width, height, smooth_window, backend, sequence, depth)
    return extract_poses(source, settings, dataroot, phase, weights, keypoints_dir, frame_step, max_frames,
                         normalize_to, normalize_method, write_frames, workers, progress, depth_from)


def depth_of(detections: Detections, folder: str | Path) -> Detections:
    """``detections`` with each frame's depth taken from ``folder``'s sidecar of the same frame id (e.g. the demo
    character's own drawing order, ``demo_data/target_train_keypoints``); frames without one keep theirs."""
    results = []
    for r in detections.results:
        if r.person is not None:
            r = dataclasses.replace(r, person=take_depth_from(r.person, depth_path(Path(folder) /
                                                                                   f"{r.frame_id}_keypoints.json")))
        results.append(r)
    return dataclasses.replace(detections, results=results)


def take_depth_from(person: Person, sidecar: Path) -> Person:
    """``person`` with the depth of another source's sidecar (``<id>_depth.json``, e.g. the demo character's
    ground truth or a depth camera's), part by part where both have the part; without the file, unchanged."""
    if not sidecar.exists():
        return person
    other = person.copy()
    other.depth = {}
    data = json.loads(sidecar.read_text())
    if len(data.get("people") or []) != 1:
        return person
    attach_depth([other], data, str(sidecar))
    out = person.copy()
    out.depth.update(other.depth)
    return out


def redraw_poses(dataroot: str | Path, settings: PoseSettings, phase: str = "train", depth_from: str | Path = "",
                 progress: bool = True) -> int:
    """Draw a dataset's stick figures again from its stored keypoints and crops with ``settings`` (e.g. another
    ``depth``), without detecting again: ``{phase}_A`` and ``settings.json`` are replaced (staged, swapped into
    place). ``depth_from``: a folder of depth sidecars named like the keypoint files whose depth replaces the
    stored one (written beside the keypoints too). Returns the number of poses drawn."""
    layout = DatasetLayout(dataroot, phase)
    crops = Crops.load(layout)
    files = sorted(layout.keypoints.glob("*_keypoints.json"))
    if not files:
        raise ValueError(f"{layout.keypoints}: no keypoint files to draw; run pose extraction first")
    old = PoseSettings.load(layout.settings) or settings
    people = []
    for f in files:
        found = read_openpose_json(f)
        person = found[0] if len(found) == 1 else None
        if person is not None and depth_from:
            person = take_depth_from(person, depth_path(Path(depth_from) / f.name))
            write_openpose_json(f, [person], old.pose_format)
        people.append((f.name.removesuffix("_keypoints.json"), person))
    if settings.uses_depth and not any(p is not None and p.has_depth for _, p in people):
        settings = dataclasses.replace(settings, depth="none")
    staging = layout.A.with_name(f".{layout.A.name}.staging")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    try:
        for frame_id, person in tqdm(people, desc="drawing poses", disable=not progress):
            if person is not None:
                write_image(staging / f"{frame_id}.png", render_pose([crops.of(frame_id).apply_person(person)],
                                                                     settings))
        swap_folders_into_place({"A": staging}, {"A": layout.A})
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    settings.save(layout.settings)
    return sum(p is not None for _, p in people)
