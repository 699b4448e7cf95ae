import json

import numpy as np
import pytest

from dancenow_utils.pose.formats import BODY_25_COLORS, BODY_25_PAIRS, joint
from dancenow_utils.pose.keypoints import (
    Person,
    body25_to_coco18,
    coco18_to_body25,
    people_to_json,
    read_openpose_json,
    write_openpose_json,
)
from dancenow_utils.pose.render import render_pose


def _person(seed=0):
    rng = np.random.default_rng(seed)
    body = np.concatenate([rng.uniform(20, 200, (25, 2)), np.ones((25, 1))], 1)
    return Person(body, np.concatenate([rng.uniform(20, 60, (70, 2)), np.ones((70, 1))], 1))


def test_json_round_trip(tmp_path):
    p = _person()
    write_openpose_json(tmp_path / "f_keypoints.json", [p])
    data = json.loads((tmp_path / "f_keypoints.json").read_text())
    assert len(data["people"][0]["pose_keypoints_2d"]) == 75 and data["people"][0]["hand_left_keypoints_2d"] == []
    q = read_openpose_json(tmp_path / "f_keypoints.json")[0]
    np.testing.assert_allclose(q.body, p.body, atol=1e-3)
    np.testing.assert_allclose(q.face, p.face, atol=1e-3)
    assert q.left_hand is None


def test_coco_conversion_both_ways(tmp_path):
    p = _person()
    coco = body25_to_coco18(p.body)
    back = coco18_to_body25(coco)
    for name in ("Nose", "Neck", "RWrist", "LAnkle", "REar"):
        np.testing.assert_allclose(back[joint(name)], p.body[joint(name)])
    mid = (p.body[joint("RHip"), :2] + p.body[joint("LHip"), :2]) / 2
    np.testing.assert_allclose(back[joint("MidHip"), :2], mid, atol=1e-4)
    assert (back[joint("LBigToe")] == 0).all()
    (tmp_path / "c_keypoints.json").write_text(json.dumps(people_to_json([p], "COCO_18")))
    q = read_openpose_json(tmp_path / "c_keypoints.json")[0]
    np.testing.assert_allclose(q.body[joint("RKnee")], p.body[joint("RKnee")], atol=1e-3)


def test_wrong_keypoint_count_names_the_file(tmp_path):
    f = tmp_path / "bad_keypoints.json"
    f.write_text(json.dumps({"people": [{"pose_keypoints_2d": [1.0] * 30}]}))
    with pytest.raises(ValueError, match="bad_keypoints.json.*30 pose numbers"):
        read_openpose_json(f)


def test_renderer_uses_openpose_colours_and_is_deterministic():
    body = np.zeros((25, 3), np.float32)
    body[joint("Neck")] = [50, 20, 1]
    body[joint("MidHip")] = [50, 80, 1]
    img = render_pose([Person(body)], 100, 100)
    assert (img == render_pose([Person(body)], 100, 100)).all()
    # the trunk (1-8) takes MidHip's colour: red
    assert tuple(img[50, 50]) == BODY_25_COLORS[8] == (255, 0, 0)
    assert img[50, 10].sum() == 0  # black background
    assert (1, 8) in BODY_25_PAIRS


def test_renderer_thickness_scales_with_person():
    def width(h):
        body = np.zeros((25, 3), np.float32)
        body[joint("Neck")] = [100, 100 - h / 2, 1]
        body[joint("MidHip")] = [100, 100 + h / 2, 1]
        img = render_pose([Person(body)], 200, 200)
        return int((img[100].sum(axis=1) > 0).sum())

    assert width(180) > width(40)


def test_render_pose_draws_with_the_settings_and_keeps_the_old_form():
    """One source of truth for the drawing: PoseSettings (face and hands on by default, as extraction draws);
    the old keyword form still works, with a DeprecationWarning, and keeps its defaults (face and hands off)."""
    import warnings

    from dancenow_utils.pose.settings import BODY_ONLY, PoseSettings

    rng = np.random.default_rng(1)
    body = np.zeros((25, 3), np.float32)
    body[:, :2], body[:, 2] = rng.uniform(20, 80, (25, 2)), 1.0
    hand = np.concatenate([rng.uniform(20, 80, (21, 2)), np.ones((21, 1))], 1).astype(np.float32)
    person = Person(body, left_hand=hand)
    drawn = render_pose([person], PoseSettings(width=100, height=100))
    assert not np.array_equal(drawn, render_pose([person], BODY_ONLY, size=(100, 100)))  # the hand is drawn
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        old = render_pose([person], 100, 100)
        old_hands = render_pose([person], 100, 100, "BODY_25", draw_hands=True)
    assert [w.category for w in caught] == [DeprecationWarning, DeprecationWarning]
    assert np.array_equal(old, render_pose([person], BODY_ONLY, size=(100, 100)))
    assert np.array_equal(old_hands, drawn)
    canvas = np.full((60, 90, 3), 40, np.uint8)
    assert render_pose([person], BODY_ONLY, canvas=canvas).shape == (60, 90, 3)
    with pytest.raises(TypeError, match="settings"):
        render_pose([person], BODY_ONLY, 100)
