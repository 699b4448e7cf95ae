"""Detection for pose extraction: people in every frame of a source, with a status per frame.

Worker processes take one contiguous part of the source each (MediaPipe's tracking stays useful) and report
progress through a queue. Frames with nobody, several people, unreadable images, bad or missing JSON get a status
and a message naming the frame instead of a person. For a sequence (a video) every frame's change from the one
before is measured too (:mod:`~dancenow_utils.pose.cuts`), and the tracker is reset where the picture jumps.

OpenPose JSON files are found under the frame's own name (``<frame id>_keypoints.json``) or, for a video, under
OpenPose's name for its frames (``<video name>_<12-digit frame number>_keypoints.json``).
"""

from __future__ import annotations

import contextlib
import os
import queue as queue_module
import re
from collections import defaultdict
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from multiprocessing import get_context
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from dancenow_utils.pose.cuts import ChangeMeter, change, find_cuts
from dancenow_utils.pose.keypoints import MIN_CONF, Person, read_openpose_json
from dancenow_utils.pose.mediapipe_backend import MULTI_PERSON_BACKFILL
from dancenow_utils.pose.openpose_backend import OpenPoseEstimator
from dancenow_utils.pose.sources import FrameSource

BACKENDS = ("mediapipe", "openpose", "openpose_json")


# why a frame gave no pair, in the order summaries list them
REASONS = {"no_person": "no person", "multiple": "several people", "no_upper_body": "no upper body",
           "unreadable": "unreadable image", "bad_json": "bad JSON", "missing_json": "missing JSON",
           "near_cut": "next to a shot cut"}
UPPER_BODY = (0, 1, 2, 5)  # BODY_25 nose, neck, shoulders: a frame without any of them shows legs only


@dataclass
class FrameResult:
    pos: int
    frame_id: str
    status: str  # "ok" or one of REASONS
    person: Person | None = None
    size: tuple[int, int] = (0, 0)  # (width, height) of the original frame
    message: str = ""
    change: float = float("nan")  # sequences: how much the frame differs from the one before (pose.cuts)
    thumb: np.ndarray | None = None  # first and last frame of a worker's part: to measure change across parts


class KeypointFiles:
    """Finds a frame's OpenPose JSON in ``folder``: ``<frame id>_keypoints.json``, or for a video's frame number
    ``n`` OpenPose's own ``<video>_<n as 12 digits>_keypoints.json`` (the files of ``video_stem``, or of the only
    video whose files the folder holds)."""

    NUMBERED = re.compile(r"^(.*)_(\d{12})_keypoints\.json$")

    def __init__(self, folder: str | Path, video_stem: str | None = None) -> None:
        self.folder = Path(folder)
        self.numbered: dict[int, Path] = {}
        if video_stem is not None:
            by_video: dict[str, dict[int, Path]] = defaultdict(dict)
            for f in self.folder.glob("*_keypoints.json"):
                m = self.NUMBERED.match(f.name)
                if m:
                    by_video[m.group(1)][int(m.group(2))] = f
            if video_stem in by_video:
                self.numbered = by_video[video_stem]
            elif len(by_video) == 1:
                self.numbered = next(iter(by_video.values()))

    def find(self, frame_id: str, index: int | None = None) -> Path | None:
        exact = self.folder / f"{frame_id}_keypoints.json"
        if exact.exists():
            return exact
        return self.numbered.get(index) if index is not None else None

    def describe(self, frame_id: str, index: int | None = None) -> str:
        names = f"{frame_id}_keypoints.json" + (f" or <video>_{index:012d}_keypoints.json" if index is not None else "")
        return f"{frame_id}: no {names} in {self.folder}"


def _video_index(frame_id: str) -> int | None:
    tail = frame_id.rsplit("_", 1)[-1]
    return int(tail) if frame_id.startswith("frame_") and tail.isdigit() else None


def _make_estimator(backend: str, weights: str, face: bool, hands: bool, video: bool):
    if backend == "mediapipe":
        from dancenow_utils.pose.mediapipe_backend import MediaPipeEstimator

        # tracking mode for videos; still-image mode for folders (their images need not be consecutive)
        return MediaPipeEstimator(face=face, hands=hands, video=video)
    if backend == "openpose":

        return OpenPoseEstimator(weights, hands=hands)
    raise ValueError(f"unknown backend {backend!r}; choose one of {BACKENDS}")


def _classify(pos: int, frame_id: str, people: list[Person], size: tuple[int, int]) -> FrameResult:
    if not people:
        return FrameResult(pos, frame_id, "no_person", size=size, message=f"{frame_id}: nobody found")
    if len(people) > 1:
        return FrameResult(pos, frame_id, "multiple", size=size, message=f"{frame_id}: {len(people)} people")
    if not has_upper_body(people[0], size):
        return FrameResult(pos, frame_id, "no_upper_body", size=size,
                           message=f"{frame_id}: no head or shoulders in the frame (legs only): the stick figure's "
                                   "upper body would be invented")
    return FrameResult(pos, frame_id, "ok", people[0], size)


def has_upper_body(person: Person, size: tuple[int, int], margin: float = 0.05) -> bool:
    """Whether a confident nose, neck or shoulder lies in the frame (``size``: width, height; ``margin``: how far
    beyond an edge still counts). A detector's guess for an upper body out of view lies outside, or is not
    confident."""
    width, height = size
    upper = person.body[list(UPPER_BODY)]
    seen = (upper[:, 2] > MIN_CONF) & (upper[:, 0] >= -margin * width) & (upper[:, 0] <= (1 + margin) * width) \
        & (upper[:, 1] >= -margin * height) & (upper[:, 1] <= (1 + margin) * height)
    return bool(seen.any()) or not width or not height


