"""The forensic detector on a tiny run: synthetic frames against degraded copies, then end to end on a tiny model."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest
import torch

from dancenow_utils.evaluation.forensics import (
    Detector,
    evaluate_detector,
    forensic_check,
    generate_for_poses,
    score_video,
    train_detector,
)


def _clip(n: int, seed: int, combos: str, size: int = 64, people: list | None = None
          ) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Frames of the synthetic target and their stick figures (their keypoints appended to ``people``)."""
    from dancenow_utils.pose.render import render_pose
    from dancenow_utils.synthetic.character import TARGET_STYLE, background, render_character
    from dancenow_utils.synthetic.dance import dance_trajectory

    bg = background(TARGET_STYLE, size, size)
    frames, poses = [], []
    for p in dance_trajectory(n, seed, combos):
        img, _, person = render_character(TARGET_STYLE, p, size, size, bg)
        frames.append(img)
        poses.append(render_pose([person], size, size))
        if people is not None:
            people.append(person)
    return frames, poses


def _degrade(frames: list[np.ndarray], seed: int) -> list[np.ndarray]:
    """Stand-ins for generated frames: slightly blurred, with faint noise."""
    rng = np.random.default_rng(seed)
    out = []
    for f in frames:
        g = cv2.GaussianBlur(f, (3, 3), 0.8).astype(np.float32) + rng.normal(0, 4, f.shape)
        out.append(np.clip(g, 0, 255).astype(np.uint8))
    return out


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """Networks this small run as fast on one thread, and a second thread only waits on a busy shared CPU."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def data():
    train, train_poses = _clip(48, 0, "train")
    test, test_poses = _clip(24, 1, "heldout")
    return train, train_poses, _degrade(train, 0), test, test_poses, _degrade(test, 1)


@pytest.fixture(scope="module")
def detector(data):
    train, _, train_fake, *_ = data
    return train_detector(train, train_fake, steps=40, batch_size=16, seed=0, progress=False)


def test_detector_separates_held_out_frames(detector, data):
    *_, test, _, test_fake = data
    m = evaluate_detector(detector, test, test_fake)
    assert m["n"] == 48 and m["n_real"] == 24 and m["n_fake"] == 24
    assert m["auc"] > 0.9 and m["accuracy"] > 0.75
    assert m["mean_score_fake"] > m["mean_score_real"]
    scores = detector.score(test)
    assert scores.shape == (24,) and ((scores >= 0) & (scores <= 1)).all()


def test_training_is_deterministic_and_saves_exactly(data, detector, tmp_path):
    train, _, train_fake, test, *_ = data
    a = train_detector(train, train_fake, steps=5, batch_size=8, seed=7, progress=False)
    b = train_detector(train, train_fake, steps=5, batch_size=8, seed=7, progress=False)
    assert np.array_equal(a.score(test[:4]), b.score(test[:4]))
    detector.save(tmp_path / "det.pth")
    again = Detector.load(tmp_path / "det.pth")
    assert np.allclose(again.score(test[:6]), detector.score(test[:6]))
    assert again.meta == detector.meta
    torch.save({"G": {}, "config": {}}, tmp_path / "generator.pth")
    with pytest.raises(ValueError, match="not a dancenow forensic detector"):
        Detector.load(tmp_path / "generator.pth")
    with pytest.raises(FileNotFoundError, match="train one"):
        Detector.load(tmp_path / "missing.pth")


def test_pose_and_frame_detector(data):
    train, train_poses, train_fake, test, test_poses, test_fake = data
    det = train_detector(train, train_fake, train_poses, train_poses, steps=10, batch_size=8, progress=False)
    assert det.uses_pose and det.net.features[0].in_channels == 6
    m = evaluate_detector(det, test, test_fake, test_poses, test_poses)
    assert m["n"] == 48
    with pytest.raises(ValueError, match="pose images"):
        det.score(test)
    with pytest.raises(ValueError, match="both real and generated"):
        train_detector(train, train_fake, train_poses, None, steps=1, progress=False)


def test_score_video_and_folder(detector, data, tmp_path):
    from dancenow_utils.io_utils import write_image
    from dancenow_utils.video import write_video

    *_, test, _, test_fake = data
    write_video(tmp_path / "fake.mp4", test_fake, 10)
    assert score_video(detector, tmp_path / "fake.mp4", progress=False).shape == (24,)
    for i, f in enumerate(test[:5]):  # twice the size (pixels doubled): resized back exactly before scoring
        write_image(tmp_path / "frames" / f"{i:03d}.png", cv2.resize(f, (128, 128), interpolation=cv2.INTER_NEAREST))
    folder = score_video(detector, tmp_path / "frames", progress=False)
    assert folder.shape == (5,) and np.allclose(folder, detector.score(test[:5]))
    with pytest.raises(FileNotFoundError, match="no such video"):
        score_video(detector, tmp_path / "nothing.mp4", progress=False)


def test_large_frames_are_scored_by_overlapping_windows(detector, data):
    from dancenow_utils.evaluation.forensics import _window_starts

    assert _window_starts(128, 64) == [0, 32, 64] and _window_starts(100, 64) == [0, 32, 36]
    assert _window_starts(64, 64) == [0] and _window_starts(40, 64) == [0]
    *_, test, _, test_fake = data
    wide = [np.concatenate([f, f[:, :36]], axis=1) for f in test[:3] + test_fake[:3]]  # 64 x 100 frames
    scores = detector.score(wide)
    assert scores.shape == (6,) and scores[3:].min() > scores[:3].max()


def test_bad_frames_are_reported():
    with pytest.raises(ValueError, match="real_frames: no frames"):
        train_detector([], [np.zeros((8, 8, 3), np.uint8)], steps=1, progress=False)
    with pytest.raises(ValueError, match=r"fake_frames\[0\]: expected an RGB uint8"):
        train_detector([np.zeros((8, 8, 3), np.uint8)], [np.zeros((8, 8), np.uint8)], steps=1, progress=False)


def test_forensic_check_on_a_tiny_model(data, tmp_path):
    """Pairs and keypoints on disk, a generator trained for 4 steps, then the detector against its frames."""
    from dancenow_utils.config import make_config
    from dancenow_utils.io_utils import write_image
    from dancenow_utils.pose.crop import Crop
    from dancenow_utils.pose.keypoints import write_openpose_json
    from dancenow_utils.training.stages import build_trainer

    train, train_poses, _, test, test_poses, _ = data
    people: list = []
    _clip(8, 1, "heldout", people=people)  # the held-out clip's keypoints (frames already in `data`)
    for root, frames, poses, persons in (("dataset", train[:16], train_poses[:16], None),
                                         ("dataset_test", test[:8], test_poses[:8], people)):
        for i, (f, p) in enumerate(zip(frames, poses)):
            write_image(tmp_path / root / "train_A" / f"{i:04d}.png", p)
            write_image(tmp_path / root / "train_B" / f"{i:04d}.png", f)
            if persons is not None:  # keypoints and crop as extraction writes them: read for the face stage
                write_openpose_json(tmp_path / root / "train_keypoints" / f"{i:04d}_keypoints.json", [persons[i]])
        if persons is not None:
            Crop(0.0, 0.0, 1.0, 64, 64).save(tmp_path / root / "train_keypoints" / "crop.json")
    ck = tmp_path / "checkpoints"
    build_trainer(make_config("tiny"), tmp_path / "dataset", "m", ck, resume=False,
    progress=False).train(max_iterations=4)
    fakes = generate_for_poses("m", train_poses[:3], ck, "cpu")
    assert len(fakes) == 3 and fakes[0].shape == (64, 64, 3) and fakes[0].dtype == np.uint8
    res = forensic_check("m", tmp_path / "dataset", tmp_path / "dataset_test", ck, steps=5, device="cpu",
                         progress=False)
    saved = json.loads(res.metrics_path.read_text())
    assert saved["heldout"]["n"] == 16 and saved["train"]["n"] == 32 and res.figure_path.exists()
    assert res.detector_path == ck / "m_test" / "forensic_detector.pth"
    assert np.allclose(Detector.load(res.detector_path).score(test[:2]), res.detector.score(test[:2]))
