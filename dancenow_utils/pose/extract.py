"""Step 1 of the pipeline: a video or image folder -> aligned training pairs and OpenPose JSON.

For every usable frame it writes ``{dataroot}/{phase}_A/<id>.png`` (the stick figure), ``{phase}_B/<id>.png``
(the frame) with identical names, and ``{phase}_keypoints/<id>_keypoints.json`` in original-frame pixels
(layout: :mod:`dancenow_utils.layout`). How the stick figures were drawn is saved as ``settings.json``.

A video's frames are a *sequence*: keypoints are smoothed over time, shot cuts are found (the first frames of each
new shot are skipped and nothing is smoothed across a cut), and one crop, at the training images' aspect ratio,
covers all detected keypoints (no per-frame jitter; ``crop.json``), so that poses normalised onto this video can
be drawn the same way. A folder's images are *independent* unless ``sequence=True``: nothing is smoothed across
them and each image gets its own crop (``crops.json``), whatever its size.

The stages live in their own modules: frame sources (:mod:`~dancenow_utils.pose.sources`), detection
(:mod:`~dancenow_utils.pose.detect`), cuts, temporal smoothing, global normalisation, the crops
(:mod:`~dancenow_utils.pose.crop`) and drawing. Frames with nobody, several people, unreadable images or bad or
missing JSON are skipped and counted by reason; when no frame is usable the error lists the counts and the first
files. Everything is written into a staging folder and swapped into place at the end: an error or Ctrl-C leaves
the earlier output as it was, never a half-written set.
"""

from __future__ import annotations

import shutil
import warnings
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from dancenow_utils.io_utils import swap_folders_into_place, write_image, write_json
from dancenow_utils.layout import DatasetLayout
from dancenow_utils.params import check_bool, check_int
from dancenow_utils.pose.crop import Crop, Crops, normalisation_target
from dancenow_utils.pose.cuts import CUT_MARGIN, find_cuts
from dancenow_utils.pose.detect import BACKENDS, REASONS, FrameResult, detect
from dancenow_utils.pose.keypoints import Person, write_openpose_json
from dancenow_utils.pose.normalize import DEFAULT_METHOD, check_method, normalize_sequence
from dancenow_utils.pose.render import render_pose
from dancenow_utils.pose.settings import PoseSettings
from dancenow_utils.pose.smoothing import smooth_sequence
from dancenow_utils.pose.sources import FrameSource

