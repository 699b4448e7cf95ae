"""Training draws rare pose kinds more often (``pose_balance``) and jitters its pairs (``jitter``), issue 25:
deterministically, and a resumed run trains as the uninterrupted one."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest
import torch

from dancenow_utils.config import make_config
from dancenow_utils.data.balance import describe, kind_weights, sampled_shares
from dancenow_utils.data.datasets import EpochBatchSampler, epoch_batches, epoch_order, jittered
from dancenow_utils.pose.kinds import POSE_KINDS
from dancenow_utils.training.stages import build_trainer
from tests.conftest import full_and_resumed

KINDS = ["crossed arms"] * 5 + ["hands overlapping"] * 5 + ["arms raised"] * 80 + ["others"] * 10


def test_balance_zero_is_a_plain_shuffle():
    assert kind_weights(KINDS, 0.0) is None
    assert epoch_batches(100, 4, 3, 1) == epoch_batches(100, 4, 3, 1, weights=None)
    assert sorted(epoch_order(100, 3, 1)) == list(range(100))  # every item once


def test_balance_one_draws_every_kind_equally_often():
    shares = sampled_shares(KINDS, kind_weights(KINDS, 1.0))
    assert all(s["drawn"] == pytest.approx(0.25) for s in shares.values())
    half = sampled_shares(KINDS, kind_weights(KINDS, 0.5))
    # in between: rare kinds drawn more often than their share of frames, the common kind less, order kept
    assert half["crossed arms"]["share"] < half["crossed arms"]["drawn"] < 0.25
    assert 0.25 < half["arms raised"]["drawn"] < half["arms raised"]["share"]
    line = describe(half)
    assert line.startswith("pose kinds in training: ") and all(k in line for k in POSE_KINDS)


def test_weighted_epochs_keep_their_length_are_reproducible_and_follow_the_weights():
    weights = kind_weights(KINDS, 1.0)
    a = epoch_order(100, 0, 2, weights)
    assert len(a) == 100 and a == epoch_order(100, 0, 2, weights) and a != epoch_order(100, 0, 3, weights)
    drawn = Counter(KINDS[i] for e in range(40) for i in epoch_order(100, 0, e, weights))
    assert all(abs(drawn[k] / 4000 - 0.25) < 0.03 for k in POSE_KINDS)
    sampler = EpochBatchSampler(100, 4, 0, weights=weights)
    sampler.set_epoch(2, start=5)  # exact resume mid-epoch: the same batches from batch 5 on
    assert [[i for i, _ in b] for b in sampler] == epoch_batches(100, 4, 0, 2, weights=weights)[5:]
    shards = [epoch_batches(100, 2, 0, 2, r, 2, weights) for r in range(2)]
    merged = [x for r0, r1 in zip(*shards) for pair in zip(r0, r1) for x in pair]
    assert merged[:8] == a[:8]  # the ranks split one global order


def test_bad_balance_is_refused_by_name():
    with pytest.raises(ValueError, match="pose_balance"):
        make_config("tiny", {"pose_balance": 1.5})
    with pytest.raises(ValueError, match="pose_balance"):
        kind_weights(KINDS, -0.1)
    with pytest.raises(ValueError, match="one weight per item"):
        epoch_order(10, 0, 0, [1.0] * 9)


def test_training_with_balance_draws_by_the_frames_kinds(tiny_dataset, tmp_path, capsys):
    cfg = make_config("tiny", {"max_dataset_size": 12, "niter": 1, "niter_decay": 0, "pose_balance": 1.0})
    tr = build_trainer(cfg, tiny_dataset / "dataset", "balanced", tmp_path, resume=False, progress=False)
    assert "pose kinds in training:" in capsys.readouterr().out
    kinds = tr.data.pose_kinds()[:len(tr.dataset)]
    assert len(kinds) == 12 and set(kinds) <= set(POSE_KINDS)
    counts = Counter(kinds)
    assert tr.sampler.weights == [counts[k] ** -1.0 for k in kinds]
    tr.train()
    assert tr.iteration == 6
    plain = build_trainer(cfg.with_overrides({"pose_balance": 0.0}), tiny_dataset / "dataset", "plain", tmp_path,
                          resume=False, progress=False)
    assert plain.sampler.weights is None and "pose kinds in training:" not in capsys.readouterr().out


def test_jitter_moves_pose_and_frame_alike_and_pads_each_as_its_background():
    torch.manual_seed(0)
    pose = -torch.ones(3, 32, 32)
    pose[:, 10:14, 15:17] = 1.0  # a white stick on black
    frame = torch.rand(3, 32, 32) * 2 - 1
    labels = torch.zeros(1, 32, 32, dtype=torch.int64)
    labels[0, 10:14, 15:17] = 7
    item = {"A": pose, "B": frame, "A_next": pose.clone(), "inst": labels}
    same = jittered(item, (0.0, 0.0, 1.0, 0.0))
    assert all(torch.allclose(same[k].float(), item[k].float(), atol=1e-5) for k in item)
    moved = jittered(item, (0.25, -0.0625, 1.0, 0.0))  # a move alone: 8 pixels right, 2 up, in whole pixels
    assert torch.equal(moved["A"], moved["A_next"])  # a temporal pair moves as one
    assert torch.equal(moved["A"][:, 8:12, 23:25], pose[:, 10:14, 15:17])
    assert moved["A"][:, :, :8].max() == -1.0  # black comes in
    assert torch.equal(moved["B"][:, :30, 8:], frame[:, 2:, :24])  # every detail kept
    assert torch.equal(moved["B"][:, :30, :8], frame[:, 2:, :1].expand(-1, -1, 8))  # the edge pixels fill in
    assert moved["inst"].dtype == torch.int64 and set(moved["inst"].unique().tolist()) == {0, 7}
    assert torch.equal(moved["inst"][0, 8:12, 23:25], torch.full((4, 2), 7))
    turned = jittered(item, (0.0, 0.0, 1.1, 10.0))
    assert not torch.allclose(turned["A"], pose) and turned["A"].min() >= -1.0 - 1e-6
    assert turned["inst"].dtype == torch.int64 and set(turned["inst"].unique().tolist()) <= {0, 7}


def test_jitter_is_drawn_per_epoch_reproducibly_and_resumes_exactly():
    sampler = EpochBatchSampler(10, 2, 0, jitter=0.5)
    sampler.set_epoch(1)
    full = list(sampler)
    assert all(len(key) == 3 for batch in full for key in batch)
    transforms = [key[2] for batch in full for key in batch]
    assert len(set(transforms)) == 10
    assert all(abs(dx) <= 0.05 and abs(dy) <= 0.05 and abs(s - 1) <= 0.05 and abs(deg) <= 5
               for dx, dy, s, deg in transforms)
    sampler.set_epoch(1, start=3)
    assert list(sampler) == full[3:]
    sampler.set_epoch(2)
    assert list(sampler) != full
    moves = EpochBatchSampler(10, 2, 0, jitter=1.0, jitter_kind="shift")
    assert all(key[2][2:] == (1.0, 0.0) for batch in moves for key in batch)  # no scale, no turn
    plain = EpochBatchSampler(10, 2, 0)
    assert all(len(key) == 2 for batch in plain for key in batch)
    with pytest.raises(ValueError, match="jitter"):
        make_config("tiny", {"jitter": 2})
    with pytest.raises(ValueError, match="jitter_kind"):
        make_config("tiny", {"jitter_kind": "warp"})


def test_the_last_epochs_train_without_jitter():
    """``jitter_off_epochs``: the first epochs jitter (the same draws as without it), the last ones see the frames as
    filmed, so the generator settles the background that jitter moved."""
    limited, always = EpochBatchSampler(10, 2, 0, jitter=0.5, jitter_epochs=2), EpochBatchSampler(10, 2, 0, jitter=0.5)
    for epoch in range(4):
        limited.set_epoch(epoch)
        always.set_epoch(epoch)
        if epoch < 2:
            assert list(limited) == list(always)
        else:
            assert all(len(key) == 2 for batch in limited for key in batch)
            assert [[key[:2] for key in batch] for batch in always] == list(limited)  # the same order and flips
    assert make_config("demo").jitter_off_epochs == 2
    with pytest.raises(ValueError, match="jitter_off_epochs"):
        make_config("tiny", {"jitter_off_epochs": -1})


def test_sharp_jitter_turns_as_affine_does_and_keeps_every_colour():
    """``jitter_kind="sharp"``: affine's transforms, resampled by nearest neighbour, so a small hand or the shirt's
    star keeps its colours instead of blending into the shirt."""
    affine = [key[2] for batch in EpochBatchSampler(10, 2, 0, jitter=0.5) for key in batch]
    sharp = [key[2] for batch in EpochBatchSampler(10, 2, 0, jitter=0.5, jitter_kind="sharp") for key in batch]
    assert sharp == [(*t, "nearest") for t in affine]
    g = torch.Generator().manual_seed(0)
    frame = torch.rand(3, 32, 32, generator=g) * 2 - 1
    pose = -torch.ones(3, 32, 32)
    pose[:, 10:14, 15:17] = 1.0
    hands = torch.zeros(1, 32, 32)
    hands[:, 10:14, 15:17] = 1.0
    item = {"A": pose, "B": frame, "H": hands}
    transform = (0.05, -0.03, 1.05, 5.0)
    blended, kept = jittered(item, transform), jittered(item, (*transform, "nearest"))
    colours = set(frame.flatten().tolist())
    assert all(v in colours for v in kept["B"].flatten().tolist())
    assert not all(v in colours for v in blended["B"].flatten().tolist())  # bilinear mixes neighbours
    assert set(kept["A"].unique().tolist()) <= {-1.0, 1.0} and set(kept["H"].unique().tolist()) <= {0.0, 1.0}
    assert torch.equal(kept["A"][0] > 0, kept["H"][0] > 0)  # pose and hand map stay aligned
    assert ((blended["A"][0] > 0) == (kept["A"][0] > 0)).float().mean() > 0.97  # the same move
    make_config("tiny", {"jitter": 0.2, "jitter_kind": "sharp"})


def test_training_with_jitter_resumes_exactly(tiny_dataset, tmp_path):
    """Through the epochs that jitter and, with ``jitter_off_epochs=1``, across into the last epoch, which does not
    (and so trains on other inputs than the run that jitters throughout)."""
    trained = []
    for off in (0, 1):
        cfg = make_config("tiny", {"max_dataset_size": 8, "niter": 1, "niter_decay": 1, "jitter": 1.0,
                                   "jitter_off_epochs": off, "save_latest_freq": 3})
        a, b = full_and_resumed(cfg, tiny_dataset / "dataset", tmp_path / str(off))
        assert all(torch.equal(a[k], b[k]) for k in a)
        trained.append(a)
    assert not all(torch.equal(trained[0][k], trained[1][k]) for k in trained[0])


def test_a_turn_of_a_wide_image_is_a_turn_in_pixels():
    import numpy as np

    pose = -torch.ones(3, 64, 128)  # 2:1, as the EDN presets
    pose[:, 32, 20:108] = 1.0
    pose[:, 8:56, 64] = 1.0
    turned = jittered({"A": pose}, (0.0, 0.0, 1.0, 10.0))["A"][0]
    ys, xs = np.nonzero((turned > 0).numpy())
    across = (abs(ys - 32) < 12) & (abs(xs - 64) > 10)
    down = (abs(xs - 64) < 12) & (abs(ys - 32) > 6)
    tilt_across = np.degrees(np.arctan(np.polyfit(xs[across], ys[across], 1)[0]))
    tilt_down = np.degrees(np.arctan(np.polyfit(ys[down], xs[down], 1)[0]))
    assert abs(abs(tilt_across) - 10) < 0.5 and abs(abs(tilt_down) - 10) < 0.5  # both lines turn alike: no skew


def test_balanced_epochs_flip_each_draw_and_one_kind_is_a_plain_shuffle():
    weights = [1.0] * 2 + [0.01] * 98  # two items drawn over and over
    sampler = EpochBatchSampler(100, 4, 0, flip=True, weights=weights)
    sampler.set_epoch(1)
    drawn = [key for batch in sampler for key in batch]
    flips_of_item_0 = {flip for i, flip in drawn if i == 0}
    assert flips_of_item_0 == {True, False}  # a frame drawn many times is not always flipped alike
    sampler.set_epoch(1, start=4)
    assert [key for batch in sampler for key in batch] == drawn[16:]
    assert kind_weights(["others"] * 10, 1.0) is None


def test_the_lesson_figure_shows_a_pair_as_filmed_and_jittered(tiny_dataset, capsys):
    """Notebook 02's jitter figure: the first pair as filmed, then moved by the config's draws (each tile differs
    from the one as filmed); none without jitter."""
    from dancenow_utils.notebook.lessons import jitter_image
    from dancenow_utils.notebook.pipeline import jitter_figure

    img = jitter_image(tiny_dataset / "dataset", (32, 32), 1.0, "sharp", n=3, zoom=1)
    assert img.shape == (32, 3 * 32 + 2 * 2, 3)  # three tiles, two gaps
    below_label = [img[16:, k * 34:k * 34 + 32].astype(int) for k in range(3)]
    assert all(np.abs(t - below_label[0]).mean() > 1 for t in below_label[1:])
    cfg = make_config("tiny", {"jitter": 0.1, "jitter_kind": "sharp", "width": 32, "height": 32})
    assert jitter_figure(cfg, tiny_dataset / "dataset").shape[2] == 3
    assert jitter_figure(make_config("tiny"), tiny_dataset / "dataset") is None
    assert "jitter=0" in capsys.readouterr().out
