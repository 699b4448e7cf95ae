"""Stick figures that carry depth (issue 25): depth per keypoint through the files and every step, and the drawing."""

from __future__ import annotations

import dataclasses
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
    assert sidecar == tmp_path / "depth" / "frame_000001_depth.json" and sidecar.exists()
    assert sorted(p.name for p in tmp_path.glob("*.json")) == [f.name]  # a reader of *.json sees OpenPose files only
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
    with pytest.raises(ValueError, match="drawn with pose_format=BODY_25, draw_face=True, draw_hands=True, "
                                         "depth=order, but the model was trained on poses drawn with "
                                         "pose_format=BODY_25, draw_face=True, draw_hands=True. Re-extract"):
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


def test_order_without_depth_is_todays_drawing_and_with_depth_only_reorders():
    p = with_hands(crossed_person())
    none = render_pose([p], PoseSettings(depth="none"))
    bare = p.copy()
    bare.depth = {}
    for mode in ("order", "shade"):
        assert np.array_equal(render_pose([bare], PoseSettings(depth=mode)), none)
        assert not draws_depth([bare], PoseSettings(depth=mode)) and draws_depth([p], PoseSettings(depth=mode))
    # the order changes which stroke is on top, never what is drawn: the same pixels are covered
    ordered = render_pose([p], PoseSettings(depth="order"))
    assert not np.array_equal(ordered, none)
    assert np.array_equal(ordered.any(axis=2), none.any(axis=2))
    # the trunk stays under the arms, as today, even when a detector puts the arms behind it
    behind = crossed_person()
    behind.depth["body"] = -behind.depth["body"]
    x, y = CROSSING
    assert tuple(render_pose([behind], PoseSettings(depth="order", width=200, height=240))[y, x]) != (255, 0, 0)
    # COCO-18 takes the same depth, mapped to its joints
    for front, colour in ((True, (255, 255, 0)), (False, (0, 255, 0))):
        img = render_pose([crossed_person(front)], PoseSettings("COCO_18", depth="order", width=200, height=240))
        assert tuple(img[y, x]) == colour


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
    # a clip too short to hold other moves as well keeps the seeded order (the tests' tiny demos)
    assert plan_moves(24, 1, HELDOUT_COMBOS, *PLANS["heldout"]) == plan_moves(24, 1, HELDOUT_COMBOS)


def test_make_demo_writes_the_characters_depth(tmp_path):
    from dancenow_utils.synthetic.demo import make_demo

    demo = make_demo(tmp_path, size=96, n_train=3, n_heldout=2, n_source=2, seed=1, progress=False)
    f = demo.keypoints("target_train") / "frame_000000_keypoints.json"
    assert depth_path(f).exists() and read_openpose_json(f)[0].has_depth
    assert json.loads(demo.manifest.read_text())["version"] >= 2


# ------------------------------------------------------------------------------------------------ the pipeline
def _json_clip(tmp_path, tiny_demo, n: int = 6, keep_depth: bool = True, crossed: bool = False):
    """The tiny demo's first ``n`` frames as images with their ground-truth OpenPose JSON (and depth); with
    ``crossed``, every frame's keypoints are :func:`crossed_person`'s instead (the right arm in front)."""
    from dancenow_utils.io_utils import write_image
    from dancenow_utils.video import read_frames

    frames, kp = tmp_path / "frames", tmp_path / "json"
    for i, rgb in read_frames(tiny_demo.video("target_train"), max_frames=n):
        write_image(frames / f"frame_{i:06d}.png", rgb)
        people = read_openpose_json(tiny_demo.keypoints("target_train") / f"frame_{i:06d}_keypoints.json")
        if crossed:
            people = [crossed_person(True).transformed(0.5, (0.0, 0.0))]
        if not keep_depth:
            for p in people:
                p.depth = {}
        write_openpose_json(kp / f"frame_{i:06d}_keypoints.json", people)
    return frames, kp


