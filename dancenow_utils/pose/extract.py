"""Step 1 of the pipeline: a video or image folder -> aligned training pairs and OpenPose JSON.

For every usable frame it writes ``{dataroot}/{phase}_A/<id>.png`` (the stick figure), ``{phase}_B/<id>.png``
(the frame) with identical names, and ``{phase}_keypoints/<id>_keypoints.json`` in original-frame pixels.
One square crop per video is computed from all detected keypoints (no per-frame jitter) and saved as
``{phase}_keypoints/crop.json`` so that poses normalised onto this video can be drawn the same way.

Frames with nobody or several people are skipped and counted. Everything is written into a staging folder and
swapped into place at the end: an error or Ctrl-C leaves the earlier output as it was, never a half-written set.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import queue as queue_module
import shutil
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from multiprocessing import get_context
from pathlib import Path

import cv2
import numpy as np
from tqdm.auto import tqdm

from dancenow_utils.io_utils import IMAGE_EXTENSIONS, atomic_write_text, read_image, write_image
from dancenow_utils.pose.keypoints import Person, read_openpose_json, write_openpose_json
from dancenow_utils.pose.normalize import PoseNormalizer
from dancenow_utils.pose.render import render_pose
from dancenow_utils.pose.smoothing import smooth_sequence
from dancenow_utils.video import VIDEO_EXTENSIONS, read_frames

BACKENDS = ("mediapipe", "openpose", "openpose_json")


# ----------------------------------------------------------------------------------------------- frame sources
@dataclass(frozen=True)
class FrameSource:
    """A video file or a folder of images, with the frames to use (``frame_step``, ``max_frames``)."""

    path: Path
    frame_step: int = 1
    max_frames: int = 0

    @classmethod
    def open(cls, source: str | Path, frame_step: int = 1, max_frames: int = 0) -> FrameSource:
        path = Path(source)
        if not str(source):
            raise ValueError("source is empty: give a video file or a folder of images")
        if not path.exists():
            raise FileNotFoundError(f"{path}: no such video or image folder; check the `source` path")
        if path.is_file() and path.suffix.lower() not in VIDEO_EXTENSIONS:
            raise ValueError(f"{path}: not a video ({', '.join(VIDEO_EXTENSIONS)}); or pass a folder of images")
        src = cls(path, frame_step, max_frames)
        if path.is_dir() and not src.image_files():
            raise ValueError(f"{path}: the folder has no images ({', '.join(IMAGE_EXTENSIONS)})")
        return src

    @property
    def is_video(self) -> bool:
        return self.path.is_file()

    def image_files(self) -> list[Path]:
        files = sorted(p for p in self.path.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS)
        files = files[:: self.frame_step]
        return files[: self.max_frames] if self.max_frames else files

    def ignored_files(self) -> list[str]:
        if self.is_video:
            return []
        return sorted(p.name for p in self.path.iterdir()
                      if p.is_file() and p.suffix.lower() not in IMAGE_EXTENSIONS and not p.name.startswith("."))

    def frames(self, start: int = 0, stop: int | None = None) -> Iterator[tuple[int, str, np.ndarray | None]]:
        """Yield ``(position, frame_id, rgb or None if unreadable)`` for positions in ``[start, stop)``."""
        if self.is_video:
            limit = self.max_frames - start if self.max_frames else 0
            frames = read_frames(self.path, self.frame_step, limit, start=start * self.frame_step)
            for pos, (index, rgb) in enumerate(frames, start):
                if stop is not None and pos >= stop:
                    break
                yield pos, f"frame_{index:06d}", rgb
        else:
            files = self.image_files()[start:stop]
            for pos, f in enumerate(files, start):
                try:
                    rgb = read_image(f)
                except ValueError:
                    rgb = None
                yield pos, f.stem, rgb

    def __len__(self) -> int:
        if not self.is_video:
            return len(self.image_files())
        cap = cv2.VideoCapture(str(self.path))
        n = int(cap.get(cv2.CAP_PROP_FRAME_COUNT))
        cap.release()
        n = math.ceil(n / self.frame_step) if n > 0 else sum(1 for _ in self.frames())
        return min(n, self.max_frames) if self.max_frames else n


# --------------------------------------------------------------------------------------------------- detection
@dataclass
class FrameResult:
    pos: int
    frame_id: str
    status: str  # "ok" | "no_person" | "multiple" | "unreadable" | "bad_json"
    person: Person | None = None
    size: tuple[int, int] = (0, 0)  # (width, height) of the original frame
    message: str = ""


def _make_estimator(backend: str, weights: str, face: bool, hands: bool, video: bool):
    if backend == "mediapipe":
        from dancenow_utils.pose.mediapipe_backend import MediaPipeEstimator

        # tracking mode for videos; still-image mode for folders (their images need not be consecutive)
        return MediaPipeEstimator(face=face, hands=hands, video=video)
    if backend == "openpose":
        from dancenow_utils.pose.openpose_backend import OpenPoseEstimator

        return OpenPoseEstimator(weights, hands=hands)
    raise ValueError(f"unknown backend {backend!r}; choose one of {BACKENDS}")


def _classify(pos: int, frame_id: str, people: list[Person], size: tuple[int, int]) -> FrameResult:
    if not people:
        return FrameResult(pos, frame_id, "no_person", size=size)
    if len(people) > 1:
        return FrameResult(pos, frame_id, "multiple", size=size)
    return FrameResult(pos, frame_id, "ok", people[0], size)


def _detect_chunk(args: tuple, progress=None) -> list[FrameResult]:
    """Detect people in positions ``[start, stop)`` with one estimator; ``progress`` (a callable or a queue)
    is told how many frames were done, every few frames."""
    source, start, stop, backend, weights, keypoints_dir, face, hands = args
    report = progress.put if hasattr(progress, "put") else progress
    out: list[FrameResult] = []
    pending = 0
    estimator = (None if backend == "openpose_json"
                 else _make_estimator(backend, weights, face, hands, source.is_video))
    try:
        for pos, frame_id, rgb in source.frames(start, stop):
            out.append(_detect_one(estimator, keypoints_dir, pos, frame_id, rgb))
            pending += 1
            if report is not None and pending >= 10:
                report(pending)
                pending = 0
    finally:
        if report is not None and pending:
            report(pending)
        if estimator is not None and hasattr(estimator, "close"):
            estimator.close()
    return out


def _detect_one(estimator, keypoints_dir: str, pos: int, frame_id: str, rgb: np.ndarray | None) -> FrameResult:
    if rgb is None:
        return FrameResult(pos, frame_id, "unreadable", message=f"{frame_id}: unreadable image")
    size = (rgb.shape[1], rgb.shape[0])
    if estimator is not None:
        return _classify(pos, frame_id, estimator(rgb), size)
    jpath = Path(keypoints_dir) / f"{frame_id}_keypoints.json"
    try:
        people = read_openpose_json(jpath)
    except FileNotFoundError:
        people = []
    except ValueError as exc:
        return FrameResult(pos, frame_id, "bad_json", size=size, message=str(exc))
    return _classify(pos, frame_id, people, size)


def _backfill_multiple(results: list[FrameResult], source: FrameSource, backend: str) -> list[FrameResult]:
    """In videos, MediaPipe counts people every few frames: the frames just before a multi-person detection are
    treated as multi-person too, so no pair is written from a frame that may show someone else."""
    if backend != "mediapipe" or not source.is_video:
        return results
    from dancenow_utils.pose.mediapipe_backend import MULTI_PERSON_BACKFILL

    flagged = [i for i, r in enumerate(results) if r.status == "multiple"]
    for i in flagged:
        for r in results[max(0, i - MULTI_PERSON_BACKFILL): i]:
            if r.status == "ok":
                r.status, r.person = "multiple", None
    return results


def detect(source: FrameSource, backend: str = "mediapipe", weights: str = "", keypoints_dir: str = "",
           face: bool = True, hands: bool = True, workers: int = 0, progress: bool = True) -> list[FrameResult]:
    """Detect people in every frame of ``source``; ``workers`` processes take one contiguous part each (so
    MediaPipe's tracking stays useful), reporting progress through a queue."""
    if backend not in BACKENDS:
        raise ValueError(f"unknown backend {backend!r}; choose one of {BACKENDS}")
    if backend == "openpose_json" and not Path(keypoints_dir or "-").is_dir():
        raise FileNotFoundError(f"{keypoints_dir or '(empty)'}: keypoints_dir must be a folder of OpenPose JSON "
                                "files named <frame id>_keypoints.json")
    n = len(source)
    if workers <= 0:  # MediaPipe already keeps two cores busy (bench/RESULTS.md): one worker per two cores
        workers = min(4, max(1, (os.cpu_count() or 1) // 2)) if n >= 200 else 1
    common = (backend, weights, keypoints_dir, face, hands)
    bar = tqdm(total=n, desc=f"detecting poses ({workers} worker{'s' if workers > 1 else ''})",
               disable=not progress)
    try:
        if workers == 1:
            return _backfill_multiple(_detect_chunk((source, 0, None, *common), bar.update), source, backend)
        ctx = get_context("spawn")
        bounds = np.linspace(0, n, workers + 1).astype(int)
        with ctx.Manager() as manager, ProcessPoolExecutor(workers, mp_context=ctx) as pool:
            queue = manager.Queue()
            futures = [pool.submit(_detect_chunk, (source, int(a), int(b), *common), queue)
                       for a, b in zip(bounds[:-1], bounds[1:]) if b > a]
            while not all(f.done() for f in futures):
                with contextlib.suppress(queue_module.Empty):
                    bar.update(queue.get(timeout=0.2))
            results = [r for f in futures for r in f.result()]
        return _backfill_multiple(sorted(results, key=lambda r: r.pos), source, backend)
    finally:
        bar.close()


# -------------------------------------------------------------------------------------------------------- crop
@dataclass
class Crop:
    """A square region of the original frame, resized to ``image_size`` for training."""

    x0: float
    y0: float
    side: float
    image_size: int

    @property
    def scale(self) -> float:
        return self.image_size / self.side

    def apply_image(self, rgb: np.ndarray) -> np.ndarray:
        s = self.scale
        m = np.array([[s, 0, -self.x0 * s], [0, s, -self.y0 * s]], np.float32)
        interp = cv2.INTER_AREA if s < 1 else cv2.INTER_LINEAR
        return cv2.warpAffine(rgb, m, (self.image_size, self.image_size), flags=interp,
                              borderMode=cv2.BORDER_CONSTANT, borderValue=(0, 0, 0))

    def apply_person(self, p: Person) -> Person:
        return p.transformed(self.scale, (-self.x0 * self.scale, -self.y0 * self.scale))

    def save(self, path: Path) -> None:
        atomic_write_text(path, json.dumps(asdict(self), indent=2) + "\n")

    @classmethod
    def load(cls, path: Path) -> Crop:
        if not path.exists():
            raise FileNotFoundError(f"{path}: no crop file; run pose extraction (notebook 01) on the target first")
        return cls(**json.loads(path.read_text()))

    @classmethod
    def around(cls, people: list[Person], frame_size: tuple[int, int], image_size: int,
               margin: float = 0.12) -> Crop:
        """One square covering every keypoint of the video (robust percentiles), with a margin, inside the frame
        where it fits."""
        pts = np.concatenate([p.all_points() for p in people if p is not None] or [np.zeros((0, 2))])
        w, h = frame_size
        if len(pts) == 0:
            side = float(min(w, h))
            return cls((w - side) / 2, (h - side) / 2, side, image_size)
        lo = np.percentile(pts, 0.5, axis=0)
        hi = np.percentile(pts, 99.5, axis=0)
        center = (lo + hi) / 2
        side = float(max(hi - lo) * (1 + 2 * margin))
        side = max(side, 16.0)
        if side <= min(w, h):  # keep the square inside the frame when it fits (no black borders)
            x0 = float(np.clip(center[0] - side / 2, 0, w - side))
            y0 = float(np.clip(center[1] - side / 2, 0, h - side))
        else:
            x0, y0 = float(center[0] - side / 2), float(center[1] - side / 2)
        return cls(x0, y0, side, image_size)


def people_in_image(dataroot: str | Path, phase: str, names: list[str], width: int, height: int) -> list[Person]:
    """Each frame's person, mapped from original-frame pixels into the training images' pixels (``width`` x
    ``height``) with the crop saved by extraction; an empty :class:`Person` where the JSON has nobody."""
    kdir = Path(dataroot) / f"{phase}_keypoints"
    crop = Crop.load(kdir / "crop.json")
    sx, sy = width / crop.image_size, height / crop.image_size
    out = []
    for name in names:
        people = read_openpose_json(kdir / f"{name}_keypoints.json")
        p = crop.apply_person(people[0]) if people else Person()
        out.append(p.transformed(np.array([sx, sy], np.float32), (0.0, 0.0)))
    return out


# ------------------------------------------------------------------------------------------------------ summary
@dataclass
class ExtractionSummary:
    source: str
    total: int = 0
    written: int = 0
    no_person: int = 0
    multiple: int = 0
    unreadable: int = 0
    bad_json: int = 0
    ignored_files: list[str] = field(default_factory=list)
    messages: list[str] = field(default_factory=list)

    @property
    def detection_rate(self) -> float:
        return self.written / self.total if self.total else 0.0

    def to_dict(self) -> dict:
        d = asdict(self)
        d["detection_rate"] = round(self.detection_rate, 4)
        return d

    def __str__(self) -> str:
        lines = [f"{self.source}: {self.written} of {self.total} frames written "
                 f"({100 * self.detection_rate:.1f} %)"]
        for key in ("no_person", "multiple", "unreadable", "bad_json"):
            if getattr(self, key):
                lines.append(f"  skipped, {key.replace('_', ' ')}: {getattr(self, key)}")
        if self.ignored_files:
            lines.append(f"  ignored non-image files: {', '.join(self.ignored_files[:5])}"
                         + (" ..." if len(self.ignored_files) > 5 else ""))
        lines += [f"  {m}" for m in self.messages[:5]]
        return "\n".join(lines)


# ---------------------------------------------------------------------------------------------------- pipeline
def phase_dirs(dataroot: str | Path, phase: str) -> dict[str, Path]:
    root = Path(dataroot)
    return {"A": root / f"{phase}_A", "B": root / f"{phase}_B", "keypoints": root / f"{phase}_keypoints"}


def load_keypoint_folder(folder: str | Path) -> list[Person | None]:
    """Every ``*_keypoints.json`` of a folder (sorted), one person or ``None`` per frame."""
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder}: no such keypoint folder; run pose extraction on that video first")
    files = sorted(folder.glob("*_keypoints.json"))
    if not files:
        raise ValueError(f"{folder}: no *_keypoints.json files")
    out = []
    for f in files:
        people = read_openpose_json(f)
        out.append(people[0] if len(people) == 1 else None)
    return out


def _swap_into_place(staging: dict[str, Path], final: dict[str, Path]) -> None:
    """Replace the final folders by the staged ones; the old ones are removed only after all renames."""
    backups = {}
    for key, dst in final.items():
        if dst.exists():
            backups[key] = dst.with_name(f".{dst.name}.old")
            if backups[key].exists():
                shutil.rmtree(backups[key])
            os.replace(dst, backups[key])
    for key, src in staging.items():
        os.replace(src, final[key])
    for b in backups.values():
        shutil.rmtree(b, ignore_errors=True)


def extract(
    source: str | Path,
    dataroot: str | Path = "dataset",
    phase: str = "train",
    backend: str = "mediapipe",
    weights: str = "",
    keypoints_dir: str = "",
    image_size: int = 256,
    pose_format: str = "BODY_25",
    draw_face: bool = True,
    draw_hands: bool = True,
    smooth_window: int = 7,
    frame_step: int = 1,
    max_frames: int = 0,
    normalize_to: str = "",
    write_frames: bool = True,
    workers: int = 0,
    progress: bool = True,
) -> ExtractionSummary:
    """Run pose extraction on ``source`` and write aligned pairs under ``dataroot`` (see module docstring).

    ``normalize_to`` names a target's keypoint folder (e.g. ``dataset/train_keypoints``): poses are then mapped
    onto that target with global pose normalisation and drawn with the target's crop, ready for transfer.
    """
    src = FrameSource.open(source, frame_step, max_frames)
    if pose_format not in ("BODY_25", "COCO_18"):
        raise ValueError(f"unknown pose_format {pose_format!r}; use 'BODY_25' or 'COCO_18'")
    target_people, target_crop = None, None
    if normalize_to:  # check the target before any work
        target_people = load_keypoint_folder(normalize_to)
        target_crop = Crop.load(Path(normalize_to) / "crop.json")
    summary = ExtractionSummary(str(source), ignored_files=src.ignored_files())

    results = detect(src, backend, weights, keypoints_dir, draw_face, draw_hands, workers, progress)
    summary.total = len(results)
    for r in results:
        if r.status != "ok":
            setattr(summary, r.status, getattr(summary, r.status) + 1)
            if r.message:
                summary.messages.append(r.message)
    if summary.total == 0:
        raise ValueError(f"{source}: no frames could be read")

    seq = smooth_sequence([r.person for r in results], window=smooth_window)
    if target_people is not None:
        if sum(p is not None for p in seq) < 3:
            raise ValueError(f"{source}: too few frames with a person to normalise ({summary.no_person} had none)")
        seq = PoseNormalizer.fit(seq, target_people)(seq)
    ok = [(r, p) for r, p in zip(results, seq) if r.status == "ok" and p is not None]
    if not ok:
        raise ValueError(f"{source}: nobody was found in any of its {summary.total} frames; "
                         "check that a whole person is visible, or try another backend")
    crop = target_crop or Crop.around([p for _, p in ok], ok[0][0].size, image_size)
    if crop.image_size != image_size:
        crop = Crop(crop.x0, crop.y0, crop.side, image_size)

    final = phase_dirs(dataroot, phase)
    staging = {k: v.with_name(f".{v.name}.staging") for k, v in final.items()}
    if not write_frames:
        final.pop("B")
        staging.pop("B")
    for d in staging.values():
        shutil.rmtree(d, ignore_errors=True)
        d.mkdir(parents=True)

    def write_pair(frame_id: str, rgb: np.ndarray | None, person: Person) -> None:
        stick = render_pose([crop.apply_person(person)], image_size, image_size, pose_format, draw_face, draw_hands)
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
        crop.save(staging["keypoints"] / "crop.json")
        atomic_write_text(staging["keypoints"] / "summary.json", json.dumps(summary.to_dict(), indent=2) + "\n")
        _swap_into_place(staging, final)
    finally:
        for d in staging.values():
            shutil.rmtree(d, ignore_errors=True)
    return summary
