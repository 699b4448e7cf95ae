"""The pose puppet, driven headlessly: joints turn as a puppet's limbs, and a frame comes back for any angles."""

from __future__ import annotations

import numpy as np
import pytest

from dancenow_utils.pose.formats import N_BODY, N_FACE, N_HAND, joint
from dancenow_utils.pose.keypoints import Person
from dancenow_utils.transfer.puppet import JOINTS, PRESETS, Puppet, pose_person


@pytest.fixture(scope="module")
def target(tmp_path_factory):
    """Training poses of the demo character, drawn from its ground-truth keypoints at the tiny preset's size."""
    from dancenow_utils.pose.extract import extract
    from dancenow_utils.synthetic import make_demo

    demo = make_demo(tmp_path_factory.mktemp("demo"), size=128, n_train=6, n_heldout=2, n_source=2, seed=3,
                     progress=False)
    root = tmp_path_factory.mktemp("data") / "dataset"
    extract(demo.video("target_train"), root, "train", backend="openpose_json",
            keypoints_dir=str(demo.keypoints("target_train")), image_size=64, smooth_window=1, progress=False)
    return root / "train_keypoints"


@pytest.fixture(scope="module")
def gen(target):
    """An untrained tiny generator (the puppet's behaviour does not depend on what it learnt)."""
    import torch

    from dancenow_utils.config import make_config
    from dancenow_utils.models.inference import Generator
    from dancenow_utils.models.networks import build_generator
    from dancenow_utils.pose.settings import PoseSettings

    torch.manual_seed(0)
    cfg = make_config("tiny")
    settings = PoseSettings.load(target / "settings.json")
    return Generator(build_generator(cfg).eval(), cfg, torch.device("cpu"), "fp32", target / "none_G.pth", settings)


def _standing() -> Person:
    body = np.zeros((N_BODY, 3), np.float32)
    for name, xy in {"Nose": (50, 20), "Neck": (50, 30), "RShoulder": (40, 30), "RElbow": (30, 40),
                     "RWrist": (20, 50), "LShoulder": (60, 30), "LElbow": (70, 40), "LWrist": (80, 50),
                     "MidHip": (50, 60), "RHip": (45, 60), "RKnee": (45, 75), "RAnkle": (45, 90),
                     "LHip": (55, 60), "LKnee": (55, 75), "LAnkle": (55, 90)}.items():
        body[joint(name)] = (*xy, 1.0)
    hand = np.zeros((N_HAND, 3), np.float32)
    hand[:, :2] = (20, 52)
    hand[:, 2] = 1
    face = np.zeros((N_FACE, 3), np.float32)
    face[:, :2] = (50, 18)
    face[:, 2] = 1
    return Person(body, face, None, hand)


def test_a_joint_turns_its_limb_and_nothing_else():
    base = _standing()
    bent = pose_person(base, {"RElbow": 90})
    elbow = base.body[joint("RElbow"), :2]
    # the forearm (elbow -> wrist: left and down on the screen) turns 90 degrees counter-clockwise on the screen:
    # right and down; the hand turns with it
    np.testing.assert_allclose(bent.body[joint("RWrist"), :2] - elbow, (10, 10), atol=1e-4)
    np.testing.assert_allclose(bent.right_hand[:, :2] - elbow, [[12, 10]] * N_HAND, atol=1e-4)
    untouched = [i for i in range(N_BODY) if i != joint("RWrist")]
    np.testing.assert_array_equal(bent.body[untouched], base.body[untouched])
    np.testing.assert_array_equal(bent.face, base.face)
    # a shoulder carries the elbow's turn along; 0 everywhere is the training pose
    both = pose_person(base, {"RShoulder": 90, "RElbow": -90})
    assert np.linalg.norm(both.body[joint("RWrist"), :2] - both.body[joint("RElbow"), :2]) == pytest.approx(
        np.hypot(10, 10), abs=1e-4)
    np.testing.assert_array_equal(pose_person(base, dict.fromkeys(JOINTS, 0)).body, base.body)
    # the head turns the face about the neck
    tilted = pose_person(base, {"Head": 30})
    assert not np.allclose(tilted.face[:, :2], base.face[:, :2])
    np.testing.assert_array_equal(tilted.body[joint("Neck")], base.body[joint("Neck")])


def test_unknown_joint_names_the_valid_ones():
    with pytest.raises(ValueError, match="RElbow"):
        pose_person(_standing(), {"RightElbow": 10})


def test_set_joints_and_get_a_frame(gen, target):
    puppet = Puppet.from_dataset(gen, target)
    frame = puppet.set({"RElbow": 40})
    assert frame.shape == (64, 64, 3) and frame.dtype == np.uint8
    assert puppet.angles == {"RElbow": 40.0}
    assert puppet.last_ms > 0
    assert not np.array_equal(frame, puppet.set({}))  # the generator sees the changed pose
    grid = puppet.preset_grid()
    assert grid.shape[0] == 2 * 64 + 2 and grid.shape[1] == len(PRESETS) * (64 + 2) - 2


def test_moving_an_elbow_changes_the_pose_only_near_that_arm(gen, target):
    puppet = Puppet.from_dataset(gen, target)
    before = puppet.pose_image({})
    after = puppet.pose_image({"RElbow": 40})
    changed = np.argwhere(np.abs(before.astype(int) - after.astype(int)).max(axis=2) > 0)
    assert len(changed), "bending the elbow must change the stick figure"
    # every changed pixel lies around the right forearm and hand, before or after the turn
    pts = [p.body[[joint("RElbow"), joint("RWrist")], :2] for p in (puppet.person({}), puppet.person({"RElbow": 40}))]
    pts += [p.right_hand[p.right_hand[:, 2] > 0, :2] for p in (puppet.person({}), puppet.person({"RElbow": 40}))
            if p.right_hand is not None]
    pts = np.concatenate(pts)
    margin = 4  # half a limb's width, the joint dots and anti-aliasing at 64 px
    lo, hi = pts.min(axis=0) - margin, pts.max(axis=0) + margin
    ys, xs = changed[:, 0], changed[:, 1]
    assert (xs >= lo[0]).all() and (xs <= hi[0]).all() and (ys >= lo[1]).all() and (ys <= hi[1]).all()
    # and the other arm's and the legs' pixels are untouched
    left = puppet.person({}).body[[joint("LElbow"), joint("LWrist"), joint("LKnee"), joint("RKnee")], :2]
    for x, y in np.round(left).astype(int):
        assert np.array_equal(before[y, x], after[y, x])


def test_widget_redraws_on_a_slider_change(gen, target):
    pytest.importorskip("ipywidgets")
    puppet = Puppet.from_dataset(gen, target)
    box = puppet.widget()

    def find(w, kind, description=None):
        if type(w).__name__ == kind and (description is None or w.description == description):
            return w
        for child in getattr(w, "children", ()):
            found = find(child, kind, description)
            if found is not None:
                return found
        return None

    image, slider = find(box, "Image"), find(box, "IntSlider", "R knee")
    first = image.value
    slider.value = 60
    assert puppet.angles["RKnee"] == 60 and image.value != first
    find(box, "Button").click()
    assert set(puppet.angles.values()) == {0.0}
