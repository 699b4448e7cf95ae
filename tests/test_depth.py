"""Stick figures that carry depth (issue 25): depth per keypoint through the files and every step, and the drawing."""

from __future__ import annotations

import json

import numpy as np
import pytest

from dancenow_utils.pose.formats import N_BODY, N_FACE, N_HAND, joint
from dancenow_utils.pose.keypoints import Person, depth_path, read_openpose_json, write_openpose_json
from dancenow_utils.pose.render import depth_brightness, draws_depth, render_pose
from dancenow_utils.pose.settings import PoseSettings, check_same_drawing


def crossed_person(right_in_front: bool = True) -> Person:
    """A standing person whose forearms cross in an X in front of the chest, with depth saying which is nearer."""
    body = np.zeros((N_BODY, 3), np.float32)
    pts = {"Nose": (100, 40), "Neck": (100, 60), "RShoulder": (80, 62), "LShoulder": (120, 62), "RElbow": (72, 100),
           "LElbow": (128, 100), "RWrist": (122, 80), "LWrist": (78, 80), "MidHip": (100, 140), "RHip": (90, 140),
           "LHip": (110, 140), "RKnee": (90, 180), "LKnee": (110, 180), "RAnkle": (90, 220), "LAnkle": (110, 220)}
    for name, (x, y) in pts.items():
        body[joint(name)] = (x, y, 0.9)
    z = np.zeros(N_BODY, np.float32)
    near, far = (-30.0, -10.0) if right_in_front else (-10.0, -30.0)
    z[[joint("RElbow"), joint("RWrist")]] = near
    z[[joint("LElbow"), joint("LWrist")]] = far
    return Person(body, depth={"body": z})


def with_hands(p: Person) -> Person:
    out = p.copy()
    rng = np.random.default_rng(0)
    for part in ("left_hand", "right_hand"):
        hand = np.concatenate([rng.uniform(60, 140, (N_HAND, 2)), np.ones((N_HAND, 1))], axis=1)
        setattr(out, part, hand)
        out.depth[part] = rng.uniform(-40, 0, N_HAND).astype(np.float32)
    out.face = np.concatenate([rng.uniform(90, 110, (N_FACE, 2)), np.ones((N_FACE, 1))], axis=1)
    out.depth["face"] = np.zeros(N_FACE, np.float32)
    return out


CROSSING = (100, 89)  # where the two forearms of crossed_person cross


# ------------------------------------------------------------------------------------------------------- files
def test_depth_round_trips_beside_the_openpose_json(tmp_path):
    p = with_hands(crossed_person())
    f = tmp_path / "frame_000001_keypoints.json"
    write_openpose_json(f, [p])
    sidecar = depth_path(f)
    assert sidecar.name == "frame_000001_depth.json" and sidecar.exists()
    # the keypoint file itself stays exactly what OpenPose writes: the same keys, no depth in it
    data = json.loads(f.read_text())
    assert set(data["people"][0]) == {"person_id", "pose_keypoints_2d", "face_keypoints_2d",
                                      "hand_left_keypoints_2d", "hand_right_keypoints_2d", "pose_keypoints_3d",
                                      "face_keypoints_3d", "hand_left_keypoints_3d", "hand_right_keypoints_3d"}
    back = read_openpose_json(f)[0]
    for part in ("body", "face", "left_hand", "right_hand"):
        np.testing.assert_allclose(back.part_depth(part), p.part_depth(part), atol=1e-3)


def test_a_file_without_depth_loads_and_a_stale_sidecar_goes(tmp_path):
    f = tmp_path / "a_keypoints.json"
    write_openpose_json(f, [crossed_person()])
    assert depth_path(f).exists()
    plain = crossed_person()
    plain.depth = {}
    write_openpose_json(f, [plain])  # the same frame written again without depth: no stale sidecar is left
    assert not depth_path(f).exists()
    back = read_openpose_json(f)[0]
    assert not back.has_depth and back.depth == {}
    np.testing.assert_allclose(back.body, plain.body, atol=1e-3)


def test_a_sidecar_for_other_people_names_the_file(tmp_path):
    f = tmp_path / "b_keypoints.json"
    write_openpose_json(f, [crossed_person()])
    data = json.loads(depth_path(f).read_text())
    data["people"].append(data["people"][0])
    depth_path(f).write_text(json.dumps(data))
    with pytest.raises(ValueError, match="b_depth.json.*2 people"):
        read_openpose_json(f)


