"""Global pose normalisation (Everybody Dance Now, section 3.2): map a source dancer into the target's frame.

Two methods, picked with ``PoseNormalizer.fit(source, target, method=...)``; both give every source frame one
scale ``s`` and one offset, applied to all its keypoints (body, face, hands).

``"edn"`` follows carolineec/EverybodyDanceNow's ``data_prep/graph_posenorm.py``:

- A frame is measured when its head (the nose, else the midpoint of both ears) and both ankles are detected
  (confidence > 0). Its *ankle position* is the y of the lower ankle in the image (the larger y); its *height* is
  the straight-line distance from the head point to the midpoint of the two ankles.
- Per video: *close* = the largest ankle position over the video (a maximum, no percentile); *median* = the median
  ankle position; *far* = the smallest ankle position that lies above the median by less than
  ``median_frac`` (0.5) x (close - median), i.e. in ``(median - 0.5 (close - median), median)``.
- If the source's close-far range is smaller than the target's, the target's range is shrunk to the source's
  length around its middle, so ankle positions are only ever translated (slope 1) or compressed, never stretched.
- Heights at each end: the largest height among frames whose ankle position lies within ``height_band`` (5 %) of
  that video's close-far range from the end. The close height is replaced by the video's largest height when it
  is more than ``close_reset`` (10 %) below it (the far height never is). ``scale_close`` and ``scale_far`` are
  target / source heights.
- A source frame at ankle position ``a`` gets ``p = (a - far_s) / (close_s - far_s)`` (not clipped: positions
  beyond the range extrapolate), scale ``s = scale_far + p (scale_close - scale_far)`` and target ankle position
  ``m = far_t + p (close_t - far_t)``.
- Keypoints are scaled about a fixed anchor, the frame's horizontal centre (``width / 2``) at the lower-ankle y of
  the first measured source frame, then shifted vertically by ``m - a``: ``xy' = anchor + s (xy - anchor) +
  (0, m - a)``. There is no horizontal re-centring: the source keeps its place in the frame. The ankle lands on
  ``m`` only at the anchor's height (elsewhere it is off by ``(s - 1) (a - anchor_y)``).
- A frame that cannot be measured reuses the last measured frame's scale and shift.
- Order: EDN normalises raw keypoints, then median-smooths them (window 7); see :func:`normalize_sequence`, which
  also explains why its statistics come from the smoothed source here.

``"project"`` (this project's first version):

- Ankle position = the mean y of the detected ankles (confidence > 0.05); height = the vertical extent from the
  highest head point (nose, neck, eyes, ears) to the lowest foot point (ankles, heels, big toes).
- close / far = the 95th / 5th percentiles of the ankle position; the height at each end = the 90th percentile of
  the heights of frames whose ankle position lies within 5 % of the video's median height (in pixels) of that
  end (a few bad detections or a crouch there do not define it).
- Interpolation is clipped to the close-far range (no extrapolation), and the source's ankle range is mapped onto
  the target's whole range (stretched or compressed). When the source's ankles move less than 5 % of its height
  in depth, one scale (sum of the target's two end heights / sum of the source's) is used, and the ankle's offset
  from the source's mid ankle level is scaled onto the target's mid level.
- The scaled skeleton is placed by its ankle: the frame's ankle lands exactly on the mapped ankle position, and the
  source's median hip x lands on the target's (horizontal re-centring).
- Order: smooth first, then normalise the smoothed keypoints.

The default is ``"project"``. On the demo with MediaPipe detections EDN's method fits the scale and the floor
better, but it never re-centres: the demo's off-centre source then puts a keypoint outside the target's crop in
73 % of frames (43 % with the project's), and short noisy clips of a dancer moving in depth get 4.6 % median scale
error (1.5 %); bench/RESULTS.md. Pass ``method="edn"`` to reproduce the paper's code.

Where EDN's code would crash or divide by zero (a zero close-far range, no position inside the far window, an
empty height band) this module keeps going: see :class:`EdnVideoStats` and :class:`EdnNormalizer`. Other
departures from EDN's script: it samples frames at random with replacement for its statistics (we use every frame
once); it drops source frames before the first measured one (we map them with that frame's values); it works on
OpenPose's BODY_23 layout (we on BODY_25, the same joints); both methods need 3 measured frames per video.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

import numpy as np

from dancenow_utils.pose.formats import joint
from dancenow_utils.pose.keypoints import Person
from dancenow_utils.pose.smoothing import smooth_sequence

METHODS = ("edn", "project")
DEFAULT_METHOD = "project"  # measured on the demo: keeps the source inside the target's crop (docs)

_HEAD = [joint(n) for n in ("Nose", "Neck", "REye", "LEye", "REar", "LEar")]
_FEET = [joint(n) for n in ("RAnkle", "LAnkle", "RHeel", "LHeel", "RBigToe", "LBigToe")]
_HIPS = [joint(n) for n in ("RHip", "LHip", "MidHip")]
_NOSE, _REAR, _LEAR = joint("Nose"), joint("REar"), joint("LEar")
_RANKLE, _LANKLE = joint("RAnkle"), joint("LAnkle")


def check_method(method: str) -> str:
    """Return ``method`` if it is a known normalisation method, else raise a ValueError listing the valid ones."""
    if method not in METHODS:
        raise ValueError(f"pose normalisation method={method!r} is unknown; use one of {', '.join(map(repr, METHODS))}")
    return method


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


# ----------------------------------------------------------------------------------------------------- "project"

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


@dataclass
class ProjectNormalizer:
    """The ``"project"`` method (see module docstring): robust percentiles, clipped, horizontally re-centred."""

    source: VideoStats
    target: VideoStats
    min_depth_range: float = 0.05  # ankle range (fraction of height) below which one scale is used

    @classmethod
    def fit(cls, source: list[Person | None], target: list[Person | None]) -> ProjectNormalizer:
        return cls(_stats(VideoStats.from_people, source, "source"), _stats(VideoStats.from_people, target, "target"))

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


# --------------------------------------------------------------------------------------------------------- "edn"

def edn_measure(p: Person) -> tuple[float, float] | None:
    """EDN's per-frame ``(height, ankle position)``, or None when the head or an ankle is missing.

    Head = the nose, else the midpoint of both ears; height = distance from the head to the midpoint of the two
    ankles; ankle position = the larger (lower in the image) ankle y. EDN's code tests the left *ear* where it
    means the left ankle; we require both ankles, since a missing ankle (0, 0) would corrupt the height.
    """
    b = p.body
    if b[_NOSE, 2] > 0:
        head = b[_NOSE, :2]
    elif b[_REAR, 2] > 0 and b[_LEAR, 2] > 0:
        head = (b[_REAR, :2] + b[_LEAR, :2]) / 2
    else:
        return None
    if b[_RANKLE, 2] <= 0 or b[_LANKLE, 2] <= 0:
        return None
    feet = (b[_RANKLE, :2] + b[_LANKLE, :2]) / 2
    return float(np.hypot(*(head - feet))), float(max(b[_RANKLE, 1], b[_LANKLE, 1]))


@dataclass
class EdnVideoStats:
    """One video's EDN statistics: per measured frame ankle position and height; close, median and far."""

    ankles: np.ndarray
    heights: np.ndarray
    close: float
    median: float
    far: float

    @classmethod
    def from_people(cls, people: list[Person | None], median_frac: float = 0.5) -> EdnVideoStats:
        rows = [m for m in (edn_measure(p) for p in people if p is not None) if m is not None and m[0] > 0]
        if len(rows) < 3:
            raise ValueError("pose normalisation needs at least 3 frames with the head (nose or both ears) and both "
                             f"ankles, got {len(rows)}")
        heights, ankles = (np.array(c, np.float64) for c in zip(*rows))
        close, median = float(ankles.max()), float(np.median(ankles))
        reach = median_frac * (close - median)
        above = ankles[(ankles < median) & (ankles > median - reach)]
        # EDN: the farthest such position; none (a dancer on one spot) would crash EDN's argmax: use the median
        far = float(above.min()) if len(above) else median
        return cls(ankles, heights, close, median, far)

    def height_near(self, position: float, band: float) -> float:
        """The largest height among frames whose ankle position is within ``band`` pixels of ``position``
        (the nearest frames when none is: EDN would then use a height of 0)."""
        dist = np.abs(self.ankles - position)
        near = dist <= band
        if not near.any():
            near = dist <= dist.min()
        return float(self.heights[near].max())


