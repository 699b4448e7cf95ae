"""Where the hands and forearms are in each training frame, for a reconstruction loss that weighs them more.

Hands are a few percent of a frame's pixels, so a loss averaged over the frame hardly notices when the generator
leaves one out, and hands in front of the shirt are the ones it drops (the original project's "a hand went
missing"; bench/RESULTS.md, issue 25). With ``hand_weight`` w > 0 the L1 term of every pixel inside
:func:`hand_map` counts ``1 + w`` times. The map comes from the frame's keypoints in training-image pixels: per
arm a thick line from the elbow to the wrist, and a disc over the hand (its keypoints' centre, out to the farthest
one plus a margin; a small disc at the wrist when the hand was not detected).
"""

from __future__ import annotations

import cv2
import numpy as np

from dancenow_utils.pose.formats import joint
from dancenow_utils.pose.keypoints import Person

SEEN = 0.1  # keypoint confidence above which a joint counts as found
SIDES = ("right", "left")


def _size(p: Person) -> float:
    """The person's torso length in pixels (neck to mid-hip; shoulder width where the hip is missing), or 0."""
    b = p.body
    for a, c in (("Neck", "MidHip"), ("RShoulder", "LShoulder")):
        ia, ic = joint(a), joint(c)
        if b[ia, 2] > SEEN and b[ic, 2] > SEEN:
            return float(np.linalg.norm(b[ia, :2] - b[ic, :2]))
    return 0.0


def hand_centre(p: Person, side: str) -> tuple[np.ndarray, float | None] | None:
    """Where one hand (``side`` ``"right"`` or ``"left"``) is: the centre of its seen keypoints and the distance to
    the farthest one; the wrist and None where the hand was not detected (fewer than 5 keypoints); None without
    either. The missing-hand measurement (bench/negative_results.py) looks for hands in the same places."""
    hand, wrist = getattr(p, f"{side}_hand"), p.body[joint(f"{side[0].upper()}Wrist")]
    if hand is not None and (hand[:, 2] > SEEN).sum() >= 5:
        pts = hand[hand[:, 2] > SEEN, :2]
        centre = pts.mean(axis=0)
        return centre, float(np.linalg.norm(pts - centre, axis=1).max())
    if wrist[2] > SEEN:
        return wrist[:2], None
    return None


def hand_map(p: Person | None, width: int, height: int) -> np.ndarray:
    """A ``height x width`` float32 map, 1 on the hands and forearms of ``p`` and 0 elsewhere (all 0 without
    arm keypoints)."""
    out = np.zeros((height, width), np.uint8)
    if p is None:
        return out.astype(np.float32)
    torso = _size(p) or 0.25 * height
    arm_px, margin = max(2, round(0.2 * torso)), max(2.0, 0.08 * torso)
    b = p.body
    for side in SIDES:
        ie, iw = joint(f"{side[0].upper()}Elbow"), joint(f"{side[0].upper()}Wrist")
        if b[ie, 2] > SEEN and b[iw, 2] > SEEN:
            cv2.line(out, tuple(int(round(v)) for v in b[ie, :2]), tuple(int(round(v)) for v in b[iw, :2]), 1,
                     arm_px, cv2.LINE_8)
        found = hand_centre(p, side)
        if found is not None:
            centre, spread = found
            radius = 2 * margin if spread is None else spread + margin
            cv2.circle(out, (int(round(centre[0])), int(round(centre[1]))), int(round(radius)), 1, -1)
    return out.astype(np.float32)


def hand_maps(people: list[Person | None], width: int, height: int) -> list[np.ndarray]:
    """:func:`hand_map` of every frame."""
    return [hand_map(p, width, height) for p in people]


def hand_share(maps: list[np.ndarray]) -> float:
    """The share of all pixels the maps cover (what the log reports, so the weight can be judged)."""
    return float(np.mean([m.mean() for m in maps])) if maps else 0.0


__all__ = ["hand_centre", "hand_map", "hand_maps", "hand_share"]