def test_depth_of_missing_keypoints_is_zero_and_transforms_scale_it():
    p = crossed_person()
    z = p.part_depth("body").copy()
    z[joint("LBigToe")] = 5.0  # a keypoint that is missing (0, 0, 0) has no depth
    q = Person(p.body, depth={"body": z})
    assert q.part_depth("body")[joint("LBigToe")] == 0
    moved = q.transformed(0.5, (10, 20))
    np.testing.assert_allclose(moved.part_depth("body"), q.part_depth("body") * 0.5)
    np.testing.assert_allclose(q.transformed(np.array([2.0, 4.0]), (0, 0)).part_depth("body"),
                               q.part_depth("body") * 3.0)
    c = q.copy()
    c.depth["body"][joint("RWrist")] = 99
    assert q.part_depth("body")[joint("RWrist")] != 99


def test_smoothing_carries_depth():
    from dancenow_utils.pose.smoothing import smooth_sequence

    rng = np.random.default_rng(1)
    seq = []
    for _ in range(9):
        p = crossed_person()
        p.depth["body"] = p.depth["body"] + rng.normal(0, 1, N_BODY).astype(np.float32) * (p.body[:, 2] > 0)
        seq.append(p)
    seq[4].depth["body"][joint("RWrist")] = 500.0  # an outlier the median removes
    seq[6] = Person(seq[6].body)  # a frame without depth: the others' depth is not spoiled by it
    out = smooth_sequence(seq, window=5)
    assert all(p.has_depth for i, p in enumerate(out) if i != 6)
    assert abs(out[4].part_depth("body")[joint("RWrist")] - (-30)) < 5
    assert out[6].has_depth  # its depth is filled from its neighbours, like a short gap in x, y
    assert abs(out[6].part_depth("body")[joint("RWrist")] - (-30)) < 5


def test_detections_keep_depth_and_old_files_load(tmp_path):
    from dancenow_utils.pose.detect import FrameResult
    from dancenow_utils.pose.extract import Detections

    p = with_hands(crossed_person())
    det = Detections([FrameResult(0, "frame_000000", "ok", p, (256, 256)),
                      FrameResult(1, "frame_000001", "no_person", None, (256, 256))], "clip.mp4")
    det.save(tmp_path / "detections.npz")
    back = Detections.load(tmp_path / "detections.npz")
    for part in ("body", "face", "left_hand", "right_hand"):
        np.testing.assert_allclose(back.results[0].person.part_depth(part), p.part_depth(part))
    # a file saved before depth was kept: the same arrays without the depth ones
    with np.load(tmp_path / "detections.npz") as z:
        old = {k: z[k] for k in z.files if not k.endswith("depth")}
    np.savez_compressed(tmp_path / "old.npz", **old)
    person = Detections.load(tmp_path / "old.npz").results[0].person
    assert person is not None and not person.has_depth


# ---------------------------------------------------------------------------------------------------- settings
def test_settings_record_depth_and_old_settings_draw_as_today(tmp_path):
    s = PoseSettings(depth="order")
    s.save(tmp_path / "settings.json")
    assert json.loads((tmp_path / "settings.json").read_text())["depth"] == "order"
    assert PoseSettings.load(tmp_path / "settings.json") == s
    old = s.to_dict()
    del old["depth"]
    (tmp_path / "old.json").write_text(json.dumps(old))
    assert PoseSettings.load(tmp_path / "old.json").depth == "none"
    with pytest.raises(ValueError, match="unknown depth"):
        PoseSettings(depth="z-buffer")
    with pytest.raises(ValueError, match="depth=order.*depth=none"):
        check_same_drawing(PoseSettings(depth="none"), PoseSettings(depth="order"), "the model", "the poses")


# ----------------------------------------------------------------------------------------------------- drawing
def test_order_puts_the_nearer_forearm_on_top():
    right = render_pose([crossed_person(True)], PoseSettings(depth="order", width=200, height=240))
    left = render_pose([crossed_person(False)], PoseSettings(depth="order", width=200, height=240))
    x, y = CROSSING
    # the right forearm takes its wrist's colour (255, 255, 0), the left one (0, 255, 0)
    assert tuple(right[y, x]) == (255, 255, 0)
    assert tuple(left[y, x]) == (0, 255, 0)
    # today's drawing ignores depth: the left arm, drawn last, is always on top
    for p in (crossed_person(True), crossed_person(False)):
        assert tuple(render_pose([p], PoseSettings(depth="none", width=200, height=240))[y, x]) == (0, 255, 0)


