"""Metrics on known inputs, evaluation and transfer end to end on a tiny model, and their bad input."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import torch

from dancenow_utils.config import make_config
from dancenow_utils.evaluation.crossval import evaluate
from dancenow_utils.evaluation.metrics import flicker, pose_error, psnr, ssim
from dancenow_utils.models.inference import load_generator
from dancenow_utils.models.networks import build_generator
from dancenow_utils.pose.formats import joint
from dancenow_utils.pose.keypoints import Person
from dancenow_utils.pose.render import render_pose
from dancenow_utils.training.stages import build_trainer
from dancenow_utils.transfer.pose_transfer import prepare_poses, run_transfer
from dancenow_utils.video import count_frames, write_video


@pytest.fixture(scope="module")
def trained(tiny_dataset, tmp_path_factory):
    ck = tmp_path_factory.mktemp("ck")
    build_trainer(make_config("tiny", {"max_dataset_size": 8}), tiny_dataset / "dataset", "m", ck, resume=False,
            progress=False).train(max_iterations=4)
    return ck


def test_ssim_and_psnr_on_known_inputs():
    from skimage import data

    rng = np.random.default_rng(0)
    img = data.astronaut()[::4, ::4].copy()  # a natural image: noise lowers its SSIM clearly
    assert ssim(img, img) == pytest.approx(1.0)
    assert psnr(img, img) == 100.0
    noisy = np.clip(img.astype(int) + rng.normal(0, 20, img.shape), 0, 255).astype(np.uint8)
    assert ssim(img, noisy) < 0.9 and 15 < psnr(img, noisy) < 30


def test_pose_error_of_a_shifted_skeleton_is_the_shift():
    body = np.zeros((25, 3), np.float32)
    for k, name in enumerate(("Neck", "RShoulder", "LShoulder", "MidHip", "RKnee")):
        body[joint(name)] = [30 + 10 * k, 40 + 5 * k, 1]
    shifted = body.copy()
    shifted[:, :2] += (3.0, 4.0)
    assert pose_error(body, shifted) == pytest.approx(5.0)
    assert pose_error(body, None) is None


def test_pose_error_through_the_detector_on_a_shifted_drawing(tiny_demo):
    """Re-detection on a frame shifted by d pixels reports about d."""
    from dancenow_utils.evaluation.crossval import PoseRedetector
    from dancenow_utils.pose.keypoints import read_openpose_json
    from dancenow_utils.video import read_frames

    _, frame = next(iter(read_frames(tiny_demo.video("target_train"))))
    gt = read_openpose_json(tiny_demo.keypoints("target_train") / "frame_000000_keypoints.json")[0].body
    det = PoseRedetector()
    base = pose_error(gt, det(frame))
    d = 8
    moved = np.roll(frame, d, axis=1)
    err_shifted = pose_error(gt, det(moved))
    det.close()
    assert base < 4
    assert abs(err_shifted - d) < base + 2


def test_flicker_ratio():
    a = [np.full((8, 8, 3), v, np.uint8) for v in (0, 10, 20)]
    b = [np.full((8, 8, 3), v, np.uint8) for v in (0, 20, 40)]
    assert flicker(b, a) == pytest.approx(2.0) and flicker(a, a) == pytest.approx(1.0)


def test_video_frame_counts(tmp_path):
    frames = [np.full((32, 48, 3), i * 20, np.uint8) for i in range(7)]
    assert write_video(tmp_path / "v.mp4", frames, 10) == 7
    assert count_frames(tmp_path / "v.mp4") == 7
    with pytest.raises(ValueError, match="no frames"):
        write_video(tmp_path / "empty.mp4", [], 10)
    assert not (tmp_path / "empty.mp4").exists()


def test_evaluate_writes_metrics_and_baseline(trained, tiny_dataset):
    m = evaluate("m", tiny_dataset / "dataset_test", checkpoints_dir=trained, max_samples=5,
                 train_dataroot=tiny_dataset / "dataset", progress=False)
    keys = {"ssim", "psnr", "body_ssim", "pose_error_px", "detection_rate", "flicker", "nn_ssim", "nn_psnr",
            "nn_body_ssim", "nn_pose_error_px", "n_samples"}
    assert keys <= set(m) and m["n_samples"] == 5
    saved = json.loads((trained / "m_test" / "metrics.json").read_text())
    assert keys <= set(saved) and set(saved["gan_losses"]) == {"G_GAN", "G_GAN_Feat", "D_real", "D_fake"}
    assert (trained / "m_test" / "per_sample.csv").read_text().count("\n") == 6


def test_missing_checkpoint_is_clear(tmp_path, tiny_dataset):
    with pytest.raises(FileNotFoundError, match="no such checkpoint.*notebook 02"):
        evaluate("nobody", tiny_dataset / "dataset_test", checkpoints_dir=tmp_path, progress=False)


def test_generator_file_carries_its_config_and_foreign_weights_are_refused(trained, tiny_dataset, tmp_path):
    other = tmp_path / "other"
    shutil.copytree(trained / "m", other)
    make_config("tiny", {"ngf": 8}).save(other / "config.json")  # config.json is for people: the file has its own
    assert load_generator("other", checkpoints_dir=tmp_path).cfg.ngf == 16
    payload = torch.load(other / "latest_G.pth", weights_only=True)
    payload["G"] = build_generator(make_config("tiny", {"ngf": 8})).state_dict()
    torch.save(payload, other / "latest_G.pth")
    with pytest.raises(ValueError, match="latest_G.pth: its weights do not fit"):
        evaluate("other", tiny_dataset / "dataset_test", checkpoints_dir=tmp_path, progress=False)


def test_transfer_writes_videos_with_expected_frames(trained, tiny_dataset, tiny_demo, tmp_path):
    poses = prepare_poses(tiny_demo.video("source_dancer"), tmp_path / "dt", True,
                          tiny_dataset / "dataset" / "train_keypoints", 3, image_size=64, max_frames=9,
                          progress=False)
    res = run_transfer("m", poses, tmp_path / "results", source=tiny_demo.video("source_dancer"),
                       checkpoints_dir=trained, progress=False)
    assert res.n_frames == 9 and count_frames(res.video) == 9 and count_frames(res.side_by_side) == 9
    assert res.gif.exists() and res.page.exists()
    assert len(list((res.out_dir / "frames").glob("*.png"))) == 9


def test_transfer_of_an_empty_source_or_nobody(trained, tiny_dataset, tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ValueError, match="no images"):
        prepare_poses(empty, tmp_path / "dt", True, tiny_dataset / "dataset" / "train_keypoints", progress=False)
    blank = tmp_path / "blank.mp4"
    write_video(blank, [np.full((96, 96, 3), 128, np.uint8)] * 5, 10)
    with pytest.raises(ValueError, match="nobody was found"):
        prepare_poses(blank, tmp_path / "dt", False, "", progress=False)
    with pytest.raises(ValueError, match="too few frames with a person"):
        prepare_poses(blank, tmp_path / "dt", True, tiny_dataset / "dataset" / "train_keypoints", progress=False)
    assert not (tmp_path / "dt" / "test_A").exists()
    (tmp_path / "nothing").mkdir()
    with pytest.raises(ValueError, match="no pose images"):
        run_transfer("m", tmp_path / "nothing", tmp_path / "results", checkpoints_dir=trained, progress=False)
    assert not (tmp_path / "results" / "m").exists()


def test_rendered_skeleton_for_known_person_is_drawn():
    body = np.zeros((25, 3), np.float32)
    body[joint("Neck")] = [20, 10, 1]
    body[joint("MidHip")] = [20, 40, 1]
    assert render_pose([Person(body)], 40, 50).sum() > 0
