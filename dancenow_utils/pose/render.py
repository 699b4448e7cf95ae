"""Draw keypoints as OpenPose-style stick figures: the images the GAN learns to turn into a character.

Black background, CMU colours and limb order (a limb takes the colour of its second keypoint; hands use CMU's
graded per-joint colours), thickness scaled to the person's size. Deterministic: the same keypoints always give
the same pixels. What is drawn (format, face, hands, depth) and at what size comes from one
:class:`~dancenow_utils.pose.settings.PoseSettings`, the one a dataset was extracted with, so extraction, transfer,
the puppet and the lessons draw alike.

Depth (``settings.depth``): OpenPose draws every limb in a fixed order, so where two arms cross the picture cannot
say which one is in front. With ``"order"`` the trunk and head are drawn first as OpenPose draws them, then the
limbs' bones, the joint dots and the hands far to near by their depth (:attr:`Person.depth`), so the nearer arm
and hand lie on top, then the face; ``"shade"`` also scales each colour's brightness with its depth relative to
the person (:func:`depth_brightness`): parts in front are bright, parts behind dark. A person without depth is
drawn as ``"none"`` (OpenPose's order and colours) whatever the setting says.
"""

from __future__ import annotations

import warnings
from typing import Any

import cv2
import numpy as np

from dancenow_utils.pose.formats import (
    BODY_25_COLORS,
    BODY_25_NAMES,
    BODY_25_PAIRS,
    COCO_18_COLORS,
    COCO_18_NAMES,
    COCO_18_PAIRS,
    COCO_18_TO_BODY_25,
    HAND_COLORS,
    HAND_PAIRS,
    joint,
)
from dancenow_utils.pose.keypoints import MIN_CONF, Person, body25_to_coco18
from dancenow_utils.pose.settings import PoseSettings

__all__ = ["MIN_CONF", "depth_brightness", "draws_depth", "limb_width", "render_pose"]

# "shade": brightness = SHADE_BASE + SHADE_GAIN * (how far in front of the trunk, in person heights), clipped
SHADE_BASE, SHADE_GAIN, SHADE_MIN = 0.6, 2.5, 0.3


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


def depth_brightness(z: np.ndarray | float, reference: float, person_height: float) -> np.ndarray:
    """The ``"shade"`` brightness factor (SHADE_MIN..1) of depth ``z``: SHADE_BASE at the ``reference`` plane (the
    trunk), brighter in front of it, darker behind, by how far in person heights."""
    nearness = (reference - np.asarray(z, np.float32)) / max(person_height, 1.0)
    return np.clip(SHADE_BASE + SHADE_GAIN * nearness, SHADE_MIN, 1.0)


def _scaled(color: tuple[int, int, int], f: float) -> tuple[int, int, int]:
    return tuple(int(round(c * f)) for c in color)


def _trunk_pairs(pairs, names) -> list[tuple[int, int]]:
    """The bones of the trunk and head (neither end on an arm or a leg): drawn first, in OpenPose's order."""
    limb = {i for i, n in enumerate(names) if any(k in n for k in ("Elbow", "Wrist", "Knee", "Ankle", "Toe", "Heel"))}
    return [(a, b) for a, b in pairs if a not in limb and b not in limb]


def _depth_items(pts: np.ndarray, z: np.ndarray | None, pairs, colors, width: int, radius: int, rank: int) -> list:
    """One part's bones and joint dots as drawing items ``(depth, rank, kind, index a, index b, colour, size)``."""
    zs = np.zeros(len(pts), np.float32) if z is None else z
    items = []
    for a, b in pairs:
        if pts[a, 2] > MIN_CONF and pts[b, 2] > MIN_CONF:
            items.append((float(zs[a] + zs[b]) / 2, rank, "line", a, b, colors[b], width))
    if radius > 0:
        for i, c in enumerate(pts[:, 2]):
            if c > MIN_CONF:
                items.append((float(zs[i]), rank + 1, "dot", i, i, colors[i], radius))
    return items


def _draw_with_depth(canvas: np.ndarray, person: Person, settings: PoseSettings, body: np.ndarray, pairs, colors,
                     w: int, hand_w: int) -> None:
    """The trunk and head first (OpenPose's order: a detector's depth for them is the least reliable, and an arm
    stays in front of the chest as today), then the limbs' bones, every joint dot and the hands far to near (ties
    in OpenPose's order), then the face; ``"shade"`` scales every colour but the face's by depth."""
    coco = settings.pose_format != "BODY_25"
    body_z = person.part_depth("body")
    if coco:
        body_z = body_z[list(COCO_18_TO_BODY_25)]
    trunk = _trunk_pairs(pairs, COCO_18_NAMES if coco else BODY_25_NAMES)
    limbs = [pair for pair in pairs if pair not in trunk]
    parts = {0: (body, body_z, limbs, colors, w, w)}
    if settings.draw_hands:
        for rank, name, wrist in ((2, "left_hand", "LWrist"), (4, "right_hand", "RWrist")):
            hand = getattr(person, name)
            if hand is not None:
                z = person.part_depth(name)  # a hand without its own depth is where its wrist is
                z = z if z is not None else np.full(len(hand), person.part_depth("body")[joint(wrist)], np.float32)
                parts[rank] = (hand, z, HAND_PAIRS, HAND_COLORS, hand_w, max(1, round(hand_w * 2 / 3)))
    present = person.body[:, 2] > MIN_CONF
    reference = float(np.median(person.part_depth("body")[present])) if present.any() else 0.0
    height = person.height() or canvas.shape[0] * 0.5

    def shaded(color, z: float):
        return _scaled(color, float(depth_brightness(z, reference, height))) if settings.depth == "shade" else color

    for a, b in trunk:
        if body[a, 2] > MIN_CONF and body[b, 2] > MIN_CONF:
            p, q = np.round(body[a, :2]).astype(int), np.round(body[b, :2]).astype(int)
            cv2.line(canvas, tuple(p.tolist()), tuple(q.tolist()), shaded(colors[b], (body_z[a] + body_z[b]) / 2),
                     w, cv2.LINE_AA)
    items = [it for rank, part in parts.items() for it in _depth_items(*part, rank)]
    # far to near: the largest depth first; among equal depths, OpenPose's order (body, left hand, right hand)
    for z, rank, kind, a, b, color, size in sorted(items, key=lambda it: (-it[0], it[1])):
        pts = parts[rank - rank % 2][0]
        if kind == "line":
            p, q = np.round(pts[a, :2]).astype(int), np.round(pts[b, :2]).astype(int)
            cv2.line(canvas, tuple(p.tolist()), tuple(q.tolist()), shaded(color, z), size, cv2.LINE_AA)
        else:
            cv2.circle(canvas, (int(round(pts[a, 0])), int(round(pts[a, 1]))), size, shaded(color, z), -1,
                       cv2.LINE_AA)
    if settings.draw_face and person.face is not None:
        for x, y, c in person.face:
            if c > MIN_CONF:
                cv2.circle(canvas, (int(round(x)), int(round(y))), max(1, w // 3), (255, 255, 255), -1)


def draws_depth(people: list[Person], settings: PoseSettings) -> bool:
    """Whether ``render_pose`` draws these people with depth: the setting asks for it and every one has it."""
    return settings.uses_depth and bool(people) and all(p.has_depth for p in people)


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
        if settings.uses_depth and person.has_depth:
            _draw_with_depth(img, person, settings, pts, pairs, colors, w, max(1, w // 2))
            continue
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
