"""Shot cuts: where a video jumps to another camera, room or person.

A cut is a frame that differs from the one before it much more than its neighbours differ from theirs. The
change between two frames is the mean absolute difference of small HSV thumbnails (hue taken on its circle), in
[0, 1]. A frame starts a new shot when its change is at least :data:`MIN_CHANGE` and at least :data:`RATIO` times
the median change of the :data:`WINDOW` frames on each side (a median, so two cuts close together are both
found). Measured on the demo generator's hard footage in ``bench/RESULTS.md``.

Smoothing must not run across a cut and MediaPipe's tracker must not carry a person from one shot into the next,
so the extractor resets the tracker where :class:`ChangeMeter` sees a jump and skips the first
:data:`CUT_MARGIN` frames of every new shot.
"""

from __future__ import annotations

import cv2
import numpy as np

THUMB = 32  # thumbnail side in pixels
MIN_CHANGE = 0.05
RATIO = 5.0
WINDOW = 4
CUT_MARGIN = 2  # frames skipped from the start of each new shot (the tracker re-locks, smoothing restarts)


def thumbnail(rgb: np.ndarray) -> np.ndarray:
    """A small HSV thumbnail (uint8) of a frame: what :func:`change` compares."""
    small = cv2.resize(rgb, (THUMB, THUMB), interpolation=cv2.INTER_AREA)
    return cv2.cvtColor(np.ascontiguousarray(small), cv2.COLOR_RGB2HSV)


def change(a: np.ndarray, b: np.ndarray) -> float:
    """How much two thumbnails differ, in [0, 1]."""
    d = np.abs(a.astype(np.int16) - b.astype(np.int16)).astype(np.float32)
    d[..., 0] = np.minimum(d[..., 0], 180 - d[..., 0]) * (255 / 90)  # hue is an angle (OpenCV: 0..179)
    return float(d.mean() / 255)


def find_cuts(changes: list[float] | np.ndarray) -> list[int]:
    """Positions that start a new shot, given each frame's change from the frame before (NaN: unknown)."""
    c = np.nan_to_num(np.asarray(changes, np.float64), nan=0.0)
    cuts = []
    for i in range(1, len(c)):
        if c[i] < MIN_CHANGE:
            continue
        around = np.r_[c[max(1, i - WINDOW): i], c[i + 1: i + 1 + WINDOW]]
        if c[i] >= RATIO * (float(np.median(around)) if len(around) else 0.0) + 1e-9:
            cuts.append(i)
    return cuts


class ChangeMeter:
    """Frame-by-frame change scores, and a one-sided guess (past frames only) of whether a frame is a cut."""

    def __init__(self) -> None:
        self.previous: np.ndarray | None = None
        self.recent: list[float] = []

    def __call__(self, rgb: np.ndarray) -> tuple[float, bool]:
        """``(change from the previous frame or NaN, likely a cut)``."""
        thumb = thumbnail(rgb)
        value = float("nan") if self.previous is None else change(self.previous, thumb)
        self.previous = thumb
        if np.isnan(value):
            return value, False
        likely = value >= MIN_CHANGE and value >= RATIO * (np.median(self.recent) if self.recent else 0.0)
        self.recent = (self.recent + [value])[-WINDOW:]
        return value, bool(likely)