def _detect_chunk(args: tuple, progress=None) -> list[FrameResult]:
    """Detect people in positions ``[start, stop)`` with one estimator; ``progress`` (a callable or a queue)
    is told how many frames were done, every few frames."""
    source, start, stop, backend, weights, keypoints_dir, face, hands, sequence = args
    report = progress.put if hasattr(progress, "put") else progress
    out: list[FrameResult] = []
    pending = 0
    estimator = (None if backend == "openpose_json"
                 else _make_estimator(backend, weights, face, hands, sequence))
    files = (KeypointFiles(keypoints_dir, source.path.stem if source.is_video else None)
             if backend == "openpose_json" else None)
    meter = ChangeMeter() if sequence else None
    try:
        for pos, frame_id, rgb in source.frames(start, stop):
            value, jump = meter(rgb) if meter is not None and rgb is not None else (float("nan"), False)
            if jump and hasattr(estimator, "reset"):
                estimator.reset()  # another shot: the tracker must not follow the previous shot's person
            result = _detect_one(estimator, files, pos, frame_id, rgb, source.is_video)
            result.change = value
            if meter is not None and rgb is not None and (not out or (stop is not None and pos == stop - 1)):
                result.thumb = meter.previous
            out.append(result)
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


def _detect_one(estimator, files: KeypointFiles | None, pos: int, frame_id: str, rgb: np.ndarray | None,
                is_video: bool = False) -> FrameResult:
    if rgb is None:
        return FrameResult(pos, frame_id, "unreadable", message=f"{frame_id}: unreadable image (corrupt or empty)")
    size = (rgb.shape[1], rgb.shape[0])
    if estimator is not None:
        return _classify(pos, frame_id, estimator(rgb), size)
    index = _video_index(frame_id) if is_video else None
    jpath = files.find(frame_id, index)
    if jpath is None:
        return FrameResult(pos, frame_id, "missing_json", size=size, message=files.describe(frame_id, index))
    try:
        people = read_openpose_json(jpath)
    except (ValueError, OSError) as exc:  # a malformed file skips its frame, with the reason
        return FrameResult(pos, frame_id, "bad_json", size=size, message=str(exc))
    people = [p for p in people if (p.body[:, 2] > 0).any()]  # OpenPose writes no all-zero person; others might
    return _classify(pos, frame_id, people, size)


def _link_parts(results: list[FrameResult]) -> list[FrameResult]:
    """Measure the change at the first frame of each worker's part from the last frame of the part before."""
    for prev, cur in zip(results[:-1], results[1:]):
        if np.isnan(cur.change) and prev.thumb is not None and cur.thumb is not None:
            cur.change = change(prev.thumb, cur.thumb)
    for r in results:
        r.thumb = None
    return results


def _backfill_multiple(results: list[FrameResult], backend: str, sequence: bool) -> list[FrameResult]:
    """In sequences, MediaPipe counts people every few frames: the frames just before a multi-person detection
    are treated as multi-person too, so no pair is written from a frame that may show someone else."""
    if backend != "mediapipe" or not sequence:
        return results
    flagged = [i for i, r in enumerate(results) if r.status == "multiple"]
    cuts = find_cuts([r.change for r in results])  # people are counted again at a cut: never look back past one
    for i in flagged:
        start = max([max(0, i - MULTI_PERSON_BACKFILL)] + [c for c in cuts if c <= i])
        for r in results[start: i]:
            if r.status == "ok":
                r.status, r.person = "multiple", None
                r.message = f"{r.frame_id}: just before a frame with several people (counted every few frames)"
    return results


def detect(source: FrameSource, backend: str = "mediapipe", weights: str = "", keypoints_dir: str = "",
           face: bool = True, hands: bool = True, workers: int = 0, progress: bool = True,
           sequence: bool | None = None) -> list[FrameResult]:
    """Detect people in every frame of ``source``; ``workers`` processes take one contiguous part each (so
    MediaPipe's tracking stays useful), reporting progress through a queue. ``sequence`` (default: videos yes,
    image folders no) uses MediaPipe's tracking and measures each frame's change for cut detection."""
    sequence = source.is_video if sequence is None else bool(sequence)
    if backend not in BACKENDS:
        raise ValueError(f"unknown backend {backend!r}; choose one of {BACKENDS}")
    if backend == "openpose_json" and not Path(keypoints_dir or "-").is_dir():
        raise FileNotFoundError(f"{keypoints_dir or '(empty)'}: keypoints_dir must be a folder of OpenPose JSON "
                                "files named <frame id>_keypoints.json")
    n = len(source)
    if workers <= 0:  # MediaPipe already keeps two cores busy (bench/RESULTS.md): one worker per two cores
        workers = min(4, max(1, (os.cpu_count() or 1) // 2)) if n >= 200 else 1
    common = (backend, weights, keypoints_dir, face, hands, sequence)
    bar = tqdm(total=n, desc=f"detecting poses ({workers} worker{'s' if workers > 1 else ''})",
               disable=not progress)
    try:
        if workers == 1:
            return _backfill_multiple(_link_parts(_detect_chunk((source, 0, None, *common), bar.update)), backend,
                                      sequence)
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
        return _backfill_multiple(_link_parts(sorted(results, key=lambda r: r.pos)), backend, sequence)
    finally:
        bar.close()
