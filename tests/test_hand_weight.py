"""Hands and forearms weighed more in the L1 term (``hand_weight``): the maps, the loss, and training with them."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
import torch

from dancenow_utils.config import make_config
from dancenow_utils.data.datasets import jittered
from dancenow_utils.data.hands import hand_map
from dancenow_utils.io_utils import read_image
from dancenow_utils.models.pix2pixhd import l1_term
from dancenow_utils.pose.formats import joint
from dancenow_utils.pose.keypoints import Person
from dancenow_utils.training.stages import build_trainer


def arm_person(with_hand: bool = True) -> Person:
    """A person in a 64x64 image: torso 20 px, a right forearm from (20, 30) to (20, 44), its hand around (20, 48)."""
    p = Person()
    for name, xy in (("Neck", (32, 16)), ("MidHip", (32, 36)), ("RElbow", (20, 30)), ("RWrist", (20, 44))):
        p.body[joint(name)] = (*xy, 0.9)
    if with_hand:
        hand = np.zeros((21, 3), np.float32)
        hand[:, 0] = 20 + np.linspace(-2, 2, 21)
        hand[:, 1] = 46 + np.linspace(0, 4, 21)
        hand[:, 2] = 0.9
        p.right_hand = hand
    return p


def test_the_map_covers_the_forearm_and_the_hand_and_nothing_else():
    m = hand_map(arm_person(), 64, 64)
    assert m.shape == (64, 64) and m.dtype == np.float32 and set(np.unique(m)) == {0.0, 1.0}
    assert m[37, 20] == 1 and m[48, 20] == 1 and m[30, 20] == 1  # forearm, hand, elbow
    assert m[:, 40:].sum() == 0 and m[:20].sum() == 0  # the other side of the body and the head: nothing
    assert 0.01 < m.mean() < 0.1
    no_hand = hand_map(arm_person(with_hand=False), 64, 64)
    assert no_hand[44, 20] == 1 and no_hand.sum() < m.sum()  # a disc at the wrist stands in for the hand
    assert hand_map(None, 64, 64).sum() == 0 and hand_map(Person(), 64, 64).sum() == 0


def test_the_l1_term_counts_the_hands_one_plus_the_weight_times():
    cfg = make_config("tiny", {"use_l1": True, "lambda_l1": 2.0, "hand_weight": 9.0})
    fake, real = torch.zeros(1, 3, 4, 4), torch.ones(1, 3, 4, 4)
    hands = torch.zeros(1, 1, 4, 4)
    hands[..., :2, :] = 1  # half the pixels
    assert l1_term([fake], [real], cfg).item() == pytest.approx(2.0)
    assert l1_term([fake], [real], cfg, hands).item() == pytest.approx(2.0 * (0.5 * 10 + 0.5 * 1))
    off = make_config("tiny", {"use_l1": True, "lambda_l1": 2.0})
    assert l1_term([fake], [real], off, hands).item() == pytest.approx(2.0)  # hand_weight 0: maps ignored


def test_hand_weight_needs_the_l1_term_and_is_not_negative():
    with pytest.raises(ValueError, match="use_l1=True"):
        make_config("tiny", {"hand_weight": 5.0})
    with pytest.raises(ValueError, match="hand_weight"):
        make_config("tiny", {"use_l1": True, "hand_weight": -1.0})


def test_jitter_moves_the_hand_map_with_the_pose_and_the_frame():
    item = {"A": torch.full((3, 32, 32), -1.0), "B": torch.zeros(3, 32, 32), "H": torch.zeros(1, 32, 32)}
    item["A"][:, 10, 12] = 1.0
    item["B"][:, 10, 12] = 1.0
    item["H"][:, 10, 12] = 1.0
    for transform in ((0.125, 0.0, 1.0, 0.0), (0.1, -0.05, 1.05, 4.0)):
        out = jittered(item, transform)
        peaks = [divmod(int(out[k][0].argmax()), 32) for k in ("A", "B", "H")]
        assert peaks[0] == peaks[1] == peaks[2] != (10, 12)


def test_training_with_hand_weight_feeds_the_maps_and_names_missing_keypoints(tiny_dataset, tmp_path):
    cfg = make_config("tiny", {"max_dataset_size": 6, "niter": 1, "niter_decay": 0, "use_l1": True,
                               "hand_weight": 10.0})
    trainer = build_trainer(cfg, tiny_dataset / "dataset", "hands", tmp_path, resume=False, progress=False)
    item = trainer.dataset[0]
    assert item["H"].shape == (1, 64, 64) and item["H"].sum() > 0  # the tiny demo's arms are found
    assert "H" in trainer.fixed
    trainer.train()
    assert np.isfinite(trainer.last_losses["G_L1"])
    face = build_trainer(cfg, tiny_dataset / "dataset", "hands/face", tmp_path, resume=False, progress=False,
                         model="face", main_name="hands")
    assert "H" not in face.dataset[0]  # the face stage's L1 term is unweighted: no maps made for it
    plain = build_trainer(cfg.with_overrides({"hand_weight": 0.0}), tiny_dataset / "dataset", "plain", tmp_path,
                          resume=False, progress=False)
    assert "H" not in plain.dataset[0]
    copy = tmp_path / "no_keypoints"
    shutil.copytree(tiny_dataset / "dataset", copy)
    shutil.rmtree(copy / "train_keypoints")
    with pytest.raises(ValueError, match="train_keypoints does not exist"):
        build_trainer(cfg, copy, "hands2", tmp_path, resume=False, progress=False)


def test_the_lesson_figure_tints_what_the_loss_weighs(tiny_dataset, tmp_path):
    from dancenow_utils.notebook.lessons import hand_weight_image

    img = hand_weight_image(tiny_dataset / "dataset", zoom=1)
    h = read_image(next((tiny_dataset / "dataset" / "train_B").iterdir())).shape[0]
    assert img.ndim == 3 and img.shape[0] == h and img.shape[1] >= h
    tint = (img[..., 0] > 200) & (img[..., 1] < 150) & (img[..., 2] > 150)  # the magenta tint over the hands
    assert tint.any()
    bare = tmp_path / "bare"
    shutil.copytree(tiny_dataset / "dataset", bare, ignore=shutil.ignore_patterns("train_keypoints"))
    with pytest.raises(ValueError, match="train_keypoints"):
        hand_weight_image(bare)
