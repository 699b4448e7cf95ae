"""Training pairs seen in a mirror (``mirror``): mirrored keypoints, poses drawn again from them, and training."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
import torch

from dancenow_utils.config import make_config
from dancenow_utils.data.datasets import EpochBatchSampler
from dancenow_utils.data.mirror import MirroredPoses
from dancenow_utils.io_utils import read_image
from dancenow_utils.layout import DatasetLayout
from dancenow_utils.pose.formats import (
    BODY_25_COLORS,
    BODY_25_MIRROR,
    BODY_25_NAMES,
    FACE_70_MIRROR,
    joint,
)
from dancenow_utils.pose.keypoints import Person
from dancenow_utils.pose.render import render_pose
from dancenow_utils.pose.settings import PoseSettings
from dancenow_utils.training.stages import build_trainer
from tests.conftest import full_and_resumed


def crossing_person() -> Person:
    """A 64x64 person whose right forearm (image left) crosses to the image's right side, with depth and hands."""
    p = Person()
    places = {"Nose": (32, 10), "Neck": (32, 16), "RShoulder": (24, 17), "RElbow": (20, 28), "RWrist": (40, 30),
              "LShoulder": (40, 17), "LElbow": (45, 28), "LWrist": (27, 33), "MidHip": (32, 38),
              "RHip": (28, 38), "LHip": (36, 38), "RKnee": (27, 48), "LKnee": (38, 48), "RAnkle": (26, 58),
              "LAnkle": (40, 58), "REye": (30, 9), "LEye": (34, 9)}
    for name, xy in places.items():
        p.body[joint(name)] = (*xy, 0.9)
    p.right_hand = np.column_stack([np.linspace(40, 43, 21), np.linspace(30, 33, 21), np.full(21, 0.8)])
    p.face = np.column_stack([np.linspace(28, 36, 70), np.linspace(6, 14, 70), np.full(70, 0.7)])
    p.face[5] = 0  # a face point not found: stays 0, 0, 0
    z = np.linspace(-5, 5, 25).astype(np.float32)
    return Person(p.body, p.face, None, p.right_hand,
                  depth={"body": z, "right_hand": np.full(21, -7.0, np.float32), "face": np.zeros(70, np.float32)})


def test_the_mirror_permutations_swap_sides_and_undo_themselves():
    for order in (BODY_25_MIRROR, FACE_70_MIRROR):
        assert sorted(order) == list(range(len(order)))
        assert all(order[order[i]] == i for i in range(len(order)))
    named = {BODY_25_NAMES[i]: BODY_25_NAMES[j] for i, j in enumerate(BODY_25_MIRROR)}
    assert named["RWrist"] == "LWrist" and named["LBigToe"] == "RBigToe" and named["REar"] == "LEar"
    assert named["Nose"] == "Nose" and named["Neck"] == "Neck" and named["MidHip"] == "MidHip"
    # the face: jaw ends, outer eye corners, mouth corners and pupils swap; the nose tip and chin stay
    assert (FACE_70_MIRROR[0], FACE_70_MIRROR[36], FACE_70_MIRROR[48], FACE_70_MIRROR[68]) == (16, 45, 54, 69)
    assert (FACE_70_MIRROR[8], FACE_70_MIRROR[30], FACE_70_MIRROR[57]) == (8, 30, 57)


def test_a_mirrored_person_has_its_sides_swapped_and_its_depth_kept():
    p = crossing_person()
    m = p.mirrored(64)
    # the mirror image's right wrist is where the original's left wrist appears in the flipped image
    assert m.body[joint("RWrist")].tolist() == pytest.approx([63 - 27, 33, 0.9])
    assert m.body[joint("LWrist")].tolist() == pytest.approx([63 - 40, 30, 0.9])
    assert m.body[joint("Nose")].tolist() == pytest.approx([31, 10, 0.9])
    assert (m.body[joint("LBigToe")] == 0).all()  # missing stays missing, not moved to x = 63
    assert m.right_hand is None and m.left_hand[:, 0] == pytest.approx(63 - p.right_hand[:, 0])
    assert (m.face[FACE_70_MIRROR.index(5)] == 0).all()
    assert m.part_depth("left_hand") == pytest.approx(np.full(21, -7.0))  # the hand keeps its depth
    assert m.part_depth("body")[joint("RWrist")] == p.part_depth("body")[joint("LWrist")]
    twice = m.mirrored(64)
    for a, b in zip(twice.arrays(), p.arrays()):
        assert (a is None and b is None) or np.allclose(a, b, atol=1e-4)  # x = 63 - (63 - x), in float32
    assert all(np.array_equal(twice.depth[k], p.depth[k]) for k in p.depth)


