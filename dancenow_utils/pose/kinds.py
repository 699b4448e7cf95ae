"""Pose kinds for the metric breakdown: the poses the original project's negative results were about.

Everybody Dance Now's reproductions report failures on particular poses: crossed arms and hands in front of each
other (the overlap is not registered and the arms smear), and raised arms (rare in training footage). Every held-out
frame gets one kind, the first that applies, from its body keypoints alone (image pixels, BODY_25):

1. ``crossed arms``: the forearms (elbow to wrist) cross, or each wrist is past the body's midline on the other
   arm's side;
2. ``hands overlapping``: the wrists are closer than 40 % of the torso (neck to mid-hip) length;
3. ``arms raised``: a wrist is above the neck;
4. ``others``.
"""

from __future__ import annotations

import numpy as np

from dancenow_utils.config import POSE_KINDS  # the kinds' names live with the config keys that name them
from dancenow_utils.pose.formats import joint
from dancenow_utils.pose.keypoints import Person

HANDS_CLOSE = 0.4  # wrist distance, in torso lengths, under which the hands count as overlapping

_J = {n: joint(n) for n in ("Neck", "MidHip", "RShoulder", "LShoulder", "RElbow", "LElbow", "RWrist", "LWrist")}


def _segments_cross(p1: np.ndarray, p2: np.ndarray, q1: np.ndarray, q2: np.ndarray) -> bool:
    def side(a, b, c):
        return np.sign((b[0] - a[0]) * (c[1] - a[1]) - (b[1] - a[1]) * (c[0] - a[0]))

    return side(p1, p2, q1) * side(p1, p2, q2) < 0 and side(q1, q2, p1) * side(q1, q2, p2) < 0


def pose_kind(person: Person | None, min_conf: float = 0.1) -> str:
    """The kind of a pose (module docstring); ``others`` when the joints it needs are not all seen."""
    if person is None:
        return "others"
    body = person.body
    seen = {n: body[j, 2] > min_conf for n, j in _J.items()}
    if not all(seen.values()):
        return "others"
    p = {n: body[j, :2].astype(np.float64) for n, j in _J.items()}
    mid_x = p["Neck"][0]
    r_side = np.sign(p["RShoulder"][0] - mid_x)
    l_side = np.sign(p["LShoulder"][0] - mid_x)
    wrists_swapped = (r_side != 0 and l_side != 0 and np.sign(p["RWrist"][0] - mid_x) == l_side
                      and np.sign(p["LWrist"][0] - mid_x) == r_side)
    if wrists_swapped or _segments_cross(p["RElbow"], p["RWrist"], p["LElbow"], p["LWrist"]):
        return "crossed arms"
    torso = float(np.linalg.norm(p["Neck"] - p["MidHip"]))
    if torso > 0 and np.linalg.norm(p["RWrist"] - p["LWrist"]) < HANDS_CLOSE * torso:
        return "hands overlapping"
    if min(p["RWrist"][1], p["LWrist"][1]) < p["Neck"][1]:
        return "arms raised"
    return "others"


__all__ = ["HANDS_CLOSE", "POSE_KINDS", "pose_kind"]
