"""Everybody Dance Now's training recipe (issue 14, items 4-6), against the reference code's figures.

- Local stage: the global stage trains with one discriminator scale fewer, and its D is carried into the local
  stage (scale k becomes scale k + 1); ``niter_fix_global`` trains the local enhancer alone first.
- ``edn_*`` presets: temporal, 100 + 100 epochs; the temporal VGG term is halved for the global generator only.
- Face GAN: EDN's face generator (26,724,291 parameters) and batch-norm face D (2,769,601), the box centred on the
  nose (or between the ears), 128 px on 1024x512 frames; losses: face GAN + face VGG at 0.5 + the full-frame
  losses through the corrected frame, no face feature matching, no clamp; the face D trains alone for
  ``face_niter_fix_main`` epochs; the temporal model generates its second frame from the corrected first.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from dancenow_utils.config import TrainConfig, make_config
from dancenow_utils.layout import RunLayout
from dancenow_utils.models.face import (
    FACE_LOSS_NAMES,
    FaceModel,
    build_face_discriminator,
    build_face_generator,
    correct_faces,
)
from dancenow_utils.models.generate import generator_input
from dancenow_utils.models.networks import build_generator, count_parameters
from dancenow_utils.models.pix2pixhd import Pix2PixHD, vgg_term
from dancenow_utils.pose.face_box import face_box, face_box_side
from dancenow_utils.pose.formats import joint
from dancenow_utils.pose.keypoints import Person
from dancenow_utils.training.stages import build_trainer, global_stage_config, train_stage

CPU = torch.device("cpu")


def _tiny_local(**kw) -> TrainConfig:
    return make_config("tiny", {"netG": "local", "ngf": 8, "n_local_enhancers": 1, "n_blocks_local": 1, "num_D": 3,
                                "niter": 1, "niter_decay": 0, **kw})


# ------------------------------------------------------------------------------------------------ presets (5)
@pytest.mark.parametrize("preset", ["edn_global", "edn_local"])
def test_edn_presets_are_temporal_with_100_plus_100_epochs(preset):
    cfg = make_config(preset)
    assert cfg.temporal and (cfg.niter, cfg.niter_decay) == (100, 100)
    assert (cfg.face_niter, cfg.face_niter_decay, cfg.face_niter_fix_main) == (100, 100, 10)


def test_edn_local_global_stage_has_two_discriminator_scales():
    g = global_stage_config(make_config("edn_local"))
    assert (g.netG, g.width, g.height, g.ngf, g.num_D) == ("global", 512, 256, 64, 2)
    assert make_config("edn_local").num_D == 3


class _ConstVGG:
    def __call__(self, fake, real):
        return torch.tensor(1.5)


@pytest.mark.parametrize("netG, temporal, expected", [("global", True, 1.5 * 10), ("local", True, 2 * 1.5 * 10),
                                                      ("global", False, 1.5 * 10), ("local", False, 1.5 * 10)])
def test_temporal_vgg_term_is_halved_for_the_global_generator_only(netG, temporal, expected):
    cfg = make_config("tiny", {"netG": netG, "temporal": temporal, "lambda_feat": 10.0})
    x = torch.zeros(1, 3, 8, 8)
    n = 2 if temporal else 1
    assert float(vgg_term(_ConstVGG(), [x] * n, [x] * n, cfg)) == pytest.approx(expected)


# --------------------------------------------------------------------------------------------- local stage (4)
def test_niter_fix_global_trains_only_the_local_enhancer_first():
    torch.manual_seed(0)
    cfg = _tiny_local(niter_fix_global=1, width=32, height=32)
    model = Pix2PixHD(cfg, CPU, vgg=False, precision="fp32")
    batch = {"A": torch.rand(2, 3, 32, 32) * 2 - 1, "B": torch.rand(2, 3, 32, 32) * 2 - 1}

    def snapshot():
        return ([p.detach().clone() for p in model.G.global_net.parameters()],
                [p.detach().clone() for p in model.G.local_up.parameters()])

    g0, l0 = snapshot()
    model.set_epoch(0)
    model.train_step(batch)
    g1, l1 = snapshot()
    assert all(torch.equal(a, b) for a, b in zip(g0, g1)), "the global branch moved while held fixed"
    assert any(not torch.equal(a, b) for a, b in zip(l0, l1))
    assert not any(s for s in model.optimizers["G"].state if any(s is p for p in model.G.global_net.parameters()))
    model.set_epoch(1)
    model.train_step(batch)
    g2, _ = snapshot()
    assert any(not torch.equal(a, b) for a, b in zip(g1, g2)), "the global branch did not train after the fix"


def test_local_stage_carries_the_global_discriminator_one_scale_up(tiny_dataset, tmp_path):
    cfg = _tiny_local()
    ck = tmp_path / "ck"
    glob = train_stage("global", cfg, tiny_dataset / "dataset", "run", ck, progress=False, max_iterations=2)
    assert len(glob.model.D.nets) == 2 and glob.cfg.num_D == 2
    global_D = {k: v.clone() for k, v in glob.model.D.state_dict().items()}
    trainer = build_trainer(cfg, tiny_dataset / "dataset", "run", ck, progress=False)
    fresh_scale0 = {k: v.clone() for k, v in trainer.model.D.nets[0].state_dict().items()}
    local = train_stage("local", cfg, tiny_dataset / "dataset", "run", ck, resume=False, progress=False,
                        max_iterations=0)
    D = local.model.D
    assert len(D.nets) == 3
    for k in (0, 1):
        for name, value in D.nets[k + 1].state_dict().items():
            assert torch.equal(value, global_D[f"nets.{k}.{name}"]), f"scale {k + 1} is not global scale {k}"
    assert all(torch.equal(v, fresh_scale0[n]) for n, v in D.nets[0].state_dict().items())
    assert RunLayout(ck, "run").stage("global").latest.exists()


# ------------------------------------------------------------------------------------------------ face GAN (6)
def test_face_networks_have_edns_parameter_counts():
    cfg = TrainConfig()
    assert count_parameters(build_face_generator(cfg)) == 26_724_291
    D = build_face_discriminator(cfg)
    assert count_parameters(D) == 2_769_601
    assert len(D.nets) == 1
    assert sum(isinstance(m, torch.nn.BatchNorm2d) for m in D.modules()) == 3


def _body(points: dict[str, tuple[float, float]]) -> Person:
    body = np.zeros((25, 3), np.float32)
    for name, (x, y) in points.items():
        body[joint(name)] = (x, y, 1.0)
    face = np.zeros((70, 3), np.float32)
    face[:, :2], face[:, 2] = (300, 300), 1.0  # face points elsewhere: EDN centres on the nose, not on them
    return Person(body, face)


def test_face_box_is_edns_128_px_on_1024x512_centred_on_the_nose_or_the_ears():
    assert face_box_side(512) == 128 and face_box_side(256) == 64
    side = face_box_side(512)
    assert face_box(_body({"Nose": (500, 100), "REar": (480, 90), "LEar": (530, 90)}), 1024, 512, side) == (436, 36)
    assert face_box(_body({"REar": (480, 90), "LEar": (530, 96)}), 1024, 512, side) == (441, 29)
    assert face_box(_body({"LEar": (530, 96)}), 1024, 512, side) == (466, 32)
    assert face_box(_body({"Nose": (10, 500)}), 1024, 512, side) == (0, 384)  # shifted inside the frame


def test_face_correction_is_not_clamped():
    class Push(torch.nn.Module):
        def forward(self, x):
            return torch.ones_like(x[:, :3])

    out = correct_faces(Push(), torch.zeros(1, 3, 4, 4), torch.full((1, 3, 4, 4), 0.5))
    assert float(out.max()) == pytest.approx(1.5)


def _face_model(temporal: bool, fix_main: int = 1, seed: int = 0) -> tuple[FaceModel, dict[str, torch.Tensor]]:
    torch.manual_seed(seed)
    cfg = make_config("tiny", {"width": 32, "height": 32, "temporal": temporal, "face_niter_fix_main": fix_main})
    main_G = build_generator(cfg)
    model = FaceModel(cfg, CPU, main_G, cfg, None, "fp32", vgg=False)
    n = 2
    batch = {"A": torch.rand(n, 3, 32, 32) * 2 - 1, "B": torch.rand(n, 3, 32, 32) * 2 - 1,
             "box": torch.tensor([[4, 6], [10, 2]])}
    if temporal:
        batch.update(A_next=torch.rand(n, 3, 32, 32) * 2 - 1, B_next=torch.rand(n, 3, 32, 32) * 2 - 1)
    return model, batch


def test_face_losses_are_edns_and_the_face_d_trains_alone_first():
    model, batch = _face_model(temporal=False, fix_main=1)
    losses = model.losses(batch)
    assert tuple(losses) == FACE_LOSS_NAMES == ("G_GAN", "G_GAN_Feat", "G_VGG", "G_GANface", "D_real", "D_fake",
                                                "D_realface", "D_fakeface")
    assert "G_GANface_Feat" not in losses and float(losses["G_GAN_Feat"].detach()) > 0  # full-frame FM, no face FM
    snap = {k: [p.detach().clone() for p in n.parameters()] for k, n in model.nets.items()}
    main_G = [p.detach().clone() for p in model.main_G.parameters()]

    def moved(key):
        return any(not torch.equal(a, b) for a, b in zip(snap[key], model.nets[key].parameters()))

    model.set_epoch(0)
    assert model.trained("D") == ("D",) and model.trained("G") == ("G",)
    model.train_step(batch)
    assert moved("G") and moved("D") and not moved("main_D")
    assert all(p.grad is None for p in model.nets["main_D"].parameters()), "no gradients for the fixed full-frame D"
    model.set_epoch(1)
    assert model.trained("D") == ("D", "main_D")
    model.train_step(batch)
    assert moved("main_D")
    assert all(torch.equal(a, b) for a, b in zip(main_G, model.main_G.parameters())), "the main G must stay frozen"


def test_full_frame_losses_see_the_corrected_frame():
    model, batch = _face_model(temporal=False)
    frames = model._corrected(batch, model.nets["G"])
    pose, real, fixed, _, raw_face, fixed_face, _ = frames[0]
    raw = model.main_G(batch["A"])
    assert not torch.allclose(fixed, raw)
    outside = torch.ones_like(fixed, dtype=torch.bool)
    for i, (x, y) in enumerate(batch["box"].tolist()):
        s = model.side
        outside[i, :, y:y + s, x:x + s] = False
        assert torch.allclose(fixed[i, :, y:y + s, x:x + s], fixed_face[i])
    assert torch.allclose(fixed[outside], raw[outside])


def test_temporal_face_stage_feeds_the_corrected_first_frame_back():
    model, batch = _face_model(temporal=True)
    first, second = model._corrected(batch, model.nets["G"])
    expected = model.main_G(generator_input(batch["A_next"], first[2], True, 3))
    expected_face = torch.stack([expected[i, :, y:y + model.side, x:x + model.side]
                                 for i, (x, y) in enumerate(batch["box"].tolist())])
    assert torch.allclose(second[4], expected_face, atol=1e-6)
    uncorrected = model.main_G(generator_input(batch["A_next"], model.main_G(generator_input(batch["A"], None, True,
                                                                                             3)), True, 3))
    assert not torch.allclose(expected, uncorrected)


@pytest.mark.parametrize("temporal", [False, True])
def test_use_l1_is_edns_l1_on_the_last_frame(temporal):
    torch.manual_seed(0)
    cfg = make_config("tiny", {"width": 32, "height": 32, "temporal": temporal, "use_l1": True, "lambda_l1": 10.0})
    model = Pix2PixHD(cfg, CPU, vgg=False, precision="fp32")
    batch = {"A": torch.rand(1, 3, 32, 32), "B": torch.rand(1, 3, 32, 32),
             "A_next": torch.rand(1, 3, 32, 32), "B_next": torch.rand(1, 3, 32, 32)}
    losses = model.losses(batch)
    assert "G_L1" in model.loss_names and set(losses) == set(model.loss_names)
    fakes, reals, _, _ = model._frames(batch)
    expected = (fakes[-1] - reals[-1]).abs().mean() * 10.0
    assert float(losses["G_L1"].detach()) == pytest.approx(float(expected.detach()), rel=1e-5)
    assert "G_L1" not in Pix2PixHD(make_config("tiny"), CPU, vgg=False, precision="fp32").loss_names


def test_stage_all_is_the_presets_full_method():
    from dancenow_utils.training.stages import planned_stages

    assert planned_stages(make_config("edn_local")) == ["global", "local", "face"]
    assert planned_stages(make_config("edn_global")) == ["global", "face"]
    assert planned_stages(make_config("edn_global", {"face_stage": False})) == ["global"]
    assert planned_stages(make_config("edn_local"), "local") == ["local"]
    with pytest.raises(ValueError, match="unknown stage 'both'"):
        planned_stages(make_config("demo"), "both")


def test_face_stage_needs_the_main_runs_discriminator(tiny_dataset, tmp_path):
    cfg = make_config("tiny", {"niter": 1, "niter_decay": 0})
    train_stage("global", cfg, tiny_dataset / "dataset", "m", tmp_path, progress=False, max_iterations=1)
    latest = RunLayout(tmp_path, "m").latest
    latest.unlink()  # only latest_G.pth is left: no discriminator to train the face against
    with pytest.raises(FileNotFoundError, match="face stage trains against the main run's discriminator"):
        train_stage("face", cfg, tiny_dataset / "dataset", "m", tmp_path, progress=False, max_iterations=1)


def test_local_stage_refuses_a_global_discriminator_of_another_scale_count(tiny_dataset, tmp_path):
    cfg = _tiny_local()
    train_stage("global", cfg.with_overrides({"num_D": 2}), tiny_dataset / "dataset", "run", tmp_path,
                progress=False, max_iterations=1)  # built from num_D=2: its global stage has 1 scale
    with pytest.raises(ValueError, match="discriminator has 1 scale"):
        train_stage("local", cfg, tiny_dataset / "dataset", "run", tmp_path, progress=False, max_iterations=0)


def test_local_stage_carries_the_feature_encoder(tmp_path):
    from dancenow_utils.checkpoint import save_checkpoint
    from dancenow_utils.training.stages import init_local_from_global

    cfg = _tiny_local(width=32, height=32, label_nc=4, instance_maps=True, instance_feat=True)
    torch.manual_seed(0)
    glob = Pix2PixHD(global_stage_config(cfg), CPU, vgg=False, precision="fp32")
    run = RunLayout(tmp_path, "run").stage("global")
    run.dir.mkdir(parents=True)
    save_checkpoint(run.latest, {**glob.state_dict(), "config": glob.cfg.to_dict()})
    torch.manual_seed(1)
    local = Pix2PixHD(cfg, CPU, vgg=False, precision="fp32")
    init_local_from_global(local, run)
    for name, value in local.nets["E"].state_dict().items():
        assert torch.equal(value, glob.nets["E"].state_dict()[name]), name
    for name, value in local.G.global_net.state_dict().items():
        assert torch.equal(value, glob.G.state_dict()[name]), name