@dataclass
class EdnNormalizer:
    """The ``"edn"`` method (see module docstring); the fitted numbers are EDN's ``norm_params.txt`` plus the anchor.

    Where EDN's code would fail this one keeps going: a source range of zero (every frame at one ankle position)
    uses ``scale_close`` and a pure vertical shift (the limit of EDN's rule for a range smaller than the
    target's); an empty height band takes the frames nearest to that end.
    """

    source_close: float
    source_far: float
    target_close: float
    target_far: float
    scale_close: float
    scale_far: float
    anchor: tuple[float, float]

    @classmethod
    def fit(cls, source: list[Person | None], target: list[Person | None], frame_width: float | None = None,
            median_frac: float = 0.5, height_band: float = 0.05, close_reset: float = 0.1) -> EdnNormalizer:
        """Fit on the source and target sequences (raw keypoints, as EDN does).

        ``frame_width`` is the frames' width in pixels: the anchor's x is its half. Without it the source's
        median hip x (else its mean ankle x) is used, which equals EDN's anchor for a dancer centred in the frame.
        """
        s = _stats(lambda ppl: EdnVideoStats.from_people(ppl, median_frac), source, "source")
        t = _stats(lambda ppl: EdnVideoStats.from_people(ppl, median_frac), target, "target")
        t_close, t_far = t.close, t.far
        if s.close - s.far < t.close - t.far:  # EDN's "small range": only translate the source's ankle range
            middle, half = (t.close + t.far) / 2, (s.close - s.far) / 2
            t_close, t_far = middle + half, middle - half

        def end_heights(v: EdnVideoStats, close: float, far: float) -> tuple[float, float]:
            band = height_band * (close - far)
            h_close, h_far = v.height_near(close, band), v.height_near(far, band)
            tallest = float(v.heights.max())
            if tallest - h_close > close_reset * tallest:
                h_close = tallest
            return h_close, h_far

        th_close, th_far = end_heights(t, t_close, t_far)
        sh_close, sh_far = end_heights(s, s.close, s.far)
        measured = [p for p in source if p is not None and edn_measure(p) is not None]
        first = edn_measure(measured[0])
        s_ankle_x = [p.body[[_RANKLE, _LANKLE], 0].mean() for p in measured]
        if frame_width:
            anchor_x = frame_width / 2
        else:
            xs = [x for x in (hip_x(p) for p in source if p is not None) if x is not None]
            anchor_x = float(np.median(xs)) if xs else float(np.mean(s_ankle_x))
        return cls(s.close, s.far, t_close, t_far, th_close / sh_close, th_far / sh_far, (anchor_x, first[1]))

    def params(self, ankle: float) -> tuple[float, float]:
        """``(scale, vertical shift)`` for a source frame whose ankle position is ``ankle``."""
        span = self.source_close - self.source_far
        if span <= 0:
            return self.scale_close, self.target_close - self.source_close
        p = (ankle - self.source_far) / span  # not clipped: EDN extrapolates
        scale = self.scale_far + p * (self.scale_close - self.scale_far)
        target_ankle = self.target_far + p * (self.target_close - self.target_far)
        return scale, target_ankle - ankle

    def apply(self, p: Person, scale: float, shift: float) -> Person:
        ax, ay = self.anchor
        return p.transformed(scale, (ax - scale * ax, ay - scale * ay + shift))

    def __call__(self, seq: list[Person | None]) -> list[Person | None]:
        measured = [None if p is None else edn_measure(p) for p in seq]
        first = next((m[1] for m in measured if m is not None), self.source_close)
        last = self.params(first)  # frames before the first measured one (EDN drops them) use its values
        out: list[Person | None] = []
        for p, m in zip(seq, measured):
            if p is None:
                out.append(None)
                continue
            if m is not None:
                last = self.params(m[1])
            out.append(self.apply(p, *last))
        return out