def bone_colour(outer: str) -> tuple[int, int, int]:
    """A bone's colour: its outer keypoint's (as OpenPose draws)."""
    return BODY_25_COLORS[joint(outer)]


def test_a_pose_drawn_mirrored_keeps_its_colours_where_a_flipped_one_swaps_them():
    settings = PoseSettings(draw_hands=False, width=256, height=256)
    p = crossing_person().transformed(4.0, (0.0, 0.0))  # at 256 px, limbs 5 px wide: solid colour in the middle
    drawn = render_pose([p], settings)
    mirrored = render_pose([p.mirrored(256)], settings)
    # the same lines in the same places as the flipped drawing, but for a few antialiased edge pixels
    shape, flipped_shape = mirrored.any(axis=2), drawn[:, ::-1].any(axis=2)
    assert (shape != flipped_shape).sum() < 0.03 * flipped_shape.sum()
    # the upper arm on the image's left: the flipped drawing colours it as the left arm, the mirrored one as the right
    x, y = 255 - 170, 90  # the middle of the original's left upper arm, (160, 68) to (180, 112), flipped
    assert tuple(drawn[:, ::-1][y, x]) == bone_colour("LElbow")
    assert tuple(mirrored[y, x]) == bone_colour("RElbow")


@pytest.fixture(scope="module")
def small_dataset(tiny_dataset, tmp_path_factory):
    root = tmp_path_factory.mktemp("mirror") / "dataset"
    shutil.copytree(tiny_dataset / "dataset", root)
    return root


def test_a_flipped_training_item_takes_its_pose_drawn_mirrored(small_dataset, tmp_path):
    cfg = make_config("tiny", {"max_dataset_size": 6, "niter": 1, "niter_decay": 0, "mirror": 0.5})
    trainer = build_trainer(cfg, small_dataset, "mirror", tmp_path, resume=False, progress=False)
    frames = trainer.dataset
    layout = DatasetLayout(small_dataset, "train")
    name = frames.names()[2]
    expected = MirroredPoses(layout, [name], 64, 64)[0]
    plain, flipped = frames[(2, False)], frames[(2, True)]
    to_uint8 = lambda t: t.add(1).mul(127.5).round().byte().permute(1, 2, 0).numpy()  # noqa: E731
    assert np.array_equal(to_uint8(flipped["A"]), expected)
    assert np.array_equal(to_uint8(plain["A"]), read_image(layout.A / f"{name}.png"))  # unflipped: as drawn
    assert (flipped["B"] == plain["B"].flip(-1)).all()  # the frame is flipped as pix2pixHD flips it
    assert not np.array_equal(expected, to_uint8(plain["A"].flip(-1)))  # not the plain flip: colours keep sides
    # the same figure in the mirror: the drawn pixels of the two differ only along antialiased edges
    assert (expected.any(axis=2) != to_uint8(plain["A"]).any(axis=2)[:, ::-1]).mean() < 0.02
    assert trainer.sampler.flip_chances == [0.5] * 6  # each item is mirrored with chance 0.5 each epoch
    losses = trainer.train(max_iterations=2)
    assert trainer.iteration == 2 and losses and all(np.isfinite(v) for v in losses.values())


def test_mirror_kinds_mirrors_only_those_poses(small_dataset, tmp_path):
    cfg = make_config("tiny", {"niter": 1, "niter_decay": 0, "mirror": 0.5, "mirror_kinds": "others"})
    trainer = build_trainer(cfg, small_dataset, "kinds", tmp_path, resume=False, progress=False)
    kinds = trainer.data.pose_kinds()
    assert "others" in kinds and set(kinds) != {"others"}  # the tiny demo has other kinds too
    assert trainer.sampler.flip_chances == [0.5 if k == "others" else 0.0 for k in kinds]
    flipped = {i for batch in trainer.sampler for i, flip, *_ in batch if flip}
    assert flipped and all(kinds[i] == "others" for i in flipped)
    cfg = make_config("tiny", {"mirror": 0.5, "mirror_kinds": "crossed arms, hands overlapping"})
    assert cfg.mirror_kinds == "crossed arms, hands overlapping"  # spaces after the commas are allowed


