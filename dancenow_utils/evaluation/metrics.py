"""Quality measures as pure functions on arrays (no files, no models): what cross-validation reports.

- ``ssim``, ``psnr``: full frame; ``body_ssim``: on a box around the body keypoints; ``face_ssim``: on the face box
- ``pose_error``: mean distance between expected keypoints and keypoints re-detected on a frame
- ``flicker``: mean absolute change between consecutive generated frames over the same for the real frames
  (1 = as steady as the real video)
- :class:`NearestNeighbour`: the retrieval baseline, the training frame whose pose is closest
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from dancenow_utils.pose.keypoints import MIN_CONF as DRAWN_CONF
from dancenow_utils.pose.kinds import POSE_KINDS

BODY_JOINTS = list(range(19))  # BODY_25 without the feet points, which MediaPipe only approximates
# a joint is compared only when both poses are this sure of it: stricter than pose.keypoints.MIN_CONF (what is
# drawn), so that a guessed joint does not count as a mismatch; pose coverage uses the same threshold
MIN_CONF = 0.3


def ssim(a: np.ndarray, b: np.ndarray) -> float:
    """SSIM of two RGB uint8 images (1 for identical images)."""
    win = min(7, a.shape[0], a.shape[1])
    win -= 1 - win % 2
    return float(structural_similarity(a, b, channel_axis=2, data_range=255, win_size=max(3, win)))


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    """PSNR in dB (capped at 100 for identical images)."""
    if np.array_equal(a, b):
        return 100.0
    return float(peak_signal_noise_ratio(a, b, data_range=255))


def body_box(body: np.ndarray, shape: tuple[int, int], margin: float = 0.1) -> tuple[int, int, int, int]:
    """``(x0, y0, x1, y1)`` around the confident body keypoints plus a margin, clipped to the image."""
    pts = body[body[:, 2] > DRAWN_CONF, :2]
    h, w = shape
    if len(pts) == 0:
        return 0, 0, w, h
    lo, hi = pts.min(0), pts.max(0)
    pad = margin * max(hi - lo)
    x0, y0 = np.floor(np.maximum(lo - pad, 0)).astype(int)
    x1, y1 = np.ceil(np.minimum(hi + pad, [w, h])).astype(int)
    return int(x0), int(y0), max(int(x1), int(x0) + 8), max(int(y1), int(y0) + 8)


def body_ssim(a: np.ndarray, b: np.ndarray, body: np.ndarray) -> float:
    x0, y0, x1, y1 = body_box(body, a.shape[:2])
    return ssim(a[y0:y1, x0:x1], b[y0:y1, x0:x1])


def face_ssim(a: np.ndarray, b: np.ndarray, box: tuple[int, int] | None, side: int) -> float | None:
    """SSIM on the face box (the face stage's crop), None without a face box."""
    if box is None:
        return None
    x, y = box
    return ssim(a[y: y + side, x: x + side], b[y: y + side, x: x + side])


def pose_error(expected: np.ndarray, found: np.ndarray | None, joints: list[int] = BODY_JOINTS) -> float | None:
    """Mean pixel distance over the joints confident in both; None when nothing was found."""
    if found is None:
        return None
    ok = (expected[joints, 2] > MIN_CONF) & (found[joints, 2] > MIN_CONF)
    if not ok.any():
        return None
    d = np.linalg.norm(expected[joints][ok, :2] - found[joints][ok, :2], axis=1)
    return float(d.mean())


def flicker(generated: list[np.ndarray], real: list[np.ndarray]) -> float:
    """Mean |frame_t+1 - frame_t| of the generated sequence divided by the same for the real one."""
    g, r = Motion(), Motion()
    for frame in generated:
        g.add(frame)
    for frame in real:
        r.add(frame)
    return g.mean / r.mean if r.mean > 0 else float("nan")


@dataclass
class NearestNeighbour:
    """Retrieval baseline: the index of the training pose closest to the query pose (mean joint distance)."""

    poses: np.ndarray  # (N, J, 3) training body keypoints in image pixels

    def query(self, body: np.ndarray) -> int:
        xy, ok = body[BODY_JOINTS, :2], body[BODY_JOINTS, 2] > MIN_CONF
        train_xy, train_ok = self.poses[:, BODY_JOINTS, :2], self.poses[:, BODY_JOINTS, 2] > MIN_CONF
        both = train_ok & ok[None]
        d = np.linalg.norm(train_xy - xy[None], axis=2)
        d = np.where(both, d, np.nan)
        with np.errstate(all="ignore"):
            score = np.nanmean(d, axis=1) + 50.0 * (1 - both.mean(axis=1))  # penalise missing joints
        return int(np.nanargmin(score))


def frame_scores(fake: np.ndarray, real: np.ndarray, body: np.ndarray, found: np.ndarray | None) -> dict:
    """The per-frame scores of one generated (or retrieved) frame against the real one."""
    return {"ssim": ssim(fake, real), "psnr": psnr(fake, real), "body_ssim": body_ssim(fake, real, body),
            "pose_error_px": pose_error(body, found)}


def mean_of(rows: list[dict], key: str) -> float | None:
    """Mean of a column over the rows where it is known (None: nowhere), rounded for reports."""
    vals = [r[key] for r in rows if r.get(key) is not None]
    return round(float(np.mean(vals)), 4) if vals else None


def summarize(rows: list[dict], fakes_motion: float, reals_motion: float) -> dict:
    """The headline metrics of a cross-validation from its per-frame rows and the two sequences' motion."""
    keys = ("ssim", "psnr", "body_ssim", "pose_error_px", "nn_ssim", "nn_psnr", "nn_body_ssim", "nn_pose_error_px")
    metrics = {k: mean_of(rows, k) for k in keys}
    metrics["detection_rate"] = round(float(np.mean([r["detected"] for r in rows])), 4) if rows else None
    metrics["flicker"] = round(fakes_motion / reals_motion, 4) if reals_motion > 0 else None
    metrics["n_samples"] = len(rows)
    metrics["face_ssim"] = mean_of(rows, "face_ssim")
    metrics["by_pose_kind"] = by_pose_kind(rows)
    return metrics


BY_KIND_KEYS = ("ssim", "body_ssim", "face_ssim", "pose_error_px", "nn_ssim", "nn_body_ssim", "nn_pose_error_px")


def by_pose_kind(rows: list[dict]) -> dict[str, dict]:
    """Per pose kind (rows carry ``pose_kind``, :mod:`dancenow_utils.pose.kinds`): frames and mean scores."""
    out = {}
    for kind in POSE_KINDS:
        sel = [r for r in rows if r.get("pose_kind") == kind]
        out[kind] = {"n": len(sel), **{k: mean_of(sel, k) for k in BY_KIND_KEYS}}
    return out


def format_by_pose_kind(by_kind: dict[str, dict]) -> str:
    """The per-kind scores as a text table: GAN against retrieval for SSIM, body SSIM and the pose error."""
    def f(v):
        return "-" if v is None else f"{v:.3f}"

    lines = [f"{'pose kind':<18}{'n':>4}  {'SSIM (NN)':>15}  {'body SSIM (NN)':>15}  {'pose error px (NN)':>19}"]
    for kind, s in by_kind.items():
        lines.append(f"{kind:<18}{s['n']:>4}  {f(s['ssim']):>7} ({f(s['nn_ssim'])})  "
                     f"{f(s['body_ssim']):>7} ({f(s['nn_body_ssim'])})  "
                     f"{f(s['pose_error_px']):>10} ({f(s['nn_pose_error_px'])})")
    return "\n".join(lines)


class Motion:
    """Running mean of |frame_t+1 - frame_t| over a stream of frames (for :func:`summarize`'s flicker)."""

    def __init__(self) -> None:
        self.total, self.count, self.previous = 0.0, 0, None

    def add(self, frame: np.ndarray) -> None:
        f = frame.astype(np.float32)
        if self.previous is not None:
            self.total += float(np.abs(f - self.previous).mean())
            self.count += 1
        self.previous = f

    @property
    def mean(self) -> float:
        return self.total / self.count if self.count else 0.0


METRIC_KEYS = ("ssim", "psnr", "body_ssim", "pose_error_px", "detection_rate", "flicker", "nn_ssim", "nn_psnr",
               "nn_body_ssim", "nn_pose_error_px", "n_samples")
