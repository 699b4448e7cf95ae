"""pix2pixHD parity, exact resume, distributed training, loss log, and bad input."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from dancenow_utils.config import make_config
from dancenow_utils.data.datasets import AlignedDataset
from dancenow_utils.io_utils import write_image
from dancenow_utils.models.losses import VGGLoss, feature_matching_loss, gan_loss, resolve_vgg_weights
from dancenow_utils.models.networks import build_discriminator, build_generator, count_parameters
from dancenow_utils.models.pix2pixhd import LOSS_NAMES, Pix2PixHD, l1_term
from dancenow_utils.training.launch import free_port
from dancenow_utils.training.stages import build_trainer
from dancenow_utils.training.trainer import learning_rate

ROOT = Path(__file__).resolve().parents[1]


def tiny(**kw):
    return make_config("tiny", {"max_dataset_size": 12, **kw})


def test_seed_preset_parameter_parity():
    cfg = make_config("seed")
    assert count_parameters(build_generator(cfg)) == 182_443_267
    assert count_parameters(build_discriminator(cfg)) == 5_535_618


def test_local_enhancer_and_shapes():
    cfg = make_config("tiny", {"netG": "local", "n_local_enhancers": 1})
    g = build_generator(cfg)
    assert g(torch.zeros(1, 3, 64, 64)).shape == (1, 3, 64, 64)
    d = build_discriminator(cfg)
    feats = d(torch.zeros(1, 6, 64, 64))
    assert len(feats) == cfg.num_D and len(feats[0]) == cfg.n_layers_D + 2


@pytest.mark.parametrize("temporal", [False, True])
def test_one_discriminator_pass_on_the_fake_gives_pix2pixhds_gradients(temporal):
    """The step runs D once on the fake pair for G's losses and D's fake loss alike; the gradients are those of
    pix2pixHD's step, which runs D on the detached fake pair for D and again on the fake pair for G."""
    torch.manual_seed(0)
    cfg = make_config("tiny", {"vgg_loss": "off", "amp": "fp32", "use_l1": True, "temporal": temporal})
    model = Pix2PixHD(cfg, torch.device("cpu"), vgg=False)
    g = torch.Generator().manual_seed(1)
    keys = ("A", "B", "A_next", "B_next") if temporal else ("A", "B")
    batch = {k: torch.rand(2, 3, 64, 64, generator=g) * 2 - 1 for k in keys}
    G, D = model.G, model.D
    fakes, reals, real_pair, fake_pair = model._frames(batch)
    pred_real, pred_fake_d, pred_fake_g = D(real_pair), D(fake_pair.detach()), D(fake_pair)
    g_loss = (gan_loss(pred_fake_g, True) + feature_matching_loss(pred_fake_g, pred_real, cfg.n_layers_D,
                                                                   cfg.lambda_feat) + l1_term(fakes, reals, cfg))
    want_g = torch.autograd.grad(g_loss, list(G.parameters()))
    want_d = torch.autograd.grad(0.5 * (gan_loss(pred_real, True) + gan_loss(pred_fake_d, False)),
                                 list(D.parameters()))
    model.train_step(batch)  # G's gradients stay after the step (D's step zeroes only D's)
    assert all(torch.allclose(p.grad, w, atol=1e-6, rtol=1e-5) for p, w in zip(G.parameters(), want_g))
    assert all(torch.allclose(p.grad, w, atol=1e-6, rtol=1e-5) for p, w in zip(D.parameters(), want_d))


def test_learning_rate_schedule_is_pix2pixhds():
    # pix2pixHD keeps the rate through epoch niter + 1, then lowers it by lr / niter_decay per epoch
    cfg = make_config("demo", {"niter": 20, "niter_decay": 20, "lr": 1.0})
    expected = [1.0] * 21 + [pytest.approx(1 - k / 20) for k in range(1, 20)]
    assert [learning_rate(cfg, e) for e in range(40)] == expected
    assert learning_rate(cfg, 39) == pytest.approx(0.05)
    cfg = make_config("demo", {"niter": 2, "niter_decay": 0, "lr": 1.0})
    assert [learning_rate(cfg, e) for e in range(2)] == [1.0, 1.0]


