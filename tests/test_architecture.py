"""One training machinery, one generator runner, recorded extraction settings (issue 10)."""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import torch

from dancenow_utils.config import make_config
from dancenow_utils.evaluation.metrics import NearestNeighbour, frame_scores, summarize
from dancenow_utils.layout import DatasetLayout, RunLayout, checkpoint_tag
from dancenow_utils.pose.extract import extract
from dancenow_utils.pose.keypoints import read_openpose_json
from dancenow_utils.pose.settings import PoseSettings
from dancenow_utils.training.stages import build_trainer, train_stage
from dancenow_utils.training.trainer import Trainer
from dancenow_utils.transfer.pose_transfer import prepare_poses, run_transfer


def tiny(**kw):
    return make_config("tiny", {"max_dataset_size": 8, **kw})


@pytest.fixture(scope="module")
def main_run(tiny_dataset, tmp_path_factory):
    ck = tmp_path_factory.mktemp("ck")
    build_trainer(tiny(), tiny_dataset / "dataset", "m", ck, resume=False, progress=False).train(max_iterations=3)
    return ck


def test_layouts_and_checkpoint_tags(tmp_path):
    d = DatasetLayout(tmp_path / "dataset_transfer", "test")
    assert d.A.name == "test_A" and d.keypoints.name == "test_keypoints" and d.settings.name == "settings.json"
    assert DatasetLayout.of_pose_dir(d.A) == d and DatasetLayout.of_keypoints_dir(d.keypoints) == d
    r = RunLayout(tmp_path, "demo")
    assert r.generator(5).name == "epoch_5_G.pth" and r.generator("epoch_5") == r.generator("5")
    assert r.test_dir.name == "demo_test" and r.stage("face").dir == tmp_path / "demo" / "face"
    assert checkpoint_tag("latest") == "latest" and checkpoint_tag(3) == "epoch_3"
    for bad in (0, -1, "last", True, 2.5):
        with pytest.raises(ValueError, match="which_epoch"):
            checkpoint_tag(bad)


def test_one_trainer_for_every_stage(main_run, tiny_dataset):
    face = train_stage("face", tiny(), tiny_dataset / "dataset", "m", main_run, progress=False, max_iterations=2)
    assert type(face) is Trainer and face.kind == "face" and face.model.loss_names == (
        "G_GAN", "G_GAN_Feat", "G_VGG", "G_GANface", "D_real", "D_fake", "D_realface", "D_fakeface")
    rows = [json.loads(x) for x in (main_run / "m" / "face" / "loss_log.jsonl").read_text().splitlines()]
    assert [r["iteration"] for r in rows] == [1, 2]
    cfg = json.loads((main_run / "m" / "face" / "config.json").read_text())
    assert cfg["face_ngf"] == 8 and cfg["lr"] == cfg["face_lr"]
    # a second call continues the face stage's log instead of restarting it at iteration 0
    train_stage("face", tiny(), tiny_dataset / "dataset", "m", main_run, progress=False, max_iterations=3)
    rows = [json.loads(x)["iteration"] for x in (main_run / "m" / "face" / "loss_log.jsonl").read_text().splitlines()]
    assert rows == [1, 2, 3]


def _face_cli(data, ck, name, *extra):
    return [sys.executable, "-m", "dancenow_utils.training", "--stage", "face", "--dataroot", str(data), "--name", name,
            "--preset", "tiny", "--checkpoints_dir", str(ck), "--set", "max_dataset_size=8", "face_niter=3",
            "save_latest_freq=1", "log_freq=1", *extra]