def test_extraction_keeps_depth_and_draws_with_it(tmp_path, tiny_demo):
    from dancenow_utils.pose.extract import extract

    frames, kp = _json_clip(tmp_path, tiny_demo, crossed=True)
    runs = {}
    for mode in ("none", "order"):
        s = extract(frames, tmp_path / mode, backend="openpose_json", keypoints_dir=str(kp), image_size=64,
                    sequence=True, smooth_window=3, depth=mode, progress=False)
        assert s.with_depth == s.written == 6 and s.depth == mode
        settings = PoseSettings.load(tmp_path / mode / "train_keypoints" / "settings.json")
        assert settings.depth == mode
        stored = read_openpose_json(tmp_path / mode / "train_keypoints" / "frame_000002_keypoints.json")[0]
        truth = read_openpose_json(kp / "frame_000002_keypoints.json")[0]
        np.testing.assert_allclose(stored.part_depth("body"), truth.part_depth("body"), atol=0.01)
        runs[mode] = sorted((tmp_path / mode / "train_A").glob("*.png"))
    from dancenow_utils.io_utils import read_image

    # the right forearm, nearer, is drawn over the left one: every pose image changes where they cross
    differ = [not np.array_equal(read_image(a), read_image(b)) for a, b in zip(runs["none"], runs["order"])]
    assert len(differ) == 6 and all(differ)


def test_a_source_without_depth_draws_as_today_and_says_so(tmp_path, tiny_demo):
    from dancenow_utils.pose.extract import ExtractionWarning, extract

    frames, kp = _json_clip(tmp_path, tiny_demo, keep_depth=False)
    with pytest.warns(ExtractionWarning, match="no depth"):
        s = extract(frames, tmp_path / "ds", backend="openpose_json", keypoints_dir=str(kp), image_size=64,
                    sequence=True, smooth_window=1, depth="shade", progress=False)
    assert s.with_depth == 0 and s.depth == "none" and "no depth" in s.warnings[0]
    assert PoseSettings.load(tmp_path / "ds" / "train_keypoints" / "settings.json").depth == "none"
    assert not (tmp_path / "ds" / "train_keypoints" / "depth").exists()


def test_redraw_poses_with_another_encoding_and_depth_source(tmp_path, tiny_demo):
    from dancenow_utils.io_utils import read_image
    from dancenow_utils.pose.extract import extract, redraw_poses

    frames, kp = _json_clip(tmp_path, tiny_demo, keep_depth=False)
    extract(frames, tmp_path / "ds", backend="openpose_json", keypoints_dir=str(kp), image_size=64, sequence=True,
            smooth_window=1, progress=False)
    before = {f.name: read_image(f) for f in (tmp_path / "ds" / "train_A").glob("*.png")}
    stored_settings = PoseSettings.load(tmp_path / "ds" / "train_keypoints" / "settings.json")
    settings = dataclasses.replace(stored_settings, depth="order")
    n = redraw_poses(tmp_path / "ds", settings, depth_from=tiny_demo.keypoints("target_train"), progress=False)
    assert n == 6
    assert PoseSettings.load(tmp_path / "ds" / "train_keypoints" / "settings.json").depth == "order"
    stored = read_openpose_json(tmp_path / "ds" / "train_keypoints" / "frame_000001_keypoints.json")[0]
    assert stored.has_depth  # the depth taken from the other folder is kept beside the keypoints
    after = {f.name: read_image(f) for f in (tmp_path / "ds" / "train_A").glob("*.png")}
    assert after.keys() == before.keys()
    redraw_poses(tmp_path / "ds", dataclasses.replace(settings, depth="none"), progress=False)
    assert all(np.array_equal(read_image(tmp_path / "ds" / "train_A" / k), v) for k, v in before.items())


def test_normalisation_crops_and_image_pixels_carry_depth(tiny_demo):
    from dancenow_utils.pose.crop import Crop
    from dancenow_utils.pose.normalize import normalize_sequence

    def load(clip):
        return [read_openpose_json(f)[0] for f in sorted(tiny_demo.keypoints(clip).glob("*_keypoints.json"))]

    target, source = load("target_train"), load("source_dancer")
    for method in ("project", "edn"):
        mapped = normalize_sequence(source, target, method, smooth_window=3)
        assert all(p is not None and p.has_depth for p in mapped)
        # the arms stay in front of the trunk, and the front arm in front of the back one
        for src, out in zip(source[3:6], mapped[3:6]):
            assert np.array_equal(np.argsort(src.part_depth("body"), kind="stable"),
                                  np.argsort(out.part_depth("body"), kind="stable"))
    crop = Crop(10.0, 5.0, 0.5, 64, 64)
    c = crop.apply_person(source[0])
    np.testing.assert_allclose(c.part_depth("left_hand"), source[0].part_depth("left_hand") * 0.5)


