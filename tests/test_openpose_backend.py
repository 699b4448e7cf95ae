"""The CMU body network's shape and the PAF decoder, tested on ideal heatmaps and PAFs built from known skeletons."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from dancenow_utils.pose.openpose_backend import LIMBS, BodyPoseNet, OpenPoseEstimator, decode, load_body_net


def skeleton(cx: float, top: float, scale: float) -> np.ndarray:
    """A standing COCO-18 skeleton (x, y, 1)."""
    rel = {0: (0, 0), 1: (0, 20), 2: (-18, 22), 3: (-26, 48), 4: (-30, 72), 5: (18, 22), 6: (26, 48), 7: (30, 72),
           8: (-10, 78), 9: (-12, 118), 10: (-13, 158), 11: (10, 78), 12: (12, 118), 13: (13, 158), 14: (-5, -5),
           15: (5, -5), 16: (-10, -2), 17: (10, -2)}
    return np.array([[cx + scale * x, top + scale * y, 1.0] for x, y in (rel[k] for k in range(18))], np.float32)


def ideal_maps(people: list[np.ndarray], h: int, w: int, sigma: float = 3.0, width: float = 4.0):
    """Heatmaps with a Gaussian of height ``c`` at every keypoint ``(x, y, c)`` and unit PAFs on a capsule around
    every limb (a later person's limb overwrites an earlier one's where they overlap)."""
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    heat = np.zeros((h, w, 19), np.float32)
    paf = np.zeros((h, w, 38), np.float32)
    for p in people:
        for k, (x, y, c) in enumerate(p):
            heat[..., k] = np.maximum(heat[..., k], c * np.exp(-((xx - x) ** 2 + (yy - y) ** 2) / (2 * sigma**2)))
        for a, b, cx, cy in LIMBS:
            pa, pb = p[a, :2], p[b, :2]
            v = pb - pa
            n = np.linalg.norm(v)
            u = v / n
            rel_x, rel_y = xx - pa[0], yy - pa[1]
            along = rel_x * u[0] + rel_y * u[1]
            across = np.abs(rel_x * u[1] - rel_y * u[0])
            on = (along >= -width) & (along <= n + width) & (across <= width)  # a capsule, like a learnt PAF
            paf[on, cx] = u[0]
            paf[on, cy] = u[1]
    heat[..., 18] = np.clip(1 - heat[..., :18].max(axis=2), 0, 1)
    return heat, paf


def _match(found: list[np.ndarray], truth: np.ndarray) -> float:
    best = min(found, key=lambda f: np.abs(f[:, :2] - truth[:, :2]).mean())
    return float(np.abs(best[:, :2] - truth[:, :2]).max())


def test_decoder_recovers_one_person():
    truth = skeleton(100, 30, 1.0)
    heat, paf = ideal_maps([truth], 220, 200)
    people = decode(heat, paf)
    assert len(people) == 1
    assert _match(people, truth) <= 1.0


def test_decoder_separates_two_people():
    a, b = skeleton(70, 30, 1.0), skeleton(190, 50, 0.8)
    heat, paf = ideal_maps([a, b], 230, 260)
    people = decode(heat, paf)
    assert len(people) == 2
    assert _match(people, a) <= 1.0 and _match(people, b) <= 1.0
    assert all((p[:, 2] > 0).sum() == 18 for p in people)


def test_decoder_drops_fragments():
    truth = skeleton(100, 30, 1.0)
    heat, paf = ideal_maps([truth], 220, 200)
    heat[..., [0, 14, 15, 16, 17, 8, 9, 10, 11, 12, 13, 3, 4, 6, 7]] = 0  # only neck and shoulders left
    assert decode(heat, paf) == []


def test_network_matches_the_cmu_model():
    net = BodyPoseNet()
    n = sum(p.numel() for p in net.parameters())
    assert 52_200_000 < n < 52_400_000  # about 52.3 M; the converted file is about 209 MB
    keys = set(net.state_dict())
    for k in ("conv1_1.weight", "conv4_4_CPM.bias", "conv5_5_CPM_L1.weight", "conv5_5_CPM_L2.weight",
              "Mconv1_stage2_L1.weight", "Mconv7_stage6_L1.weight", "Mconv7_stage6_L2.bias"):
        assert k in keys
    assert net.state_dict()["Mconv1_stage2_L1.weight"].shape == (128, 185, 7, 7)
    with torch.no_grad():
        paf, heat = net(torch.zeros(1, 3, 64, 48))
    assert paf.shape == (1, 38, 8, 6) and heat.shape == (1, 19, 8, 6)


def test_missing_weights_say_what_is_needed(tmp_path):
    with pytest.raises(FileNotFoundError, match="body_pose_model.pth"):
        load_body_net(tmp_path / "nope.pth")
    with pytest.raises(FileNotFoundError, match="body_pose_model.pth"):
        OpenPoseEstimator("")


def test_estimator_runs_with_a_weights_file(tmp_path):
    torch.manual_seed(0)
    path = tmp_path / "body_pose_model.pth"
    torch.save(BodyPoseNet().state_dict(), path)
    est = OpenPoseEstimator(path)
    heat, paf = est.maps(np.zeros((100, 80, 3), np.uint8))
    assert heat.shape == (100, 80, 19) and paf.shape == (100, 80, 38)
    assert isinstance(est(np.zeros((100, 80, 3), np.uint8)), list)


def test_hand_network_matches_the_cmu_model():
    from dancenow_utils.pose.openpose_backend import HandPoseNet

    net = HandPoseNet()
    n = sum(p.numel() for p in net.parameters())
    assert 36_700_000 < n < 36_900_000  # about 36.8 M
    keys = set(net.state_dict())
    assert {"conv5_3_CPM.weight", "conv6_2_CPM.weight", "Mconv1_stage2.weight", "Mconv7_stage6.bias"} <= keys
    with torch.no_grad():
        assert net(torch.zeros(1, 3, 64, 64)).shape == (1, 22, 8, 8)


def test_hand_crop_and_decoding_return_frame_coordinates(tmp_path):
    from dancenow_utils.pose.openpose_backend import HandPoseNet, decode_hand, hand_box

    shoulder, elbow, wrist = np.array([100, 60, 1.0]), np.array([100, 100, 1.0]), np.array([100, 130, 1.0])
    # forearm 30, upper arm 40: side 1.5 * max(30, 36) = 54, centre (100, 139.9)
    assert hand_box(shoulder, elbow, wrist, (200, 200)) == (73, 112, 54)
    assert hand_box(np.array([0, 0, 0.0]), elbow, wrist, (200, 200)) is None
    heat = np.zeros((50, 50, 22), np.float32)
    heat[20, 30, 5] = 1.0
    pts = decode_hand(heat, sigma=0)
    assert tuple(pts[5, :2]) == (30, 20) and pts[4, 2] == 0
    torch.manual_seed(0)
    torch.save(BodyPoseNet().state_dict(), tmp_path / "body_pose_model.pth")
    torch.save(HandPoseNet().state_dict(), tmp_path / "hand_pose_model.pth")
    est = OpenPoseEstimator(tmp_path, hands=True, hand_scales=(0.25,))
    assert est.hand_net is not None
    out = est.hand(np.zeros((200, 200, 3), np.uint8), shoulder, elbow, wrist)
    assert out.shape == (21, 3)
