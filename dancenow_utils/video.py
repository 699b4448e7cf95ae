"""Video and GIF I/O with OpenCV: read frames as RGB, write mp4 atomically, count frames."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path

import cv2
import numpy as np

from dancenow_utils.io_utils import atomic_path

VIDEO_EXTENSIONS = (".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg", ".gif")


def open_video(path: str | Path) -> cv2.VideoCapture:
    """Open a video for reading; errors name the file and the fix."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such video file")
    cap = cv2.VideoCapture(str(path))
    ok, _ = cap.read() if cap.isOpened() else (False, None)
    if not ok:
        cap.release()
        raise ValueError(f"{path}: OpenCV cannot decode this video; re-encode it as H.264 mp4 "
                         "(e.g. `ffmpeg -i in.mov -c:v libx264 out.mp4`) or pass a folder of frames")
    cap.set(cv2.CAP_PROP_POS_FRAMES, 0)
    return cap


def read_frames(path: str | Path, frame_step: int = 1, max_frames: int = 0,
                start: int = 0) -> Iterator[tuple[int, np.ndarray]]:
    """Yield ``(frame_index, rgb)`` for every ``frame_step``-th frame from frame ``start`` on, at most
    ``max_frames`` (0 = all). Skipped leading frames are only grabbed, not converted."""
    if frame_step < 1:
        raise ValueError(f"frame_step must be >= 1, got {frame_step}")
    cap = open_video(path)
    try:
        index = yielded = 0
        while index < start and cap.grab():
            index += 1
        while True:
            ok, bgr = cap.read()
            if not ok:
                break
            if (index - start) % frame_step == 0:
                yield index, cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
                yielded += 1
                if max_frames and yielded >= max_frames:
                    break
            index += 1
    finally:
        cap.release()


def count_frames(path: str | Path) -> int:
    """Number of decodable frames (decodes the whole video: exact, unlike the container's header)."""
    return sum(1 for _ in read_frames(path))


def write_video(path: str | Path, frames: Iterable[np.ndarray], fps: float = 30.0) -> int:
    """Write RGB frames to an mp4 (MPEG-4, plays in browsers that accept it and in OpenCV); atomic.

    Returns the number of frames written. An empty iterable is an error: no empty video is left behind.
    """
    path = Path(path)
    n = 0
    with atomic_path(path) as tmp:
        writer = None
        try:
            for frame in frames:
                frame = np.ascontiguousarray(frame)
                if writer is None:
                    h, w = frame.shape[:2]
                    writer = cv2.VideoWriter(str(tmp), cv2.VideoWriter_fourcc(*"mp4v"), float(fps), (w, h))
                    if not writer.isOpened():
                        raise OSError(f"{path}: OpenCV could not open an mp4 writer")
                writer.write(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
                n += 1
        finally:
            if writer is not None:
                writer.release()
        if n == 0:
            raise ValueError(f"{path}: no frames to write")
    return n


def write_gif(path: str | Path, frames: list[np.ndarray], fps: float = 10.0, max_side: int = 0) -> None:
    """Write an animated GIF (looping), optionally downscaled so its longer side is ``max_side``."""
    from PIL import Image

    if not frames:
        raise ValueError(f"{path}: no frames to write")
    images = []
    for f in frames:
        if max_side and max(f.shape[:2]) > max_side:
            s = max_side / max(f.shape[:2])
            f = cv2.resize(f, (round(f.shape[1] * s), round(f.shape[0] * s)), interpolation=cv2.INTER_AREA)
        images.append(Image.fromarray(f))
    with atomic_path(path) as tmp:
        images[0].save(tmp, format="GIF", save_all=True, append_images=images[1:], duration=int(1000 / fps), loop=0)