def test_mediapipe_gives_a_depth_per_keypoint(tiny_demo):
    from dancenow_utils.pose.mediapipe_backend import MediaPipeEstimator
    from dancenow_utils.video import read_frames

    est = MediaPipeEstimator(video=True, count_people=False)
    found = []
    for _, rgb in read_frames(tiny_demo.video("target_train"), max_frames=6):
        people = est(rgb)
        if people:
            found.append(people[0])
    est.close()
    assert found and all(p.has_depth for p in found)
    p = found[-1]
    assert np.isfinite(p.part_depth("body")).all() and np.abs(p.part_depth("body")).max() > 0
    for part, wrist in (("left_hand", "LWrist"), ("right_hand", "RWrist")):
        if getattr(p, part) is not None:  # a hand's depth sits where the body puts its wrist
            assert p.part_depth(part)[0] == pytest.approx(p.part_depth("body")[joint(wrist)], abs=1e-3)


def test_mediapipe_depth_helpers():
    from dancenow_utils.pose.mediapipe_backend import blazepose_depth, face_depth, hand_depth

    lm = np.zeros((33, 5), np.float32)
    lm[:, 2] = np.arange(33)
    z = blazepose_depth(lm)
    assert z[joint("RWrist")] == 16 and z[joint("LWrist")] == 15 and z[joint("Neck")] == 11.5
    hand = np.zeros((21, 3), np.float32)
    hand[:, 2] = np.arange(21) + 100.0
    np.testing.assert_allclose(hand_depth(hand, -7.0), np.arange(21) - 7.0)
    mesh = np.zeros((468, 3), np.float32)
    mesh[1, 2] = 3.0
    assert face_depth(mesh, 10.0).shape == (70,) and face_depth(mesh, 10.0)[0] == pytest.approx(7.0)


def test_transfer_draws_the_source_with_the_targets_depth_setting(tmp_path, tiny_demo):
    from dancenow_utils.pose.extract import extract
    from dancenow_utils.transfer.pose_transfer import prepare_poses

    frames, kp = _json_clip(tmp_path, tiny_demo)
    extract(frames, tmp_path / "target", backend="openpose_json", keypoints_dir=str(kp), image_size=64,
            sequence=True, smooth_window=1, depth="shade", progress=False)
    poses = prepare_poses(tiny_demo.video("source_dancer"), tmp_path / "transfer", normalize=False,
                          target_keypoints=tmp_path / "target" / "train_keypoints", image_size=64, max_frames=4,
                          progress=False)
    keypoints = poses.parent / "test_keypoints"
    assert PoseSettings.load(keypoints / "settings.json").depth == "shade"
    summary = json.loads((keypoints / "summary.json").read_text())
    assert summary["depth"] == "shade" and summary["with_depth"] == summary["written"] > 0
    assert read_openpose_json(sorted(keypoints.glob("*_keypoints.json"))[0])[0].has_depth


def test_the_puppet_keeps_depth_and_draws_with_the_targets_setting():
    import torch

    from dancenow_utils.config import make_config
    from dancenow_utils.models.inference import Generator
    from dancenow_utils.models.networks import build_generator
    from dancenow_utils.transfer.puppet import Puppet, pose_person

    cfg = make_config("tiny")
    images = {}
    for mode in ("none", "order"):
        settings = PoseSettings(width=200, height=240, depth=mode)
        gen = Generator(build_generator(cfg).eval(), cfg, torch.device("cpu"), "fp32", "none_G.pth", settings)
        for front in (True, False):
            puppet = Puppet(gen, crossed_person(front), settings)
            posed = puppet.person({"LElbow": 3})
            assert posed.has_depth
            np.testing.assert_array_equal(posed.part_depth("body"), crossed_person(front).part_depth("body"))
            images[mode, front] = puppet.pose_image({"LElbow": 3})  # what the generator is given
    assert not np.array_equal(images["order", True], images["order", False])
    assert np.array_equal(images["none", True], images["none", False])
    assert pose_person(crossed_person(), {}).has_depth


