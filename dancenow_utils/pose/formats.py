"""OpenPose keypoint layouts and colours (BODY_25, COCO-18, hands, face), as plain constants.

Source: ../shared/reference/openpose_format.md (CMU OpenPose's documentation and renderer).
"""

from __future__ import annotations

BODY_25_NAMES = (
    "Nose", "Neck", "RShoulder", "RElbow", "RWrist", "LShoulder", "LElbow", "LWrist", "MidHip", "RHip",
    "RKnee", "RAnkle", "LHip", "LKnee", "LAnkle", "REye", "LEye", "REar", "LEar", "LBigToe", "LSmallToe",
    "LHeel", "RBigToe", "RSmallToe", "RHeel",
)
BODY_25_PAIRS = (
    (1, 8), (1, 2), (1, 5), (2, 3), (3, 4), (5, 6), (6, 7), (8, 9), (9, 10), (10, 11), (8, 12), (12, 13),
    (13, 14), (1, 0), (0, 15), (15, 17), (0, 16), (16, 18), (14, 19), (19, 20), (14, 21), (11, 22), (22, 23),
    (11, 24),
)
BODY_25_COLORS = (
    (255, 0, 85), (255, 0, 0), (255, 85, 0), (255, 170, 0), (255, 255, 0), (170, 255, 0), (85, 255, 0),
    (0, 255, 0), (255, 0, 0), (0, 255, 85), (0, 255, 170), (0, 255, 255), (0, 170, 255), (0, 85, 255),
    (0, 0, 255), (255, 0, 170), (170, 0, 255), (255, 0, 255), (85, 0, 255), (0, 0, 255), (0, 0, 255),
    (0, 0, 255), (0, 255, 255), (0, 255, 255), (0, 255, 255),
)

COCO_18_NAMES = (
    "Nose", "Neck", "RShoulder", "RElbow", "RWrist", "LShoulder", "LElbow", "LWrist", "RHip", "RKnee",
    "RAnkle", "LHip", "LKnee", "LAnkle", "REye", "LEye", "REar", "LEar",
)
COCO_18_PAIRS = (
    (1, 2), (1, 5), (2, 3), (3, 4), (5, 6), (6, 7), (1, 8), (8, 9), (9, 10), (1, 11), (11, 12), (12, 13),
    (1, 0), (0, 14), (14, 16), (0, 15), (15, 17),
)
COCO_18_COLORS = (
    (255, 0, 85), (255, 0, 0), (255, 85, 0), (255, 170, 0), (255, 255, 0), (170, 255, 0), (85, 255, 0),
    (0, 255, 0), (0, 255, 85), (0, 255, 170), (0, 255, 255), (0, 170, 255), (0, 85, 255), (0, 0, 255),
    (255, 0, 170), (170, 0, 255), (255, 0, 255), (85, 0, 255),
)
# COCO-18 index -> BODY_25 index (the same joint under another number)
COCO_18_TO_BODY_25 = tuple(BODY_25_NAMES.index(name) for name in COCO_18_NAMES)

HAND_PAIRS = tuple(
    (0 if j == 0 else base + j - 1, base + j) for base in (1, 5, 9, 13, 17) for j in range(4)
)
# CMU OpenPose's hand colours per keypoint, RGB (HAND_COLORS_RENDER): a grey wrist, then each finger graded from dark
# at its base to full brightness at its tip (thumb red, index yellow, middle green, ring blue, pinky magenta). As for
# the body, a bone takes the colour of its second (outer) keypoint and each joint is drawn in its own colour.
HAND_COLORS = (
    (100, 100, 100),
    (100, 0, 0), (150, 0, 0), (200, 0, 0), (255, 0, 0),
    (100, 100, 0), (150, 150, 0), (200, 200, 0), (255, 255, 0),
    (0, 100, 50), (0, 150, 75), (0, 200, 100), (0, 255, 125),
    (0, 50, 100), (0, 75, 150), (0, 100, 200), (0, 125, 255),
    (100, 0, 100), (150, 0, 150), (200, 0, 200), (255, 0, 255),
)


def _mirror_name(name: str) -> str:
    """The joint's name on the other side (``RShoulder`` -> ``LShoulder``); centre joints keep theirs."""
    return {"R": "L", "L": "R"}[name[0]] + name[1:] if name[0] in "RL" and name[1].isupper() else name


# index permutations that turn a mirrored person's keypoints back into their layout: the mirror image of a right
# shoulder is a left one. BODY_25 swaps each R/L joint; the face's 68 iBUG points swap left and right along the jaw,
# brows, nose base, eyes and lips (the nose bridge and the lips' middle keep their place), then the two pupils; a
# hand's 21 points keep theirs (the two hands swap as a whole)
BODY_25_MIRROR = tuple(BODY_25_NAMES.index(_mirror_name(n)) for n in BODY_25_NAMES)
FACE_70_MIRROR = (
    *range(16, -1, -1),  # jaw
    *range(26, 16, -1),  # brows
    27, 28, 29, 30, *range(35, 30, -1),  # nose bridge, nose base
    45, 44, 43, 42, 47, 46, 39, 38, 37, 36, 41, 40,  # eyes: corners and lids
    *range(54, 47, -1), *range(59, 54, -1),  # outer lips
    *range(64, 59, -1), 67, 66, 65,  # inner lips
    69, 68,  # pupils
)

N_BODY = 25
N_COCO = 18
N_FACE = 70
N_HAND = 21

POSE_FORMATS = ("BODY_25", "COCO_18")


def joint(name: str) -> int:
    """BODY_25 index of a joint name, e.g. ``joint("RAnkle") == 11``."""
    return BODY_25_NAMES.index(name)