# ------------------------------------------------------------------------------------------------------ choosing

@dataclass
class PoseNormalizer:
    """A fitted global pose normalisation, ``"edn"`` or ``"project"`` (see module docstring); call it on a
    sequence of source people to map them into the target's frame."""

    method: str
    mapping: EdnNormalizer | ProjectNormalizer

    @classmethod
    def fit(cls, source: list[Person | None], target: list[Person | None], method: str = DEFAULT_METHOD,
            frame_width: float | None = None) -> PoseNormalizer:
        """Fit ``method`` on the source and target sequences; ``frame_width`` (source frames, pixels) places the
        ``"edn"`` scaling anchor and is ignored by ``"project"``."""
        if check_method(method) == "edn":
            return cls(method, EdnNormalizer.fit(source, target, frame_width))
        return cls(method, ProjectNormalizer.fit(source, target))

    def __call__(self, seq: list[Person | None]) -> list[Person | None]:
        return self.mapping(seq)


def normalize_sequence(raw: list[Person | None], target: list[Person | None], method: str = DEFAULT_METHOD,
                       smooth_window: int = 7, frame_width: float | None = None) -> list[Person | None]:
    """Smooth and normalise a raw source sequence in the order ``method`` prescribes.

    ``"edn"`` maps the raw keypoints, then smooths them (EDN's ``graph_posenorm.py`` order). Its statistics are
    taken from the smoothed source, because ``target`` is the target's stored keypoints, which are smoothed: EDN
    takes both from raw keypoints, and a raw source against a smoothed target inflates the source's maxima
    (4 % scale error with detector noise, bench/RESULTS.md). ``"project"`` smooths first, then fits on and maps
    the smoothed keypoints.
    """
    smoothed = smooth_sequence(raw, window=smooth_window)
    if check_method(method) == "edn":
        return smooth_sequence(PoseNormalizer.fit(smoothed, target, method, frame_width)(raw), window=smooth_window)
    return PoseNormalizer.fit(smoothed, target, method, frame_width)(smoothed)


_S = TypeVar("_S")


def _stats(make: Callable[[list[Person | None]], _S], people: list[Person | None], which: str) -> _S:
    """Run a statistics constructor, naming the video (source or target) in its error."""
    try:
        return make(people)
    except ValueError as exc:
        raise ValueError(f"{which} video: {exc}") from None
