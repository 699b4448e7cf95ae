"""Pose kinds for the per-kind metric breakdown (issue 14): hand-made skeletons of each kind."""

from __future__ import annotations

import numpy as np
import pytest

from dancenow_utils.evaluation.metrics import by_pose_kind
from dancenow_utils.pose.formats import joint
from dancenow_utils.pose.keypoints import Person
from dancenow_utils.pose.kinds import POSE_KINDS, pose_kind

# a person facing the camera: their right side is on the image's left; torso 40 px (neck y 40, mid-hip y 80)
TORSO = {"Neck": (50, 40), "MidHip": (50, 80), "RShoulder": (38, 42), "LShoulder": (62, 42)}


def person(**arms: tuple[float, float]) -> Person:
    body = np.zeros((25, 3), np.float32)
    for name, (x, y) in {**TORSO, **arms}.items():
        body[joint(name)] = (x, y, 0.9)
    return Person(body)


ARMS_DOWN = dict(RElbow=(34, 58), RWrist=(33, 74), LElbow=(66, 58), LWrist=(67, 74))


@pytest.mark.parametrize("arms, kind", [
    (ARMS_DOWN, "others"),
    # forearms crossing in front of the chest
    (dict(RElbow=(36, 58), RWrist=(60, 50), LElbow=(64, 58), LWrist=(40, 50)), "crossed arms"),
    # wrists past the midline on the other side, forearms not intersecting (one above the other)
    (dict(RElbow=(40, 50), RWrist=(58, 48), LElbow=(60, 62), LWrist=(44, 66)), "crossed arms"),
    # hands together in front of the belly, not crossed: 8 px apart < 0.4 x 40
    (dict(RElbow=(38, 60), RWrist=(46, 66), LElbow=(62, 60), LWrist=(54, 66)), "hands overlapping"),
    # one hand up above the neck
    (dict(RElbow=(30, 32), RWrist=(28, 20), LElbow=(66, 58), LWrist=(67, 74)), "arms raised"),
])
def test_pose_kinds_of_hand_made_skeletons(arms, kind):
    assert pose_kind(person(**arms)) == kind


def test_missing_joints_or_nobody_are_others():
    p = person(**ARMS_DOWN)
    p.body[joint("LWrist"), 2] = 0
    assert pose_kind(p) == "others" and pose_kind(None) == "others"


def test_breakdown_counts_and_means_per_kind():
    rows = [{"pose_kind": "crossed arms", "ssim": 0.5, "body_ssim": 0.4, "face_ssim": None},
            {"pose_kind": "crossed arms", "ssim": 0.7, "body_ssim": 0.6, "face_ssim": 0.5},
            {"pose_kind": "others", "ssim": 0.9, "body_ssim": 0.8, "face_ssim": 0.7}]
    out = by_pose_kind(rows)
    assert list(out) == list(POSE_KINDS)
    assert out["crossed arms"]["n"] == 2 and out["crossed arms"]["ssim"] == pytest.approx(0.6)
    assert out["crossed arms"]["face_ssim"] == pytest.approx(0.5)
    assert out["hands overlapping"] == {"n": 0, **{k: None for k in out["hands overlapping"] if k != "n"}}