def test_the_lesson_draws_one_crossed_arms_frame_both_ways(tmp_path, tiny_demo, capsys):
    from dancenow_utils.notebook.lessons import crossed_arms_frame, depth_lesson_image
    from dancenow_utils.notebook.pipeline import depth_figure
    from dancenow_utils.pose.extract import extract

    frames, kp = _json_clip(tmp_path, tiny_demo, crossed=True)
    extract(frames, tmp_path / "ds", backend="openpose_json", keypoints_dir=str(kp), image_size=64, sequence=True,
            smooth_window=1, progress=False)
    assert crossed_arms_frame(tmp_path / "ds" / "train_keypoints").startswith("frame_")
    img = depth_lesson_image(tmp_path / "ds")
    assert img.shape[0] == 2 * 64 + 2 and img.shape[1] >= 4 * 64  # 4 panels, and the arms magnified below
    panels = [img[:64, k * 66: k * 66 + 64] for k in range(4)]  # frame | none | order | shade
    assert not np.array_equal(panels[1][16:], panels[2][16:])  # below the labels: the crossing is drawn otherwise
    # without depth there is nothing to show: the notebook says why
    frames2, kp2 = _json_clip(tmp_path / "plain", tiny_demo, crossed=True, keep_depth=False)
    extract(frames2, tmp_path / "plain_ds", backend="openpose_json", keypoints_dir=str(kp2), image_size=64,
            sequence=True, smooth_window=1, progress=False)
    assert depth_figure(tmp_path / "plain_ds") is None
    assert "no stored pose crosses its arms with a depth" in capsys.readouterr().out


def test_coverage_carries_depth_and_says_when_the_other_arm_was_in_front(tmp_path):
    from dancenow_utils.evaluation.coverage import PoseSet, coverage_report

    def pose_set(people: list[Person]) -> PoseSet:
        return PoseSet([f"f{i}" for i in range(len(people))], np.stack([p.body for p in people]), (200, 240),
                       depth=np.stack([p.part_depth("body") for p in people]))

    train = pose_set([crossed_person(False)] * 3)
    query = pose_set([crossed_person(True), crossed_person(False)])
    assert query.front_arm(0) == "right" and query.front_arm(1) == "left" and query.person(0).has_depth
    report = coverage_report(query, train, tmp_path / "cov")
    assert report.arms_in_front == 2 and report.other_arm_in_front == ["f0"]
    saved = json.loads(report.json_path.read_text())
    assert saved["other_arm_in_front"] == ["f0"] and "other arm in front" in report.summary()
    flat = PoseSet(query.names, query.bodies, query.size)  # keypoints without depth: nothing to say
    assert flat.front_arm(0) is None and coverage_report(flat, train, tmp_path / "flat").arms_in_front == 0


def test_depth_from_another_folder_replaces_the_detectors(tmp_path, tiny_demo):
    from dancenow_utils.pose.extract import extract

    frames, plain = _json_clip(tmp_path / "plain", tiny_demo, crossed=True, keep_depth=False)
    _, deep = _json_clip(tmp_path / "deep", tiny_demo, crossed=True)
    s = extract(frames, tmp_path / "ds", backend="openpose_json", keypoints_dir=str(plain), image_size=64,
                sequence=True, smooth_window=1, depth="order", depth_from=str(deep), progress=False)
    assert s.with_depth == s.written == 6 and s.depth == "order"
    stored = read_openpose_json(tmp_path / "ds" / "train_keypoints" / "frame_000003_keypoints.json")[0]
    np.testing.assert_allclose(stored.part_depth("body"), crossed_person(True).part_depth("body") * 0.5, atol=0.01)
    with pytest.raises(FileNotFoundError, match="depth_from"):
        extract(frames, tmp_path / "ds2", backend="openpose_json", keypoints_dir=str(plain), depth_from="nowhere",
                progress=False)
