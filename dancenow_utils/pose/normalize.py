"""Global pose normalisation (Everybody Dance Now, section 3.2): map a source dancer into the target's frame.

For each video we find the ankle's closest (largest y) and farthest positions and the person's height there.
A source frame's scale is interpolated between the close and far height ratios by where its ankles are, and its
ankle level is mapped linearly from the source's ankle range onto the target's. Horizontally the source's
median hip position maps onto the target's. When a video's ankles hardly move in depth (a dancer on one spot)
one scale and one ankle level are used.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from dancenow_utils.pose.formats import joint
from dancenow_utils.pose.keypoints import Person

_HEAD = [joint(n) for n in ("Nose", "Neck", "REye", "LEye", "REar", "LEar")]
_FEET = [joint(n) for n in ("RAnkle", "LAnkle", "RHeel", "LHeel", "RBigToe", "LBigToe")]
_HIPS = [joint(n) for n in ("RHip", "LHip", "MidHip")]


def body_height(p: Person, min_conf: float = 0.05) -> float | None:
    """Head-to-feet height in pixels (arms excluded, so raised hands do not count); None if not visible."""
    b = p.body
    head = b[_HEAD][b[_HEAD, 2] > min_conf]
    feet = b[_FEET][b[_FEET, 2] > min_conf]
    if not len(head) or not len(feet):
        return None
    return float(feet[:, 1].max() - head[:, 1].min())


def hip_x(p: Person, min_conf: float = 0.05) -> float | None:
    h = p.body[_HIPS]
    h = h[h[:, 2] > min_conf]
    return float(h[:, 0].mean()) if len(h) else None


@dataclass
class VideoStats:
    """Where a person stands in a video: ankle range and heights at the close and far ends, hip centre."""

    ankle_close: float
    ankle_far: float
    height_close: float
    height_far: float
    center_x: float

    @classmethod
    def from_people(cls, people: list[Person | None], band: float = 0.05) -> VideoStats:
        rows = []
        for p in people:
            if p is None:
                continue
            a, h, x = p.ankle_y(), body_height(p), hip_x(p)
            if a is not None and h is not None and x is not None and h > 0:
                rows.append((a, h, x))
        if len(rows) < 3:
            raise ValueError(f"pose normalisation needs at least 3 frames with a full body, got {len(rows)}")
        arr = np.array(rows)
        ankle, height = arr[:, 0], arr[:, 1]
        close, far = np.percentile(ankle, 95), np.percentile(ankle, 5)
        tol = band * np.median(height)
        # heights near each end: a high percentile, so a frame crouching there does not define the height
        h_close = np.percentile(height[ankle >= close - tol], 90)
        h_far = np.percentile(height[ankle <= far + tol], 90)
        return cls(float(close), float(far), float(h_close), float(h_far), float(np.median(arr[:, 2])))

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class PoseNormalizer:
    """Maps source keypoints into the target video's frame (see module docstring)."""

    source: VideoStats
    target: VideoStats
    min_depth_range: float = 0.05  # ankle range (fraction of height) below which one scale is used

    @classmethod
    def fit(cls, source: list[Person | None], target: list[Person | None]) -> PoseNormalizer:
        return cls(VideoStats.from_people(source), VideoStats.from_people(target))

    def _depth_t(self, ankle: float) -> float | None:
        s = self.source
        span = s.ankle_close - s.ankle_far
        if span < self.min_depth_range * max(s.height_close, s.height_far):
            return None
        return float(np.clip((ankle - s.ankle_far) / span, 0.0, 1.0))

    def transform(self, p: Person) -> Person:
        s, t = self.source, self.target
        ankle = p.ankle_y()
        if ankle is None:
            ankle = (s.ankle_close + s.ankle_far) / 2
        w = self._depth_t(ankle)
        if w is None:  # one scale, one ankle level
            scale = (t.height_close + t.height_far) / (s.height_close + s.height_far)
            target_ankle = (t.ankle_close + t.ankle_far) / 2
            source_ankle = (s.ankle_close + s.ankle_far) / 2
            ankle_out = target_ankle + (ankle - source_ankle) * scale
        else:
            scale = (1 - w) * (t.height_far / s.height_far) + w * (t.height_close / s.height_close)
            ankle_out = t.ankle_far + w * (t.ankle_close - t.ankle_far)
        offset = (t.center_x - s.center_x * scale, ankle_out - ankle * scale)
        return p.transformed(scale, offset)

    def __call__(self, seq: list[Person | None]) -> list[Person | None]:
        return [None if p is None else self.transform(p) for p in seq]
