"""Detection for pose extraction: people in every frame of a source, with a status per frame.

Worker processes take one contiguous part of the source each (MediaPipe's tracking stays useful) and report
progress through a queue. Frames with nobody, several people, unreadable images or bad JSON get a status and a
message instead of a person.
"""

from __future__ import annotations

import contextlib
import os
import queue as queue_module
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from multiprocessing import get_context
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from dancenow_utils.pose.keypoints import Person, read_openpose_json
from dancenow_utils.pose.mediapipe_backend import MULTI_PERSON_BACKFILL
from dancenow_utils.pose.sources import FrameSource

BACKENDS = ("mediapipe", "openpose", "openpose_json")


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