def test_face_stage_resumes_bit_identically_after_sigkill(main_run, tiny_dataset, tmp_path):
    for name in ("full", "killed"):
        shutil.copytree(main_run / "m", tmp_path / name, ignore=shutil.ignore_patterns("face"))
    data = tiny_dataset / "dataset"
    subprocess.run(_face_cli(data, tmp_path, "full"), check=True, capture_output=True, timeout=300)
    proc = subprocess.Popen(_face_cli(data, tmp_path, "killed"), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    log = tmp_path / "killed" / "face" / "loss_log.jsonl"
    deadline = time.time() + 240
    while time.time() < deadline and not (log.exists() and len(log.read_text().splitlines()) >= 5):
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    done = torch.load(tmp_path / "killed" / "face" / "latest.pth", weights_only=True)["iteration"]
    total = torch.load(tmp_path / "full" / "face" / "latest.pth", weights_only=True)["iteration"]
    assert 0 < done < total
    subprocess.run(_face_cli(data, tmp_path, "killed"), check=True, capture_output=True, timeout=300)
    a = torch.load(tmp_path / "full" / "face" / "latest.pth", weights_only=True)
    b = torch.load(tmp_path / "killed" / "face" / "latest.pth", weights_only=True)
    for key in ("G", "D"):
        assert all(torch.equal(a[key][k], b[key][k]) for k in a[key]), key
    rows = [json.loads(x)["iteration"] for x in log.read_text().splitlines()]
    assert rows == list(range(1, total + 1))


def test_extraction_settings_travel_to_transfer(tiny_demo, tmp_path):
    data = tmp_path / "coco"
    extract(tiny_demo.video("target_train"), data, "train", image_size=64, pose_format="COCO_18", draw_hands=False,
            smooth_window=3, max_frames=10, workers=1, progress=False)
    saved = PoseSettings.load(DatasetLayout(data).settings)
    assert (saved.pose_format, saved.draw_hands, saved.draw_face, saved.width) == ("COCO_18", False, True, 64)
    poses = prepare_poses(tiny_demo.video("source_dancer"), tmp_path / "dt", True, data / "train_keypoints", 3,
                          image_size=64, max_frames=4, progress=False)
    drawn = PoseSettings.load(DatasetLayout.of_pose_dir(poses).settings)
    assert drawn.drawing() == saved.drawing()
    first = sorted((tmp_path / "dt" / "test_keypoints").glob("*_keypoints.json"))[0]
    raw = json.loads(first.read_text())["people"][0]
    assert len(raw["pose_keypoints_2d"]) == 18 * 3 and read_openpose_json(first)
    build_trainer(tiny(max_dataset_size=4), data, "coco", tmp_path / "ck", resume=False, progress=False).train(1)
    assert torch.load(tmp_path / "ck" / "coco" / "latest_G.pth", weights_only=True)["pose_settings"]["pose_format"] \
        == "COCO_18"
    run_transfer("coco", poses, tmp_path / "results", checkpoints_dir=tmp_path / "ck", progress=False)


def test_poses_drawn_another_way_are_refused(main_run, tiny_demo, tiny_dataset, tmp_path):
    extract(tiny_demo.video("source_dancer"), tmp_path / "dt", "test", image_size=64, pose_format="COCO_18",
            draw_hands=False, smooth_window=3, max_frames=4, workers=1, progress=False, write_frames=False,
            normalize_to=str(tiny_dataset / "dataset" / "train_keypoints"))
    with pytest.raises(ValueError, match=r"COCO_18.*draw_hands=False.*m/latest_G.pth.*BODY_25.*draw_hands=True"):
        run_transfer("m", tmp_path / "dt" / "test_A", tmp_path / "results", checkpoints_dir=main_run,
                     progress=False)
    assert not (tmp_path / "results" / "m").exists()


def test_scoring_functions_on_arrays():
    rng = np.random.default_rng(0)
    frames = [rng.integers(0, 255, (48, 48, 3), dtype=np.uint8) for _ in range(5)]
    bodies = np.zeros((5, 25, 3), np.float32)
    for i in range(5):
        bodies[i, :19, :2] = rng.uniform(5, 40, (19, 2))
        bodies[i, :19, 2] = 1
    nn = NearestNeighbour(bodies)
    rows = []
    for i in range(5):  # the held-out set equals the training set: retrieval finds each frame itself
        j = nn.query(bodies[i])
        assert j == i
        gan = frame_scores(frames[(i + 1) % 5], frames[i], bodies[i], bodies[i])
        ret = frame_scores(frames[j], frames[i], bodies[i], bodies[j])
        rows.append({**gan, "detected": True, **{f"nn_{k}": v for k, v in ret.items()}})
    m = summarize(rows, fakes_motion=2.0, reals_motion=4.0)
    assert m["nn_ssim"] == 1.0 and m["nn_psnr"] == 100.0 and m["nn_pose_error_px"] == 0.0
    assert m["ssim"] < 0.1 and m["flicker"] == 0.5 and m["n_samples"] == 5 and m["detection_rate"] == 1.0
