"""Where the face is: Everybody Dance Now's face box, a square centred on the nose (or between the ears), from a
person's keypoints. The face GAN trains on these boxes and corrects them at inference."""

from __future__ import annotations

import numpy as np

from dancenow_utils.pose.formats import joint
from dancenow_utils.pose.keypoints import MIN_CONF, Person

NOSE, R_EAR, L_EAR = joint("Nose"), joint("REar"), joint("LEar")
HEAD_JOINTS = [joint(n) for n in ("Nose", "REye", "LEye", "REar", "LEar")]


def face_box_side(height: int) -> int:
    """EDN's 128 px box on 1024x512 frames, scaled with the frame height (even, at least 16)."""
    side = max(16, int(round(128 * height / 512)))
    return side + side % 2


def face_centre(person: Person, min_conf: float = MIN_CONF) -> tuple[float, float] | None:
    """EDN's face centre: the nose; else the middle of both ears; else the one ear seen. Where EDN would read
    an unseen ear, the mean of the face points (or of the other head joints) is used; None without any."""
    body = person.body
    seen = body[:, 2] > min_conf
    if seen[NOSE]:
        return float(body[NOSE, 0]), float(body[NOSE, 1])
    ears = [j for j in (R_EAR, L_EAR) if seen[j]]
    if ears:
        x, y = body[ears, :2].mean(axis=0)
        return float(x), float(y)
    pts = np.zeros((0, 2), np.float32)
    if person.face is not None:
        pts = person.face[person.face[:, 2] > min_conf, :2]
    if len(pts) == 0:
        pts = body[[j for j in HEAD_JOINTS if seen[j]], :2]
    if len(pts) == 0:
        return None
    x, y = pts.mean(axis=0)
    return float(x), float(y)


def face_box(person: Person, width: int, height: int, side: int, min_conf: float = MIN_CONF) -> tuple[int, int] | None:
    """Top-left corner of the face box, centred on :func:`face_centre` and shifted to stay inside the image
    (as EDN's boxes are). None when no head point is visible."""
    centre = face_centre(person, min_conf)
    if centre is None:
        return None
    cx, cy = centre
    x0 = int(np.clip(round(cx - side / 2), 0, max(0, width - side)))
    y0 = int(np.clip(round(cy - side / 2), 0, max(0, height - side)))
    return x0, y0
