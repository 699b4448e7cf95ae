"""Draw keypoints as OpenPose-style stick figures: the images the GAN learns to turn into a character.

Black background, CMU colours and limb order (a limb takes the colour of its second keypoint; hands use CMU's
graded per-joint colours), thickness scaled to the person's size. Deterministic: the same keypoints always give
the same pixels. What is drawn (format, face, hands) and at what size comes from one
:class:`~dancenow_utils.pose.settings.PoseSettings`, the one a dataset was extracted with, so extraction, transfer,
the puppet and the lessons draw alike.
"""

from __future__ import annotations

import warnings
from typing import Any

import cv2
import numpy as np

from dancenow_utils.pose.formats import (
    BODY_25_COLORS,
    BODY_25_PAIRS,
    COCO_18_COLORS,
    COCO_18_PAIRS,
    HAND_COLORS,
    HAND_PAIRS,
)
from dancenow_utils.pose.keypoints import MIN_CONF, Person, body25_to_coco18
from dancenow_utils.pose.settings import PoseSettings

__all__ = ["MIN_CONF", "limb_width", "render_pose"]


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


def _legacy_arguments(width: int, height: int, pose_format: str = "BODY_25", draw_face: bool = False,
                      draw_hands: bool = False, canvas: np.ndarray | None = None
                      ) -> tuple[PoseSettings, tuple[int, int], np.ndarray | None]:
    """The old call ``render_pose(people, width, height, pose_format, draw_face, draw_hands, canvas)``."""
    return PoseSettings(pose_format, bool(draw_face), bool(draw_hands)), (int(width), int(height)), canvas


def render_pose(
    people: list[Person],
    settings: PoseSettings | int,
    *legacy: Any,
    size: tuple[int, int] | None = None,
    canvas: np.ndarray | None = None,
    **legacy_keywords: Any,
) -> np.ndarray:
    """Render ``people`` as stick figures drawn with ``settings``' format, face and hands into an RGB uint8 image of
    ``size`` (width, height; default ``settings``' width and height).

    Pass ``canvas`` (an RGB frame) to draw on top of it instead of black, e.g. for overlays; the image then has the
    canvas's size. The old form ``render_pose(people, width, height, pose_format="BODY_25", draw_face=False,
    draw_hands=False, canvas=None)`` still works, with a DeprecationWarning (it goes in the next release).
    """
    if not isinstance(settings, PoseSettings):
        warnings.warn("render_pose(people, width, height, pose_format, draw_face, draw_hands) is deprecated; pass "
                      "the dataset's PoseSettings: render_pose(people, settings, size=(width, height))",
                      DeprecationWarning, stacklevel=2)
        if canvas is not None:
            legacy_keywords["canvas"] = canvas
        settings, size, canvas = _legacy_arguments(settings, *legacy, **legacy_keywords)
    elif legacy or legacy_keywords:
        raise TypeError("render_pose(people, settings, size=..., canvas=...): the drawing comes from settings")
    if canvas is not None:
        img = np.ascontiguousarray(canvas).copy()
        height = img.shape[0]
    else:
        width, height = size or (settings.width, settings.height)
        img = np.zeros((height, width, 3), np.uint8)
    for person in people:
        w = limb_width(person, height)
        if settings.pose_format == "BODY_25":
            pts, pairs, colors = person.body, BODY_25_PAIRS, BODY_25_COLORS
        else:
            pts, pairs, colors = body25_to_coco18(person.body), COCO_18_PAIRS, COCO_18_COLORS
        _draw_skeleton(img, pts, pairs, colors, w, w)
        if settings.draw_hands:
            for hand in (person.left_hand, person.right_hand):
                if hand is not None:
                    hw = max(1, w // 2)  # CMU: joint dots about 4/3 of the bone width across
                    _draw_skeleton(img, hand, HAND_PAIRS, HAND_COLORS, hw, max(1, round(hw * 2 / 3)))
        if settings.draw_face and person.face is not None:
            for x, y, c in person.face:
                if c > MIN_CONF:
                    cv2.circle(img, (int(round(x)), int(round(y))), max(1, w // 3), (255, 255, 255), -1)
    return img
