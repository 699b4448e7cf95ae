"""A 2D game character drawn from a skeleton: the demo's stand-in for a filmed person.

:func:`skeleton` turns dance parameters (see :mod:`dance`) into joint positions with forward kinematics
(two-link inverse kinematics keeps the feet on the floor). :func:`render_character` draws the character in depth
order (legs, torso with a star on the chest, head, then arms, so arms pass in front of the body and of each other),
supersampled for anti-aliasing, and returns the frame, its foreground mask and the ground-truth keypoints
(BODY_25, 70 face points, 21 points per hand) in OpenPose's layout, with a depth per keypoint from that drawing
order (:meth:`Skeleton.depth`). :func:`render_with_parts` also returns the
body-part label map: every foreground pixel holds the index in :data:`PARTS` of the part drawn on top there.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import cv2
import numpy as np

from dancenow_utils.pose.formats import joint
from dancenow_utils.pose.keypoints import Person
from dancenow_utils.synthetic.dance import PARAMS

RGB = tuple[int, int, int]
SUPERSAMPLE = 2
_SHIFT = 3  # sub-pixel bits for OpenCV drawing
DEPTH_LAYER = 0.08  # the ground truth's depth between drawing layers (arms), as a share of the standing height

# The body-part classes of the label maps (index = class); "right" and "left" are the character's own sides.
PARTS = ("background", "head", "torso", "hips", "right_upper_arm", "right_forearm", "right_hand", "left_upper_arm",
         "left_forearm", "left_hand", "right_thigh", "right_shin", "right_foot", "left_thigh", "left_shin",
         "left_foot")
PART = {name: i for i, name in enumerate(PARTS)}


@dataclass(frozen=True)
class CharacterStyle:
    """Body proportions (fractions of the standing height), placement (fractions of the frame) and colours."""

    height: float = 0.80  # standing height / frame height
    center_x: float = 0.5
    floor_y: float = 0.93  # where the soles touch the floor
    head_r: float = 0.070
    neck: float = 0.030
    torso: float = 0.290
    shoulder_w: float = 0.230
    hip_w: float = 0.150
    upper_arm: float = 0.150
    forearm: float = 0.140
    hand: float = 0.070
    thigh: float = 0.240
    shin: float = 0.230
    ankle_h: float = 0.040
    arm_w: float = 0.050
    leg_w: float = 0.070
    skin: RGB = (236, 188, 150)
    hair: RGB = (95, 55, 28)
    shirt: RGB = (226, 82, 44)
    star: RGB | None = (255, 216, 40)
    trousers: RGB = (42, 72, 150)
    shoes: RGB = (35, 32, 34)
    wall: tuple[RGB, RGB] = ((206, 214, 228), (172, 184, 204))
    floor: tuple[RGB, RGB] = ((150, 128, 104), (112, 94, 78))
    horizon: float = 0.70

    @property
    def unit(self) -> float:
        """Frame-height fraction of one proportion unit, so the standing height equals ``height``."""
        total = self.ankle_h + 0.99 * (self.thigh + self.shin) + self.torso + self.neck + 2 * self.head_r
        return self.height / total


TARGET_STYLE = CharacterStyle()
SOURCE_STYLE = CharacterStyle(
    height=0.60, center_x=0.42, floor_y=0.84, head_r=0.065, torso=0.265, shoulder_w=0.25, hip_w=0.16,
    upper_arm=0.165, forearm=0.155, thigh=0.265, shin=0.255, arm_w=0.045, leg_w=0.062,
    skin=(196, 146, 108), hair=(25, 22, 24), shirt=(58, 150, 92), star=None, trousers=(88, 66, 52),
    shoes=(215, 215, 210), wall=((214, 224, 200), (184, 198, 170)), floor=((128, 128, 136), (96, 96, 104)),
    horizon=0.62,
)


def _dir(theta: float) -> np.ndarray:
    """Unit vector: 0 points down the image, +pi/2 points right (+x)."""
    return np.array([math.sin(theta), math.cos(theta)])


# face template in head units (x to the character's left = image right, y down), iBUG-68 order + pupils
def _face_template() -> np.ndarray:
    pts = []
    for t in range(17):  # jaw
        u = math.pi * t / 16
        pts.append((-0.92 * math.cos(u), -0.05 + 1.0 * math.sin(u)))
    for x0 in (-0.62, 0.16):  # brows
        pts += [(x0 + 0.115 * k, -0.40 - 0.05 * math.sin(math.pi * k / 4)) for k in range(5)]
    pts += [(0.0, -0.30 + 0.12 * k) for k in range(4)]  # nose bridge
    pts += [(-0.16 + 0.08 * k, 0.20 + 0.03 * (1 - abs(k - 2) / 2)) for k in range(5)]  # nostrils
    for cx, sign in ((-0.36, 1), (0.36, -1)):  # eyes, outer corner first for the right eye (iBUG order)
        for a in (180, 120, 60, 0, 300, 240):
            ang = math.radians(a if sign > 0 else (180 - a) % 360)
            pts.append((cx + 0.15 * math.cos(ang), -0.18 - 0.07 * math.sin(ang)))
    for k in range(12):  # outer lips from the right corner, over the top, back along the bottom
        ang = math.pi - 2 * math.pi * k / 12
        pts.append((0.30 * math.cos(ang), 0.52 - 0.11 * math.sin(ang)))
    for k in range(8):  # inner lips
        ang = math.pi - 2 * math.pi * k / 8
        pts.append((0.18 * math.cos(ang), 0.52 - 0.04 * math.sin(ang)))
    pts += [(-0.36, -0.18), (0.36, -0.18)]  # pupils
    return np.array(pts, np.float64)


FACE_TEMPLATE = _face_template()


def _hand_template() -> np.ndarray:
    """21 hand points in hand-length units: x along the forearm, y towards the thumb side."""
    pts = [(0.0, 0.0)]
    pts += [(0.12 + 0.12 * k, 0.16 + 0.10 * k) for k in range(4)]  # thumb
    for lat, length in ((0.14, 0.50), (0.05, 0.55), (-0.04, 0.52), (-0.13, 0.42)):  # index..pinky
        seg = length / 3
        pts += [(0.42 + seg * k, lat * (1 + 0.25 * k)) for k in range(4)]
    return np.array(pts, np.float64)


HAND_TEMPLATE = _hand_template()


@dataclass
class Skeleton:
    """Joint positions in frame pixels plus the angles the painter needs."""

    body: np.ndarray  # (25, 2) BODY_25 order
    face: np.ndarray  # (70, 2)
    left_hand: np.ndarray  # (21, 2)
    right_hand: np.ndarray  # (21, 2)
    head_center: np.ndarray
    head_angle: float
    twist: float
    front_arm: str  # "left" or "right": which arm is drawn last
    extras: dict = field(default_factory=dict)

    def person(self) -> Person:
        """The ground-truth keypoints (confidence 1) with their depth from the drawing order (:meth:`depth`)."""
        def conf(a: np.ndarray) -> np.ndarray:
            return np.concatenate([a, np.ones((len(a), 1))], axis=1)

        return Person(conf(self.body), conf(self.face), conf(self.left_hand), conf(self.right_hand),
                      depth=self.depth())

    def depth(self) -> dict[str, np.ndarray]:
        """Depth per keypoint from the order the character is drawn in (pixels, smaller is nearer): the legs,
        trunk and head in one plane (0), the back arm and its hand one layer in front, the front arm and its hand
        two layers in front (a layer is :data:`DEPTH_LAYER` of the standing height)."""
        layer = DEPTH_LAYER * self.extras["height"]
        back, front = ("left", "right") if self.front_arm == "right" else ("right", "left")
        body = np.zeros(len(self.body), np.float32)
        arms = {"right": [joint("RShoulder"), joint("RElbow"), joint("RWrist")],
                "left": [joint("LShoulder"), joint("LElbow"), joint("LWrist")]}
        z = {back: -layer, front: -2 * layer}
        body[arms[back]], body[arms[front]] = z[back], z[front]
        return {"body": body, "face": np.zeros(len(self.face), np.float32),
                "left_hand": np.full(len(self.left_hand), z["left"], np.float32),
                "right_hand": np.full(len(self.right_hand), z["right"], np.float32)}


def _two_link(hip: np.ndarray, ankle: np.ndarray, l1: float, l2: float, outward: float) -> tuple:
    """Knee and (reachable) ankle for a leg from hip to ankle target; the knee bends towards ``outward`` x."""
    d_vec = ankle - hip
    d = float(np.linalg.norm(d_vec))
    reach = l1 + l2 - 1e-3
    if d > reach:
        ankle = hip + d_vec / d * reach
        d = reach
    u = d_vec / max(d, 1e-9)
    cos_a = np.clip((l1 * l1 + d * d - l2 * l2) / (2 * l1 * d), -1.0, 1.0)
    a = math.acos(cos_a)
    cands = []
    for s in (1, -1):
        c, sn = math.cos(s * a), math.sin(s * a)
        cands.append(hip + l1 * np.array([u[0] * c - u[1] * sn, u[0] * sn + u[1] * c]))
    knee = max(cands, key=lambda k: k[0] * outward)
    return knee, ankle


def skeleton(style: CharacterStyle, params: np.ndarray, width: int, height: int) -> Skeleton:
    """Forward kinematics: dance parameters (ordered as ``dance.PARAMS``) -> joint positions in pixels."""
    p = dict(zip(PARAMS, map(float, params)))
    u = style.unit * height  # pixels per proportion unit
    leg = (style.thigh + style.shin) * u
    floor = style.floor_y * height
    cx = style.center_x * width
    ankle_y0 = floor - style.ankle_h * u
    pelvis = np.array([cx + p["sway"] * leg, ankle_y0 - 0.99 * leg + p["squat"] * leg])
    twist, lean = p["twist"], p["lean"]
    up = _dir(math.pi + lean)
    side = np.array([-up[1], up[0]])  # towards the character's left (image right)
    down = -up

    neck = pelvis + up * style.torso * u
    sh_half = 0.5 * style.shoulder_w * u * math.cos(twist)
    r_sh = neck - side * sh_half + down * 0.25 * style.head_r * u
    l_sh = neck + side * sh_half + down * 0.25 * style.head_r * u
    hip_half = 0.5 * style.hip_w * u * math.cos(0.5 * twist)
    r_hip = pelvis - np.array([hip_half, 0.0])
    l_hip = pelvis + np.array([hip_half, 0.0])

    # arms: upper-arm angle from the torso's down direction, forearm bent at the elbow
    th_ru = lean - p["r_abd"]
    th_lu = lean + p["l_abd"]
    th_rf = th_ru - p["r_elb"]
    th_lf = th_lu + p["l_elb"]
    r_elb = r_sh + _dir(th_ru) * style.upper_arm * u
    l_elb = l_sh + _dir(th_lu) * style.upper_arm * u
    r_wr = r_elb + _dir(th_rf) * style.forearm * u
    l_wr = l_elb + _dir(th_lf) * style.forearm * u

    # legs: feet targets on the floor (or lifted), knees from two-link IK bending outwards
    stance = 0.55 * style.hip_w * u
    r_ank_t = np.array([cx - stance + p["r_foot_x"] * leg, ankle_y0 - p["r_foot_up"] * leg])
    l_ank_t = np.array([cx + stance + p["l_foot_x"] * leg, ankle_y0 - p["l_foot_up"] * leg])
    r_knee, r_ank = _two_link(r_hip, r_ank_t, style.thigh * u, style.shin * u, -1.0)
    l_knee, l_ank = _two_link(l_hip, l_ank_t, style.thigh * u, style.shin * u, 1.0)

    # head
    head_angle = lean + p["head"]
    h_up = _dir(math.pi + head_angle)
    h_side = np.array([-h_up[1], h_up[0]])
    hr = style.head_r * u
    head_c = neck + h_up * (style.neck * u + hr)
    yaw = 0.6 * twist

    def head_pt(x: float, y: float) -> np.ndarray:
        xx = x * math.cos(yaw) + 0.45 * math.sin(yaw) * (1 - abs(x) * 0.5)
        return head_c + h_side * xx * hr - h_up * y * hr

    face = np.array([head_pt(x, y) for x, y in FACE_TEMPLATE])
    nose = head_pt(0.0, 0.14)
    r_eye, l_eye = head_pt(-0.36, -0.18), head_pt(0.36, -0.18)
    r_ear, l_ear = head_pt(-0.97, -0.05), head_pt(0.97, -0.05)

    # feet in a frontal view: toes below and slightly outward of the ankle
    ah = style.ankle_h * u
    fw = 0.5 * style.leg_w * u

    def foot(ankle: np.ndarray, out: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        big = ankle + np.array([-out * 0.35 * fw, 0.95 * ah])
        small = ankle + np.array([out * 0.75 * fw, 0.85 * ah])
        heel = ankle + np.array([out * 0.1 * fw, 0.55 * ah])
        return big, small, heel

    r_big, r_small, r_heel = foot(r_ank, -1.0)
    l_big, l_small, l_heel = foot(l_ank, 1.0)

    body = np.array([nose, neck, r_sh, r_elb, r_wr, l_sh, l_elb, l_wr, pelvis, r_hip, r_knee, r_ank, l_hip, l_knee,
                     l_ank, r_eye, l_eye, r_ear, l_ear, l_big, l_small, l_heel, r_big, r_small, r_heel])

    def hand(wrist: np.ndarray, theta: float, thumb_side: float) -> np.ndarray:
        a = _dir(theta)
        b = np.array([a[1], -a[0]]) * thumb_side
        hl = style.hand * u
        return np.array([wrist + (x * a + y * b) * hl for x, y in HAND_TEMPLATE])

    right_hand = hand(r_wr, th_rf, 1.0)
    left_hand = hand(l_wr, th_lf, -1.0)
    # the arm reaching further across the body is in front (crossing arms overlap in a fixed, plausible order)
    front = "right" if (r_wr[0] - neck[0]) > (neck[0] - l_wr[0]) else "left"
    return Skeleton(body, face, left_hand, right_hand, head_c, head_angle, twist, front,
                    {"pelvis": pelvis, "up": up, "side": side, "unit": u, "hr": hr, "yaw": yaw, "lean": lean,
                     "height": style.height * height})


class _Painter:
    """Draws filled shapes on a supersampled RGB canvas and its mask at once, and with ``parts`` on a label canvas
    too (class ``part``, no anti-aliasing: a pixel holds one class)."""

    def __init__(self, background: np.ndarray, scale: int, parts: bool = False) -> None:
        self.img = background.copy()
        self.mask = np.zeros(background.shape[:2], np.uint8)
        self.labels = np.zeros(background.shape[:2], np.uint8) if parts else None
        self.part = 0
        self.k = scale * (1 << _SHIFT)
        self.scale = scale

    def _pt(self, p: np.ndarray) -> tuple[int, int]:
        return int(round(p[0] * self.k)), int(round(p[1] * self.k))

    def _r(self, r: float) -> int:
        return max(1, int(round(r * self.scale)))

    def capsule(self, pts: list[np.ndarray], width: float, color: RGB, outline: bool = True,
                parts: list[int] | None = None) -> None:
        """A limb through ``pts``; ``parts``: the class of each segment (default: the current ``part``)."""
        dark = _shade(color, 0.62)
        for w, c in ((width + 2.0, dark), (width, color)) if outline else ((width, color),):
            for a, b in zip(pts[:-1], pts[1:]):
                for target, col in ((self.img, c), (self.mask, 255)):
                    cv2.line(target, self._pt(a), self._pt(b), col, self._r(w), cv2.LINE_AA, _SHIFT)
        if self.labels is not None:
            outer = width + 2.0 if outline else width
            for (a, b), part in zip(zip(pts[:-1], pts[1:]), parts or [self.part] * (len(pts) - 1)):
                cv2.line(self.labels, self._pt(a), self._pt(b), part, self._r(outer), cv2.LINE_8, _SHIFT)
        # soft highlight along the limb, offset towards the light (upper left)
        hl = _shade(color, 1.18)
        off = np.array([-0.18 * width, -0.12 * width])
        for a, b in zip(pts[:-1], pts[1:]):
            cv2.line(self.img, self._pt(a + off), self._pt(b + off), hl, self._r(0.3 * width), cv2.LINE_AA, _SHIFT)

    def polygon(self, pts: np.ndarray, color: RGB, outline: bool = True, mask: bool = True) -> None:
        poly = np.round(np.asarray(pts) * self.k).astype(np.int32)[None]
        cv2.fillPoly(self.img, poly, color, cv2.LINE_AA, _SHIFT)
        if mask:
            cv2.fillPoly(self.mask, poly, 255, cv2.LINE_AA, _SHIFT)
            if self.labels is not None:
                cv2.fillPoly(self.labels, poly, self.part, cv2.LINE_8, _SHIFT)
        if outline:
            cv2.polylines(self.img, poly, True, _shade(color, 0.62), self._r(1.0), cv2.LINE_AA, _SHIFT)

    def ellipse(self, c: np.ndarray, axes: tuple[float, float], angle_deg: float, color: RGB,
                start: float = 0, end: float = 360, mask: bool = True, outline: bool = False) -> None:
        ax = (int(round(axes[0] * self.k)), int(round(axes[1] * self.k)))
        cv2.ellipse(self.img, self._pt(c), ax, angle_deg, start, end, color, -1, cv2.LINE_AA, _SHIFT)
        if mask:
            cv2.ellipse(self.mask, self._pt(c), ax, angle_deg, start, end, 255, -1, cv2.LINE_AA, _SHIFT)
            if self.labels is not None:
                cv2.ellipse(self.labels, self._pt(c), ax, angle_deg, start, end, self.part, -1, cv2.LINE_8, _SHIFT)
        if outline:
            cv2.ellipse(self.img, self._pt(c), ax, angle_deg, start, end, _shade(color, 0.62), self._r(1.0),
                        cv2.LINE_AA, _SHIFT)


def _shade(color: RGB, f: float) -> RGB:
    return tuple(int(min(255, max(0, round(c * f)))) for c in color)


def background(style: CharacterStyle, width: int, height: int) -> np.ndarray:
    """Wall and floor with gentle vertical gradients (RGB uint8)."""
    y = np.arange(height, dtype=np.float32)[:, None] / max(1, height - 1)
    hz = style.horizon
    wall_t = np.clip(y / hz, 0, 1)
    floor_t = np.clip((y - hz) / max(1e-6, 1 - hz), 0, 1)
    wall = (1 - wall_t) * np.array(style.wall[0]) + wall_t * np.array(style.wall[1])
    flo = (1 - floor_t) * np.array(style.floor[0]) + floor_t * np.array(style.floor[1])
    col = np.where(y[..., None] < hz, wall[:, None, :], flo[:, None, :])
    img = np.broadcast_to(col, (height, width, 3)).astype(np.uint8).copy()
    cv2.line(img, (0, int(hz * height)), (width, int(hz * height)), _shade(style.floor[0], 0.8), 1, cv2.LINE_AA)
    return img


def _star(center: np.ndarray, r: float, angle: float, squash: float) -> np.ndarray:
    pts = []
    for k in range(10):
        rad = r if k % 2 == 0 else 0.42 * r
        a = angle + math.pi * k / 5
        pts.append((center[0] + squash * rad * math.sin(a), center[1] - rad * math.cos(a)))
    return np.array(pts)


def render_character(
    style: CharacterStyle, params: np.ndarray, width: int, height: int, bg: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray, Person]:
    """Draw one frame. Returns ``(rgb, mask, person)``: the frame, its foreground mask and ground-truth keypoints."""
    img, mask, person, _ = _render(style, params, width, height, bg, parts=False)
    return img, mask, person


def render_with_parts(
    style: CharacterStyle, params: np.ndarray, width: int, height: int, bg: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray, Person, np.ndarray]:
    """:func:`render_character` plus the body-part label map (uint8, H x W, indices into :data:`PARTS`)."""
    img, mask, person, parts = _render(style, params, width, height, bg, parts=True)
    assert parts is not None
    return img, mask, person, parts


def _render(style: CharacterStyle, params: np.ndarray, width: int, height: int, bg: np.ndarray | None,
            parts: bool) -> tuple[np.ndarray, np.ndarray, Person, np.ndarray | None]:
    s = SUPERSAMPLE
    sk = skeleton(style, params, width, height)
    if bg is None:
        bg = background(style, width, height)
    big_bg = cv2.resize(bg, (width * s, height * s), interpolation=cv2.INTER_NEAREST)
    pt = _Painter(big_bg, s, parts)
    b = sk.body
    u, hr = sk.extras["unit"], sk.extras["hr"]
    arm_w, leg_w = style.arm_w * u, style.leg_w * u

    # shadow on the floor
    feet_x = (b[11, 0] + b[14, 0]) / 2
    floor = style.floor_y * height
    pt.ellipse(np.array([feet_x, floor]), (0.75 * style.hip_w * u + leg_w, 0.18 * leg_w + 2), 0,
               _shade(style.floor[0], 0.7), mask=False)
    # legs (trousers), then shoes
    for (hip, knee, ank), side_name in (((9, 10, 11), "right"), ((12, 13, 14), "left")):
        pt.capsule([b[hip], b[knee], b[ank]], leg_w, style.trousers,
                   parts=[PART[f"{side_name}_thigh"], PART[f"{side_name}_shin"]])
    for (big, small, heel), side_name in (((22, 23, 24), "right"), ((19, 20, 21), "left")):
        pt.part = PART[f"{side_name}_foot"]
        c = (b[big] + b[small] + b[heel]) / 3 + np.array([0, 0.15 * style.ankle_h * u])
        pt.ellipse(c, (0.62 * leg_w + 1, 0.55 * style.ankle_h * u + 1.5), 0, style.shoes, outline=True)
    # pelvis block covering the top of the legs
    side = sk.extras["side"]
    up = sk.extras["up"]
    half_leg = 0.5 * leg_w
    pelvis_poly = np.array([b[9] - [half_leg, 0], b[12] + [half_leg, 0], b[12] + [half_leg * 0.6, 1.4 * half_leg],
                            b[8] + [0, 2.0 * half_leg], b[9] + [-half_leg * 0.6, 1.4 * half_leg]])
    pt.part = PART["hips"]
    pt.polygon(pelvis_poly, style.trousers)
    # torso (shirt) with a star on the chest
    sh_out = 0.45 * arm_w
    torso = np.array([b[2] - side * sh_out + up * 0.3 * arm_w, b[5] + side * sh_out + up * 0.3 * arm_w,
                      b[12] + [half_leg * 0.9, -0.2 * half_leg], b[9] - [half_leg * 0.9, 0.2 * half_leg]])
    mid = (torso[0] + torso[1] + torso[2] + torso[3]) / 4
    waist_in = 0.06 * style.shoulder_w * u
    torso = np.array([torso[0], torso[1], (torso[1] + torso[2]) / 2 - side * waist_in, torso[2], torso[3],
                      (torso[3] + torso[0]) / 2 + side * waist_in])
    pt.part = PART["torso"]
    pt.polygon(torso, style.shirt)
    # soft shading: a darker band on the shaded (right) side of the torso, no outline
    shade_poly = np.array([torso[0], torso[0] + (mid - torso[0]) * 0.25, torso[4] + (mid - torso[4]) * 0.25,
                           torso[4], torso[5]])
    pt.polygon(shade_poly, _shade(style.shirt, 0.88), outline=False, mask=False)
    if style.star is not None:
        chest = b[1] + (b[8] - b[1]) * 0.36
        pt.polygon(_star(chest, 0.26 * style.shoulder_w * u, -sk.extras["lean"], math.cos(sk.twist)), style.star)
    # neck and head
    pt.part = PART["head"]
    pt.capsule([b[1], b[1] + (sk.head_center - b[1]) * 0.6], 0.45 * hr * 2, style.skin, outline=True)
    angle_deg = -math.degrees(sk.head_angle)
    hc = sk.head_center
    h_up = _dir(math.pi + sk.head_angle)
    pt.ellipse(hc - h_up * 0.02 * hr, (1.08 * hr, 1.12 * hr), angle_deg, style.hair)
    for ear in (17, 18):
        pt.ellipse(b[ear], (0.18 * hr, 0.26 * hr), angle_deg, _shade(style.skin, 0.92), outline=True)
    pt.ellipse(hc - h_up * 0.08 * hr, (0.96 * hr, 1.04 * hr), angle_deg, style.skin, outline=True)
    pt.ellipse(hc + h_up * 0.48 * hr, (0.98 * hr, 0.56 * hr), angle_deg, style.hair, 180, 360)
    f = sk.face
    for eye, pupil in (((36, 39), 68), ((42, 45), 69)):
        ec = (f[eye[0]] + f[eye[1]]) / 2
        pt.ellipse(ec, (0.17 * hr, 0.11 * hr), angle_deg, (250, 250, 250), mask=False)
        pt.ellipse(f[pupil], (0.07 * hr, 0.08 * hr), angle_deg, (30, 30, 40), mask=False)
    mouth = (f[48] + f[54]) / 2
    pt.ellipse(mouth, (0.26 * hr, 0.10 * hr), angle_deg, (170, 50, 60), 0, 180, mask=False)
    pt.ellipse(b[0], (0.09 * hr, 0.07 * hr), angle_deg, _shade(style.skin, 0.8), mask=False)
    # arms: the back arm first, so crossing arms overlap in a consistent order
    arms = {"right": (2, 3, 4, sk.right_hand), "left": (5, 6, 7, sk.left_hand)}
    order = ["left", "right"] if sk.front_arm == "right" else ["right", "left"]
    for name in order:
        sh, el, wr, hand = arms[name]
        pt.part = PART[f"{name}_upper_arm"]
        pt.capsule([b[sh], b[el]], arm_w * 1.1, style.shirt)  # sleeve
        pt.part = PART[f"{name}_forearm"]
        pt.capsule([b[el] + (b[el] - b[sh]) * 0.0, b[wr]], arm_w * 0.85, style.skin)
        pt.part = PART[f"{name}_hand"]
        pt.ellipse((hand[0] + hand[9]) / 2, (0.32 * style.hand * u, 0.32 * style.hand * u), 0, style.skin, outline=True)
        for base in (1, 5, 9, 13, 17):
            pt.capsule([hand[0] if base == 1 else hand[base], hand[base + 1], hand[base + 2], hand[base + 3]],
                       0.22 * arm_w, style.skin, outline=False)
    img = cv2.resize(pt.img, (width, height), interpolation=cv2.INTER_AREA)
    mask = cv2.resize(pt.mask, (width, height), interpolation=cv2.INTER_AREA)
    labels = None
    if pt.labels is not None:
        labels = cv2.resize(pt.labels, (width, height), interpolation=cv2.INTER_NEAREST)
    return img, mask, sk.person(), labels
