"""Temporal keypoint smoothing: a confidence-aware median over time, with short gaps filled.

Everybody Dance Now smooths each joint with a median over 7 frames before rendering, using confident detections
only. Frames with no person (``None``) stay ``None``; a joint missing for at most ``max_gap`` frames between two
confident detections is filled by linear interpolation (its confidence is the lower of its neighbours').
"""

from __future__ import annotations

import warnings

import numpy as np

from dancenow_utils.pose.keypoints import PARTS, Person

_PARTS = PARTS


def smooth_track(track: np.ndarray, window: int = 7, min_conf: float = 0.05, max_gap: int = 4) -> np.ndarray:
    """Smooth a ``(T, J, C)`` keypoint track: ``C - 1`` coordinates (x, y, and depth where there is one), then the
    confidence; returns a new array."""
    track = np.asarray(track, np.float32)
    out = track.copy()
    T = len(track)
    if T == 0:
        return out
    ok = track[..., -1] > min_conf
    xy = np.where(ok[..., None], track[..., :-1], np.nan)
    conf = track[..., -1].copy()
    # fill short gaps by linear interpolation between confident neighbours
    if max_gap > 0:
        t = np.arange(T)
        for j in range(track.shape[1]):
            good = np.flatnonzero(ok[:, j])
            if len(good) < 2:
                continue
            for a, b in zip(good[:-1], good[1:]):
                if 1 < b - a <= max_gap + 1:
                    w = (t[a + 1:b] - a) / (b - a)
                    xy[a + 1:b, j] = (1 - w)[:, None] * xy[a, j] + w[:, None] * xy[b, j]
                    conf[a + 1:b, j] = min(conf[a, j], conf[b, j])
    if window > 1:
        half = window // 2
        padded = np.pad(xy, ((half, half), (0, 0), (0, 0)), constant_values=np.nan)
        windows = np.lib.stride_tricks.sliding_window_view(padded, window, axis=0)  # (T, J, C - 1, window)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN windows stay NaN
            med = np.nanmedian(windows, axis=-1)
        has = ~np.isnan(xy[..., 0])
        xy = np.where(has[..., None], med, np.nan)
    present = ~np.isnan(xy[..., 0])
    out[..., :-1] = np.where(present[..., None], xy, 0.0)
    out[..., -1] = np.where(present, conf, 0.0)
    return out


def smooth_sequence(seq: list[Person | None], window: int = 7, min_conf: float = 0.05,
                    max_gap: int = 4) -> list[Person | None]:
    """Smooth every part (body, face, hands) of a one-person sequence; ``None`` frames are kept as ``None``.

    Runs of consecutive frames with a person are smoothed separately, so no value leaks across a cut.
    """
    if window <= 1 and max_gap <= 0:
        return list(seq)
    out: list[Person | None] = [None if p is None else p.copy() for p in seq]
    idx = [i for i, p in enumerate(seq) if p is not None]
    runs, start = [], None
    for k, i in enumerate(idx):
        if start is None:
            start = i
        if k + 1 == len(idx) or idx[k + 1] != i + 1:
            runs.append((start, i + 1))
            start = None
    for a, b in runs:
        for part in _PARTS:
            arrays = [getattr(seq[i], part) for i in range(a, b)]
            if all(arr is None for arr in arrays):
                continue
            n = next(arr for arr in arrays if arr is not None).shape[0]
            stack = np.stack([np.zeros((n, 3), np.float32) if arr is None else arr for arr in arrays])
            sm = smooth_track(stack, window, min_conf, max_gap)
            depths = [seq[i].part_depth(part) for i in range(a, b)]
            sz = None
            if any(z is not None for z in depths):  # depth as its own track: frames without it count as missing
                zt = np.zeros((b - a, n, 2), np.float32)
                for k, z in enumerate(depths):
                    if z is not None:
                        zt[k, :, 0], zt[k, :, 1] = z, stack[k, :, 2]
                sz = smooth_track(zt, window, min_conf, max_gap)
            for k, i in enumerate(range(a, b)):
                keep = part == "body" or (sm[k, :, 2] > 0).any()
                setattr(out[i], part, sm[k] if keep else None)
                out[i].depth.pop(part, None)
                if keep and sz is not None and (sz[k, :, 1] > 0).any():
                    out[i].depth[part] = np.where(sm[k, :, 2] > 0, sz[k, :, 0], 0.0).astype(np.float32)
    return out
