"""The full method: temporal model, face GAN stage, local-enhancer stage (issue 7)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from dancenow_utils.checkpoint import describe_stages
from dancenow_utils.config import make_config
from dancenow_utils.data.datasets import to_image, to_tensor
from dancenow_utils.models.face import build_face_generator, paste
from dancenow_utils.models.inference import FaceCorrector, Generator
from dancenow_utils.models.networks import build_discriminator, build_generator
from dancenow_utils.models.pix2pixhd import Pix2PixHD
from dancenow_utils.pose.face_box import face_box, face_box_side
from dancenow_utils.pose.formats import joint
from dancenow_utils.pose.keypoints import Person
from dancenow_utils.training.stages import global_stage_config, train_stage


def test_temporal_shapes_and_first_frame_zeros():
    cfg = make_config("tiny", {"temporal": True})
    assert build_generator(cfg).model[1].in_channels == 6  # pose + previous frame
    assert build_discriminator(cfg).nets[0].layers[0][0].in_channels == 12  # two (pose, frame) pairs
    torch.manual_seed(0)
    model = Pix2PixHD(cfg, torch.device("cpu"))
    A, B = torch.rand(2, 3, 64, 64) * 2 - 1, torch.rand(2, 3, 64, 64) * 2 - 1
    batch = {"A": A, "B": B, "A_next": A.flip(0), "B_next": B.flip(0)}
    fakes, reals, real_pair, fake_pair = model._frames(batch)
    assert len(fakes) == 2 and real_pair.shape == fake_pair.shape == (2, 12, 64, 64)
    losses = model.train_step(batch)
    assert set(losses) == set(model.loss_names) and all(torch.isfinite(v) for v in losses.values())
    with pytest.raises(ValueError, match="consecutive"):
        model.train_step({"A": A, "B": B})
    # inference: the first frame sees zeros, the next frames see the previous output
    G = model.G.eval()
    poses = [np.random.default_rng(i).integers(0, 255, (64, 64, 3), dtype=np.uint8) for i in range(3)]
    runner = Generator(G, cfg, torch.device("cpu"), "fp32", Path("unsaved"))
    frames = list(runner.frames(poses))
    with torch.no_grad():
        first = G(torch.cat([to_tensor(poses[0])[None], torch.zeros(1, 3, 64, 64)], 1))[0]
        second = G(torch.cat([to_tensor(poses[1])[None], first[None]], 1))[0]
    assert np.array_equal(frames[0], to_image(first))
    assert np.abs(frames[1].astype(int) - to_image(second).astype(int)).max() <= 1


def _person_with_face(cx: float, cy: float) -> Person:
    face = np.zeros((70, 3), np.float32)
    face[:, 0] = cx + np.linspace(-5, 5, 70)
    face[:, 1] = cy + np.linspace(-6, 6, 70)
    face[:, 2] = 1
    return Person(np.zeros((25, 3), np.float32), face)


def test_face_box_size_and_border():
    assert face_box_side(512) == 128 and face_box_side(128) == 32 and face_box_side(64) == 16
    assert face_box(_person_with_face(2, 3), 128, 128, 32) == (0, 0)
    assert face_box(_person_with_face(127, 126), 128, 128, 32) == (96, 96)
    assert face_box(_person_with_face(60, 40), 128, 128, 32) == (44, 24)
    body = np.zeros((25, 3), np.float32)
    body[joint("Nose")] = [50, 20, 1]
    assert face_box(Person(body), 128, 128, 32) == (34, 4)  # no face points: the head joints
    assert face_box(Person(), 128, 128, 32) is None


def test_face_paste_only_changes_the_box():
    rng = np.random.default_rng(0)
    frame = rng.integers(0, 255, (64, 64, 3), dtype=np.uint8)
    face = np.zeros((16, 16, 3), np.uint8)
    out = paste(frame, face, (40, 10))
    mask = np.zeros((64, 64), bool)
    mask[10:26, 40:56] = True
    assert (out[~mask] == frame[~mask]).all() and (out[mask] == 0).all()
    torch.manual_seed(0)
    cfg = make_config("tiny")
    corrector = FaceCorrector(build_face_generator(cfg), cfg, torch.device("cpu"), "fp32")
    assert corrector.side == 16
    box = face_box(_person_with_face(20, 20), 64, 64, 16)
    t = to_tensor(frame)[None]
    corrected = to_image(corrector(t, t, [box])[0])
    inside = np.zeros((64, 64), bool)
    inside[box[1]: box[1] + 16, box[0]: box[0] + 16] = True
    assert (corrected[~inside] == frame[~inside]).all() and not (corrected[inside] == frame[inside]).all()


def test_stage_checkpoints_load_in_the_next_stage(tiny_dataset, tmp_path):
    cfg = make_config("tiny", {"netG": "local", "ngf": 8, "max_dataset_size": 6})
    g_cfg = global_stage_config(cfg)
    assert (g_cfg.netG, g_cfg.ngf, g_cfg.width) == ("global", 16, 32)
    data = tiny_dataset / "dataset"
    with pytest.raises(FileNotFoundError, match="global/latest_G.pth.*stage='global' first"):
        train_stage("local", cfg, data, "edn", tmp_path, progress=False, max_iterations=1)
    glob = train_stage("global", cfg, data, "edn", tmp_path, progress=False, max_iterations=2)
    assert glob.dir == tmp_path / "edn" / "global"
    g_state = torch.load(glob.dir / "latest_G.pth", weights_only=True)["G"]
    local = train_stage("local", cfg, data, "edn", tmp_path, progress=False, max_iterations=0)
    l_state = local.model.G.global_net.state_dict()
    assert l_state and all(torch.equal(l_state[k], g_state[k]) for k in l_state)
    local.train(max_iterations=2)
    assert "generator: local" in describe_stages("edn", tmp_path)
    assert "face stage: not trained" in describe_stages("edn", tmp_path)
    face = train_stage("face", cfg, data, "edn", tmp_path, progress=False)
    assert face.dir == tmp_path / "edn" / "face" and face.kind == "face"
    assert (face.dir / "latest.pth").exists() and (face.dir / "latest_G.pth").exists()
    assert {p.name.split("_", 1)[1] for p in face.latest_visuals()} == {"pose.png", "generated.png",
                                                                         "corrected.png", "real.png"}
    assert "face stage: yes" in describe_stages("edn", tmp_path)
    from dancenow_utils.evaluation.crossval import evaluate

    m = evaluate("edn", tiny_dataset / "dataset_test", checkpoints_dir=tmp_path, max_samples=3,
                 train_dataroot=data, progress=False)
    assert "face stage: yes" in m["stages"] and m["face_ssim"] is not None


def test_checkpoint_without_a_stage_is_reported(tmp_path):
    assert "no trained generator" in describe_stages("missing", tmp_path)
    with pytest.raises(ValueError, match="local-enhancer config"):
        train_stage("local", make_config("tiny"), tmp_path, "x", tmp_path)
    with pytest.raises(ValueError, match="unknown stage"):
        train_stage("temporal", make_config("tiny"), tmp_path, "x", tmp_path)


def test_temporal_training_and_evaluation(tiny_dataset, tmp_path):
    cfg = make_config("tiny", {"temporal": True, "max_dataset_size": 6})
    tr = train_stage("global", cfg, tiny_dataset / "dataset", "tmp", tmp_path, progress=False, max_iterations=3)
    assert tr.n_items == 5
    assert "(temporal)" in describe_stages("tmp", tmp_path)
    from dancenow_utils.evaluation.crossval import evaluate

    m = evaluate("tmp", tiny_dataset / "dataset_test", checkpoints_dir=tmp_path, max_samples=4,
                 train_dataroot=tiny_dataset / "dataset", progress=False)
    assert m["n_samples"] == 4 and set(m["gan_losses"]) == {"G_GAN", "G_GAN_Feat", "D_real", "D_fake"}