def test_loss_log_keys_and_outputs(tiny_dataset, tmp_path):
    tr = build_trainer(tiny(niter=0, niter_decay=2), tiny_dataset / "dataset", "t", tmp_path, resume=False,
                 progress=False)
    tr.train()
    rows = [json.loads(line) for line in (tmp_path / "t" / "loss_log.jsonl").read_text().splitlines()]
    assert len(rows) == tr.iteration == 12
    for row in rows:
        assert set(LOSS_NAMES) <= set(row) and {"epoch", "iteration", "lr"} <= set(row)
    assert rows[-1]["lr"] < rows[0]["lr"]  # the decay epoch
    images = list((tmp_path / "t" / "web" / "images").glob("iter*_generated.png"))
    assert len(images) >= 2 and len({p.name for p in images}) == len(images)
    saved = json.loads((tmp_path / "t" / "config.json").read_text())
    assert saved["preset"] == "tiny" and saved["max_dataset_size"] == 12
    assert (tmp_path / "t" / "latest_G.pth").exists() and (tmp_path / "t" / "dataset.json").exists()


def _weights(path: Path) -> dict:
    return torch.load(path, weights_only=True)["G"]


def test_resuming_with_other_training_settings_says_which(tiny_dataset, tmp_path, capsys):
    """A run resumed (or found finished, as `make demo` after an update of the preset) under settings that train
    differently names each one; settings that only run it differently (saving, logging, a longer schedule) and the
    same config say nothing."""
    data = tiny_dataset / "dataset"
    build_trainer(tiny(niter=1, niter_decay=0), data, "r", tmp_path, resume=False, progress=False).train(
        max_iterations=2)
    capsys.readouterr()
    build_trainer(tiny(niter=2, niter_decay=1, save_latest_freq=7, log_freq=3), data, "r", tmp_path, resume=True,
                  progress=False).close()  # (not `threads`: it would set torch's threads for the tests after)
    assert "other settings" not in capsys.readouterr().out
    build_trainer(tiny(niter=1, niter_decay=0, jitter=0.1, lr=1e-3), data, "r", tmp_path, resume=True,
                  progress=False).close()
    out = capsys.readouterr().out
    assert "trained so far with other settings: lr 0.0002 -> 0.001, jitter 0.0 -> 0.1" in out
    assert "resume=False" in out and "save_latest_freq" not in out


def test_resume_after_sigkill_matches_uninterrupted_run(tiny_dataset, tmp_path):
    sets = ["max_dataset_size=12", "save_latest_freq=2", "niter=2", "niter_decay=1", "log_freq=1"]
    cfg = tiny(save_latest_freq=2, niter=2, niter_decay=1, log_freq=1)
    build_trainer(cfg, tiny_dataset / "dataset", "full", tmp_path, resume=False, progress=False).train()

    cmd = [sys.executable, "-m", "dancenow_utils.training", "--dataroot", str(tiny_dataset / "dataset"), "--name",
           "killed", "--preset", "tiny", "--checkpoints_dir", str(tmp_path), "--no-resume", "--set", *sets]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    log = tmp_path / "killed" / "loss_log.jsonl"
    deadline = time.time() + 120
    while time.time() < deadline:
        if log.exists() and len(log.read_text().splitlines()) >= 9:  # mid second epoch
            break
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    ckpt = torch.load(tmp_path / "killed" / "latest.pth", weights_only=True)
    assert 0 < ckpt["iteration"] < 18
    resumed = build_trainer(cfg, tiny_dataset / "dataset", "killed", tmp_path, resume=True, progress=False)
    assert resumed.iteration == ckpt["iteration"]
    resumed.train()
    a, b = _weights(tmp_path / "full" / "latest.pth"), _weights(tmp_path / "killed" / "latest.pth")
    assert all(torch.equal(a[k], b[k]) for k in a)
    rows = [json.loads(x)["iteration"] for x in (tmp_path / "killed" / "loss_log.jsonl").read_text().splitlines()]
    assert rows == list(range(1, 19))  # no duplicated or missing lines after the resume


def test_distributed_two_cpu_processes(tiny_dataset, tmp_path):
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", str(free_port()),
           "-m", "dancenow_utils.training", "--dataroot", str(tiny_dataset / "dataset"), "--name", "ddp", "--preset",
           "tiny", "--checkpoints_dir", str(tmp_path), "--no-resume", "--set", "max_dataset_size=9", "batch_size=2",
           "threads=1"]
    res = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr[-3000:]
    ckpt = torch.load(tmp_path / "ddp" / "latest.pth", weights_only=True)
    # 9 pairs do not split evenly: padded to 10, global batches of 4, 4, 2 -> 3 steps per epoch on both ranks
    assert ckpt["iteration"] == 6
    rows = (tmp_path / "ddp" / "loss_log.jsonl").read_text().splitlines()
    assert len(rows) == 6  # only rank 0 writes