def test_a_temporal_pair_is_mirrored_frame_by_frame(small_dataset, tmp_path):
    cfg = make_config("tiny", {"max_dataset_size": 6, "temporal": True, "mirror": 0.5})
    trainer = build_trainer(cfg, small_dataset, "temporal", tmp_path, resume=False, progress=False)
    frames, names = trainer.data.frames, trainer.data.frames.names()
    expected = MirroredPoses(DatasetLayout(small_dataset, "train"), names[2:4], 64, 64)
    flipped, plain = frames[(2, True)], frames[(2, False)]
    to_uint8 = lambda t: t.add(1).mul(127.5).round().byte().permute(1, 2, 0).numpy()  # noqa: E731
    assert np.array_equal(to_uint8(flipped["A"]), expected[0])
    assert np.array_equal(to_uint8(flipped["A_next"]), expected[1])
    assert (flipped["B_next"] == plain["B_next"].flip(-1)).all()
    assert trainer.sampler.flip_chances == [0.5] * 5  # five consecutive pairs of six frames


def test_flip_chances_per_item_draw_as_pix2pixhd_flips_at_one_half():
    plain = EpochBatchSampler(40, 4, 3, flip=True)
    halves = EpochBatchSampler(40, 4, 3, flip=[0.5] * 40)
    some = EpochBatchSampler(40, 4, 3, flip=[0.5] * 20 + [0.0] * 20)
    for epoch in range(3):
        for sampler in (plain, halves, some):
            sampler.set_epoch(epoch)
        assert plain.flips() == halves.flips()  # the same draws as before chances were per item
        assert some.flips()[:20] == plain.flips()[:20] and not any(some.flips()[20:])
    assert EpochBatchSampler(4, 2, 0, flip=[0.0] * 4).flip_chances is None  # no chance anywhere: no flips
    with pytest.raises(ValueError, match="one flip chance per item"):
        EpochBatchSampler(4, 2, 0, flip=[0.5] * 3)


def test_the_lesson_figure_shows_a_pair_as_filmed_flipped_and_mirrored(tiny_dataset, capsys):
    from dancenow_utils.notebook.pipeline import mirror_figure

    img = mirror_figure(make_config("tiny", {"mirror": 0.5, "width": 32, "height": 32}), tiny_dataset / "dataset")
    assert img.shape[1] == 3 * 64 + 2 * 2  # three tiles at twice the size, two gaps
    tiles = [img[16:, k * 66:k * 66 + 64].astype(int) for k in range(3)]
    assert np.abs(tiles[1] - tiles[2]).mean() > 0.5  # flipped and mirrored differ: the pose's colours
    assert mirror_figure(make_config("tiny"), tiny_dataset / "dataset") is None
    assert "mirror=0" in capsys.readouterr().out


def test_mirror_says_what_it_cannot_go_with_and_what_it_needs(small_dataset, tmp_path):
    for overrides, words in (({"flip": True}, "flip=False, or mirror=0"), ({"mirror": 1.5}, "between 0"),
                             ({"mirror_kinds": "legs"}, "mirror_kinds"), ({"mirror": True}, "expects float")):
        with pytest.raises(ValueError, match=words):
            make_config("tiny", {"mirror": 0.5, **overrides})
    names = sorted(p.name.removesuffix("_keypoints.json")
                   for p in DatasetLayout(small_dataset, "train").keypoints.glob("*_keypoints.json"))[:3]
    poses = MirroredPoses(DatasetLayout(small_dataset, "train"), names, 32, 32)
    assert poses[1].shape == (32, 32, 3) and list(poses._kept) == [1]  # drawn when asked for, then kept
    gap = tmp_path / "gap"
    shutil.copytree(small_dataset, gap)
    DatasetLayout(gap, "train").keypoint_file(names[1]).unlink()
    with pytest.raises(FileNotFoundError, match=f"{names[1]}.*re-run pose extraction"):
        MirroredPoses(DatasetLayout(gap, "train"), names, 32, 32)
    bare = tmp_path / "bare"
    shutil.copytree(small_dataset, bare)
    shutil.rmtree(DatasetLayout(bare, "train").keypoints)
    cfg = make_config("tiny", {"max_dataset_size": 4, "mirror": 0.5})
    with pytest.raises(ValueError, match="notebook 01.*mirror=0"):
        build_trainer(cfg, bare, "bare", tmp_path / "ck", resume=False, progress=False)


def test_training_with_mirror_resumes_exactly(small_dataset, tmp_path):
    """A run stopped mid-epoch and resumed mirrors the same pairs as one trained straight through."""
    cfg = make_config("tiny", {"max_dataset_size": 8, "niter": 1, "niter_decay": 1, "mirror": 0.5,
                               "save_latest_freq": 3})
    a, b = full_and_resumed(cfg, small_dataset, tmp_path)
    assert all(torch.equal(a[k], b[k]) for k in a)