MAX_OUTSIDE_CROP = 0.5  # normalised poses: refuse when more than this share would be drawn entirely outside
MAX_MESSAGES = 100  # per-frame reasons kept in the summary (the counts cover every frame)


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
    unreadable: int = 0
    bad_json: int = 0
    missing_json: int = 0
    near_cut: int = 0
    sequence: bool = True
    cuts: list[str] = field(default_factory=list)  # frame ids that start a new shot
    outside_crop: int = 0  # normalised poses drawn entirely outside the image (black pose images)
    partly_outside: int = 0  # normalised poses with a body joint clearly beyond an edge of the image
    ignored_files: list[str] = field(default_factory=list)
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
    body = person.body[person.body[:, 2] > 0.05, :2]
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
) -> ExtractionSummary:
    """Run pose extraction on ``source`` and write aligned pairs under ``dataroot`` (see module docstring).

    ``image_size`` is a side (square) or ``[width, height]`` (e.g. ``[512, 256]`` for the EDN presets).
    ``sequence``: whether the frames are consecutive frames of one video (smoothed, one crop, cuts found); the
    default is True for a video and False for a folder of images (independent pictures, one crop each).
    ``normalize_to`` names a target's keypoint folder (e.g. ``dataset/train_keypoints``): poses are then mapped
    onto that target with global pose normalisation (``normalize_method``: ``"project"`` or EDN's ``"edn"``, see
    :mod:`~dancenow_utils.pose.normalize`) and drawn with the target's crop, ready for transfer; more than half of
    them landing outside that crop is an error, a few a warning. Every parameter is checked before any work.
    """
    width, height = image_size_of(image_size)
    smooth_window = check_int("smooth_window", smooth_window, 1, " (1 = no smoothing)")
    workers = check_int("workers", workers, 0, " (0 = automatic)")
    if backend not in BACKENDS:
        raise ValueError(f"unknown backend {backend!r}; choose one of {BACKENDS}")
    src = FrameSource.open(source, frame_step, max_frames)
    sequence = src.is_video if sequence is None else check_bool("sequence", sequence)
    if sequence and not src.is_video:
        _check_sizes(src)
    if normalize_to and not sequence:
        raise ValueError(f"{source}: normalize_to needs the frames of one video (its statistics come from how the "
                         "dancer moves in one camera view), but these are independent images. Pass sequence=True "
                         "if they are consecutive frames, or normalize=False.")
    settings = PoseSettings(pose_format, check_bool("draw_face", draw_face), check_bool("draw_hands", draw_hands),
                            width, height, smooth_window if sequence else 1, backend, sequence)
    target_people, target_crop = None, None
    if normalize_to:  # check the target before any work
        check_method(normalize_method)
        target_people, target_crop = normalisation_target(normalize_to)
    summary = ExtractionSummary(str(source), sequence=sequence, ignored_files=src.ignored_files())

    results = detect(src, backend, weights, keypoints_dir, draw_face, draw_hands, workers, progress, sequence)
    summary.total = len(results)
    if summary.total == 0:
        raise ValueError(f"{source}: no frames could be read")
    if src.is_video and src.header_frames() > summary.total:
        summary.warn(f"{source}: the video's header announces {src.header_frames()} frames (with frame_step="
                     f"{src.frame_step}, max_frames={src.max_frames}) but only {summary.total} could be decoded: "
                     "the file is probably truncated or damaged. Pairs come from the decoded frames; re-download "
                     "or re-encode the video to use all of it.")
    if sequence:
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

    raw = [r.person if r.status == "ok" else None for r in results]
    if target_people is not None:
        if sum(p is not None for p in raw) < 3:
            raise ValueError(summary.nothing_usable("too few frames with a person to normalise (at least 3 needed)"))
        frame_width = next((r.size[0] for r in results if r.status == "ok" and r.size[0]), None)
        seq = normalize_sequence(raw, target_people, normalize_method, smooth_window, frame_width)
    elif sequence:
        seq = smooth_sequence(raw, window=smooth_window)
    else:
        seq = raw  # independent images: nothing is shared between them
    ok = [(r, p) for r, p in zip(results, seq) if r.status == "ok" and p is not None]
    if not ok:
        raise ValueError(summary.nothing_usable())
    if target_crop is not None:
        crops = Crops(single=target_crop.resized(width, height))
    elif sequence:
        crops = Crops(single=Crop.around([p for _, p in ok], ok[0][0].size, width, height))
    else:
        crops = Crops(per_frame={r.frame_id: Crop.around([p], r.size, width, height) for r, p in ok})
    if normalize_to:
        _check_inside(summary, ok, crops, width, height, normalize_to)

    layout = DatasetLayout(dataroot, phase)
    final = layout.folders()
    staging = {k: v.with_name(f".{v.name}.staging") for k, v in final.items()}
    if not write_frames:
        final.pop("B")
        staging.pop("B")
    for d in staging.values():
        shutil.rmtree(d, ignore_errors=True)
        d.mkdir(parents=True)

    def write_pair(frame_id: str, rgb: np.ndarray | None, person: Person) -> None:
        crop = crops.of(frame_id)
        stick = render_pose([crop.apply_person(person)], width, height, pose_format, draw_face, draw_hands)
        if rgb is not None:
            write_image(staging["B"] / f"{frame_id}.png", crop.apply_image(rgb))
        write_image(staging["A"] / f"{frame_id}.png", stick)
        write_openpose_json(staging["keypoints"] / f"{frame_id}_keypoints.json", [person], pose_format)

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
        crops.save(staging["keypoints"])
        settings.save(staging["keypoints"] / "settings.json")
        write_json(staging["keypoints"] / "summary.json", summary.to_dict())
        swap_folders_into_place(staging, final)
    finally:
        for d in staging.values():
            shutil.rmtree(d, ignore_errors=True)
    return summary