# ------------------------------------------------------------------------------------------------ bad input
def _pairs(root: Path, names, size=(64, 64), b_size=None):
    for n in names:
        write_image(root / "train_A" / f"{n}.png", np.zeros((*size, 3), np.uint8))
        write_image(root / "train_B" / f"{n}.png", np.full((*(b_size or size), 3), 100, np.uint8))


def test_missing_folders(tmp_path):
    with pytest.raises(FileNotFoundError, match="train_A.*notebook 01"):
        AlignedDataset(tmp_path, "train")


def test_unpaired_names_are_listed(tmp_path):
    _pairs(tmp_path, ["a", "b"])
    write_image(tmp_path / "train_A" / "c.png", np.zeros((8, 8, 3), np.uint8))
    write_image(tmp_path / "train_B" / "z.png", np.zeros((8, 8, 3), np.uint8))
    with pytest.raises(ValueError, match=r"Only in train_A: \['c'\].*only in train_B: \['z'\]"):
        AlignedDataset(tmp_path, "train")


def test_corrupt_and_empty_images_are_named(tmp_path):
    _pairs(tmp_path, ["a", "b"])
    (tmp_path / "train_B" / "a.png").write_bytes(b"garbage")
    with pytest.raises(ValueError, match="a.png: not a readable image"):
        AlignedDataset(tmp_path, "train", 64, 64)
    (tmp_path / "train_B" / "a.png").write_bytes(b"")
    with pytest.raises(ValueError, match="a.png: the file is empty"):
        AlignedDataset(tmp_path, "train", 64, 64)


def test_mixed_sizes_grayscale_and_rgba_become_config_size(tmp_path):
    """Any size, grayscale or RGBA is read; a pose and its frame share an aspect ratio (tests/test_faults.py)."""
    _pairs(tmp_path, ["a"], size=(80, 60), b_size=(160, 120))
    import cv2

    cv2.imwrite(str(tmp_path / "train_A" / "g.png"), np.zeros((30, 30), np.uint8))
    cv2.imwrite(str(tmp_path / "train_B" / "g.png"), np.zeros((50, 50, 4), np.uint8))
    ds = AlignedDataset(tmp_path, "train", 64, 32)
    for i in range(len(ds)):
        assert ds[i]["A"].shape == ds[i]["B"].shape == (3, 32, 64)


def test_checkpoint_from_another_preset(tiny_dataset, tmp_path):
    build_trainer(tiny(), tiny_dataset / "dataset", "x", tmp_path, resume=False, progress=False).train(max_iterations=2)
    with pytest.raises(ValueError, match="another architecture.*ngf"):
        build_trainer(tiny(ngf=8), tiny_dataset / "dataset", "x", tmp_path, resume=True, progress=False)


def test_nan_loss_stops_and_keeps_last_good_checkpoint(tiny_dataset, tmp_path):
    tr = build_trainer(tiny(save_latest_freq=2), tiny_dataset / "dataset", "nan", tmp_path, resume=False,
    progress=False)
    tr.train(max_iterations=2)
    good = _weights(tmp_path / "nan" / "latest.pth")
    with torch.no_grad():
        for p in tr.model.G.parameters():
            p.fill_(float("nan"))
    with pytest.raises(FloatingPointError, match="last good checkpoint.*latest.pth"):
        tr.train(max_iterations=6)
    kept = _weights(tmp_path / "nan" / "latest.pth")
    assert all(torch.equal(good[k], kept[k]) for k in good)


def test_vgg_weights_modes(tmp_path, caplog):
    assert resolve_vgg_weights("off") is None
    with pytest.raises(FileNotFoundError, match="vgg_weights"):
        resolve_vgg_weights("on", str(tmp_path / "missing.pth"))
    import torchvision

    local = tmp_path / "vgg19.pth"
    torch.save(torchvision.models.vgg19().state_dict(), local)
    assert resolve_vgg_weights("on", str(local)) == local
    loss = VGGLoss(local)
    x = torch.rand(1, 3, 32, 32) * 2 - 1
    assert float(loss(x, x)) == 0.0 and float(loss(x, -x)) > 0


def test_vgg_auto_without_weights_warns_once(monkeypatch, tmp_path, caplog):
    monkeypatch.setenv("DANCENOW_OFFLINE", "1")
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path))
    with caplog.at_level("WARNING", logger="dancenow"):
        assert resolve_vgg_weights("auto") is None
    assert sum("VGG perceptual loss is off" in r.message for r in caplog.records) == 1
    with pytest.raises(FileNotFoundError, match="vgg_weights"):
        resolve_vgg_weights("on")


