"""The moving average of the generator's weights (``ema_decay``): what inference loads, how it follows the trained
weights, exact resume, and a run without it unchanged."""

from __future__ import annotations

import pytest
import torch

from dancenow_utils.config import make_config
from dancenow_utils.models.pix2pixhd import Pix2PixHD
from dancenow_utils.training.stages import build_trainer, stage_trainer, train_stage
from tests.conftest import full_and_resumed
from tests.test_labels import tiny_labels


def random_batch(cfg, seed: int) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    shape = (cfg.batch_size, 3, cfg.height, cfg.width)
    return {"A": torch.rand(shape, generator=g) * 2 - 1, "B": torch.rand(shape, generator=g) * 2 - 1}


def test_the_average_follows_the_trained_weights_with_a_warm_up():
    torch.manual_seed(0)
    cfg = make_config("tiny", {"ema_decay": 0.9, "vgg_loss": "off", "amp": "fp32"})
    model = Pix2PixHD(cfg, torch.device("cpu"), vgg=False)
    assert model.averaged == {} and model.generator_state()["G"].keys() == model.G.state_dict().keys()
    expected = None
    for step in range(1, 5):
        model.train_step(random_batch(cfg, step))
        live = {k: v.clone() for k, v in model.G.state_dict().items()}
        if expected is None:  # made from the weights after the first step
            expected = live
        else:  # decay min(0.9, (1 + n) / (10 + n)): 3/12, 4/13, 5/14 over the first updates
            decay = min(0.9, (1 + step) / (10 + step))
            expected = {k: decay * expected[k] + (1 - decay) * live[k] for k in live}
        assert model.average_updates == step
    saved = model.generator_state()["G"]
    assert all(torch.allclose(saved[k], expected[k], atol=1e-6) for k in expected)
    assert any(not torch.equal(saved[k], model.G.state_dict()[k]) for k in saved)  # not the trained weights


def test_inference_loads_the_average_and_the_checkpoint_keeps_both(tiny_dataset, tmp_path):
    cfg = make_config("tiny", {"max_dataset_size": 8, "niter": 1, "niter_decay": 1, "ema_decay": 0.5,
                               "save_epoch_freq": 1})
    trainer = build_trainer(cfg, tiny_dataset / "dataset", "ema", tmp_path, resume=False, progress=False)
    trainer.train()
    full = torch.load(tmp_path / "ema" / "latest.pth", weights_only=True)
    generator = torch.load(tmp_path / "ema" / "latest_G.pth", weights_only=True)["G"]
    raw = trainer.model.G.state_dict()
    assert all(torch.equal(full["G"][k], raw[k]) for k in raw)  # training resumes from the trained weights
    assert all(torch.equal(full["avg_G"][k], generator[k]) for k in raw)
    assert any(not torch.equal(generator[k], raw[k]) for k in raw)
    assert full["average_updates"] == trainer.iteration
    numbered = torch.load(tmp_path / "ema" / "epoch_2_G.pth", weights_only=True)["G"]  # the last epoch's
    assert all(torch.equal(numbered[k], generator[k]) for k in raw)


def test_training_with_an_average_resumes_exactly(tiny_dataset, tmp_path):
    cfg = make_config("tiny", {"max_dataset_size": 8, "niter": 1, "niter_decay": 1, "ema_decay": 0.9,
                               "save_latest_freq": 3})
    a, b = full_and_resumed(cfg, tiny_dataset / "dataset", tmp_path, saved="latest_G.pth")
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_without_ema_the_generator_file_holds_the_trained_weights(tiny_dataset, tmp_path):
    cfg = make_config("tiny", {"max_dataset_size": 4, "niter": 1, "niter_decay": 0})
    assert cfg.ema_decay == 0.0 and make_config("demo").ema_decay == 0.999
    trainer = build_trainer(cfg, tiny_dataset / "dataset", "plain", tmp_path, resume=False, progress=False)
    trainer.train()
    assert trainer.model.averaged == {}
    full = torch.load(tmp_path / "plain" / "latest.pth", weights_only=True)
    generator = torch.load(tmp_path / "plain" / "latest_G.pth", weights_only=True)["G"]
    assert "avg_G" not in full and all(torch.equal(full["G"][k], generator[k]) for k in generator)


def test_a_run_saved_without_an_average_starts_one_on_resume():
    cfg = make_config("tiny", {"vgg_loss": "off", "amp": "fp32"})
    plain = Pix2PixHD(cfg, torch.device("cpu"), vgg=False)
    plain.train_step(random_batch(cfg, 0))
    averaging = Pix2PixHD(make_config("tiny", {"vgg_loss": "off", "amp": "fp32", "ema_decay": 0.99}),
                          torch.device("cpu"), vgg=False)
    averaging.load_state_dict(plain.state_dict())
    assert averaging.averaged == {} and averaging.average_updates == 0
    averaging.train_step(random_batch(cfg, 1))
    assert averaging.average_updates == 1
    assert all(torch.equal(v, averaging.G.state_dict()[k]) for k, v in averaging.generator_state()["G"].items())


def test_the_encoders_class_means_are_copied_not_averaged():
    torch.manual_seed(0)
    model = Pix2PixHD(tiny_labels(instance_maps=True, instance_feat=True, vgg_loss="off", amp="fp32", ema_decay=0.9),
                      torch.device("cpu"), vgg=False)
    labels = torch.zeros(2, 1, 32, 32, dtype=torch.long)
    labels[:, :, 8:24, 8:24] = 2
    batch = {"A": labels, "inst": (labels > 0).long(), "B": torch.rand(2, 3, 32, 32) * 2 - 1}
    for _ in range(3):
        model.train_step(batch)
    saved, E = model.generator_state()["E"], model.nets["E"]
    assert torch.equal(saved["class_features"], E.class_features) and torch.equal(saved["class_seen"], E.class_seen)
    weights = [k for k, _ in E.named_parameters()]
    assert any(not torch.equal(saved[k], E.state_dict()[k]) for k in weights)  # the weights are averaged


def test_later_stages_start_from_the_average_inference_uses(tiny_dataset, tmp_path):
    cfg = make_config("tiny", {"netG": "local", "ngf": 8, "max_dataset_size": 6, "ema_decay": 0.5})
    data = tiny_dataset / "dataset"
    glob = train_stage("global", cfg, data, "edn", tmp_path, progress=False, max_iterations=3)
    g_avg = torch.load(glob.dir / "latest_G.pth", weights_only=True)["G"]
    assert any(not torch.equal(g_avg[k], v) for k, v in glob.model.G.state_dict().items())
    local = train_stage("local", cfg, data, "edn", tmp_path, progress=False, max_iterations=0)
    start = local.model.G.global_net.state_dict()
    assert all(torch.equal(start[k], g_avg[k]) for k in start)
    local.train(max_iterations=3)
    main_avg = torch.load(tmp_path / "edn" / "latest_G.pth", weights_only=True)["G"]
    for resume in (False, True):  # a fresh face stage reads latest.pth, a resumed one latest_G.pth
        face = stage_trainer("face", cfg, data, "edn", tmp_path, resume=resume, progress=False)
        face.train(max_iterations=1 if not resume else 2)
        main = face.model.main_G.state_dict()
        assert all(torch.equal(main[k], main_avg[k]) for k in main)
        face.close()


@pytest.mark.parametrize("bad", [-0.1, 1.0, 1.5])
def test_ema_decay_out_of_range_is_refused(bad):
    with pytest.raises(ValueError, match="ema_decay"):
        make_config("tiny", {"ema_decay": bad})
