"""Draw keypoints as OpenPose-style stick figures: the images the GAN learns to turn into a character.

Black background, CMU colours and limb order (a limb takes the colour of its second keypoint; hands use CMU's
graded per-joint colours), thickness scaled to the person's size. Deterministic: the same keypoints always give
the same pixels.
"""

from __future__ import annotations

import cv2
import numpy as np

from dancenow_utils.pose.formats import (
    BODY_25_COLORS,
    BODY_25_PAIRS,
    COCO_18_COLORS,
    COCO_18_PAIRS,
    HAND_COLORS,
    HAND_PAIRS,
    POSE_FORMATS,
)
from dancenow_utils.pose.keypoints import Person, body25_to_coco18

MIN_CONF = 0.05


def limb_width(person: Person, image_height: int) -> int:
    """Stick width in pixels: about 2.5 % of the person's height (at least 1)."""
    h = person.height() or image_height * 0.5
    return max(1, int(round(h * 0.025)))


def _draw_skeleton(canvas: np.ndarray, pts: np.ndarray, pairs, colors, width: int, radius: int) -> None:
    for a, b in pairs:
        if pts[a, 2] > MIN_CONF and pts[b, 2] > MIN_CONF:
            color = colors[b]
            p, q = np.round(pts[a, :2]).astype(int), np.round(pts[b, :2]).astype(int)
            cv2.line(canvas, tuple(p.tolist()), tuple(q.tolist()), color, width, cv2.LINE_AA)
    if radius > 0:
        for i, (x, y, c) in enumerate(pts):
            if c > MIN_CONF:
                cv2.circle(canvas, (int(round(x)), int(round(y))), radius, colors[i], -1, cv2.LINE_AA)


def render_pose(
    people: list[Person],
    width: int,
    height: int,
    pose_format: str = "BODY_25",
    draw_face: bool = False,
    draw_hands: bool = False,
    canvas: np.ndarray | None = None,
) -> np.ndarray:
    """Render ``people`` into an ``(height, width, 3)`` RGB uint8 stick-figure image.

    Pass ``canvas`` (an RGB frame) to draw on top of it instead of black, e.g. for overlays.
    """
    if pose_format not in POSE_FORMATS:
        raise ValueError(f"unknown pose_format {pose_format!r}; use one of {POSE_FORMATS}")
    img = np.zeros((height, width, 3), np.uint8) if canvas is None else np.ascontiguousarray(canvas).copy()
    for person in people:
        w = limb_width(person, height)
        if pose_format == "BODY_25":
            pts, pairs, colors = person.body, BODY_25_PAIRS, BODY_25_COLORS
        else:
            pts, pairs, colors = body25_to_coco18(person.body), COCO_18_PAIRS, COCO_18_COLORS
        _draw_skeleton(img, pts, pairs, colors, w, w)
        if draw_hands:
            for hand in (person.left_hand, person.right_hand):
                if hand is not None:
                    hw = max(1, w // 2)  # CMU: joint dots about 4/3 of the bone width across
                    _draw_skeleton(img, hand, HAND_PAIRS, HAND_COLORS, hw, max(1, round(hw * 2 / 3)))
        if draw_face and person.face is not None:
            for x, y, c in person.face:
                if c > MIN_CONF:
                    cv2.circle(img, (int(round(x)), int(round(y))), max(1, w // 3), (255, 255, 255), -1)
    return img