def test_order_without_depth_or_with_flat_depth_is_todays_drawing():
    p = with_hands(crossed_person())
    flat = p.copy()
    flat.depth = {k: np.zeros_like(v) for k, v in p.depth.items()}
    none = render_pose([p], PoseSettings(depth="none"))
    assert np.array_equal(render_pose([flat], PoseSettings(depth="order")), none)
    bare = p.copy()
    bare.depth = {}
    for mode in ("order", "shade"):
        assert np.array_equal(render_pose([bare], PoseSettings(depth=mode)), none)
        assert not draws_depth([bare], PoseSettings(depth=mode)) and draws_depth([p], PoseSettings(depth=mode))
    coco = PoseSettings(pose_format="COCO_18", depth="order")
    assert np.array_equal(render_pose([flat], coco), render_pose([p], PoseSettings(pose_format="COCO_18")))


def test_shade_makes_nearer_parts_brighter():
    img = render_pose([crossed_person(True)], PoseSettings(depth="shade", width=200, height=240, draw_face=False,
                                                           draw_hands=False))
    x, y = CROSSING
    assert tuple(img[y, x])[2] == 0 and img[y, x][0] == img[y, x][1]  # the right (yellow) forearm is on top
    trunk = img[120, 100]  # the red neck-to-hip line lies in the person's plane: dimmed
    assert 0 < trunk[0] < 255
    assert img[y, x][0] > trunk[0]
    b = depth_brightness(np.array([-40.0, 0.0, 40.0]), 0.0, 160.0)
    assert b[0] > b[1] > b[2] and b.max() <= 1.0


# ------------------------------------------------------------------------------------------------ demo character
def test_the_demo_character_knows_which_arm_is_in_front():
    from dancenow_utils.synthetic.character import TARGET_STYLE, skeleton
    from dancenow_utils.synthetic.dance import dance_trajectory

    for params in dance_trajectory(60, 1, "heldout")[::7]:
        sk = skeleton(TARGET_STYLE, params, 256, 256)
        z = sk.person().depth
        front = {"right": joint("RWrist"), "left": joint("LWrist")}
        back = "left" if sk.front_arm == "right" else "right"
        assert z["body"][front[sk.front_arm]] < z["body"][front[back]] < z["body"][joint("Neck")] == 0
        assert (z[f"{sk.front_arm}_hand"] < z[f"{back}_hand"]).all()


def test_the_held_out_clip_has_crossed_arms_and_overlapping_hands_training_never_combines():
    from collections import Counter

    from dancenow_utils.pose.kinds import pose_kind
    from dancenow_utils.synthetic.character import TARGET_STYLE, skeleton
    from dancenow_utils.synthetic.dance import (
        ARMS_IN_FRONT,
        HELDOUT_COMBOS,
        PLANS,
        TRAIN_COMBOS,
        dance_trajectory,
        plan_moves,
    )

    kinds = Counter(pose_kind(skeleton(TARGET_STYLE, p, 256, 256).person()) for p in dance_trajectory(240, 1,
                                                                                                        "heldout"))
    assert kinds["crossed arms"] >= 30 and kinds["hands overlapping"] >= 30 and kinds["arms raised"] >= 20
    moves = plan_moves(240, 1, HELDOUT_COMBOS, *PLANS["heldout"])
    assert [m.upper for m in moves[:2]] == list(ARMS_IN_FRONT)
    assert all((m.upper, m.lower) not in TRAIN_COMBOS for m in moves)
    assert {u for u, _ in TRAIN_COMBOS} >= set(ARMS_IN_FRONT)


def test_make_demo_writes_the_characters_depth(tmp_path):
    from dancenow_utils.synthetic.demo import make_demo

    demo = make_demo(tmp_path, size=96, n_train=3, n_heldout=2, n_source=2, seed=1, progress=False)
    f = demo.keypoints("target_train") / "frame_000000_keypoints.json"
    assert depth_path(f).exists() and read_openpose_json(f)[0].has_depth
    assert json.loads(demo.manifest.read_text())["version"] >= 2
