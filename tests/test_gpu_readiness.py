"""GPU, Colab and several-GPU paths, simulated on the CPU (issue 12): resume state, sharding, flips, finite checks."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import warnings

import numpy as np
import pytest
import torch

import dancenow_utils.runtime.device as device_module
from dancenow_utils.checkpoint import rng_state, set_rng_state
from dancenow_utils.config import make_config
from dancenow_utils.data.datasets import AlignedDataset, EpochBatchSampler, epoch_batches
from dancenow_utils.io_utils import write_image
from dancenow_utils.models import base
from dancenow_utils.models.pix2pixhd import Pix2PixHD
from dancenow_utils.training.stages import build_trainer


def test_rng_state_restores_from_cpu_and_skips_missing_gpus(monkeypatch):
    state = rng_state()
    x = torch.rand(3)
    set_rng_state(state)
    assert torch.equal(torch.rand(3), x)
    calls = []
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    monkeypatch.setattr(torch.cuda, "set_rng_state", lambda s, index: calls.append((s.device.type, index)))
    set_rng_state({**state, "cuda": [torch.zeros(8, dtype=torch.uint8)] * 2})  # saved on a 2-GPU machine
    assert calls == [("cpu", 0)]


def test_empty_scaler_state_loads_into_an_enabled_scaler(monkeypatch):
    cfg = make_config("tiny")
    saved = Pix2PixHD(cfg, torch.device("cpu")).state_dict()  # a CPU run: the scaler is disabled, its state empty
    assert saved["scaler"] == {}
    monkeypatch.setattr(base, "needs_grad_scaler", lambda device, precision: True)
    model = Pix2PixHD(cfg, torch.device("cpu"))
    assert model.scaler.is_enabled()
    model.load_state_dict(saved)
    assert model.scaler.get_scale() == torch.amp.GradScaler("cpu").get_scale()


def test_sharding_pads_like_distributed_sampler():
    for n, bs, world in ((9, 2, 2), (7, 1, 2), (10, 3, 4), (3, 2, 4)):
        shards = [epoch_batches(n, bs, 0, 1, r, world) for r in range(world)]
        assert len({len(s) for s in shards}) == 1, (n, bs, world)  # every rank runs the same number of steps
        assert all(len(a) == len(b) for batches in zip(*shards) for a, b in zip(batches, batches[1:]))
        seen = {i for s in shards for b in s for i in b}
        assert seen == set(range(n))


def test_single_process_order_is_unchanged():
    g = torch.Generator().manual_seed(5 * 100_003 + 2)
    perm = torch.randperm(11, generator=g).tolist()
    assert epoch_batches(11, 4, 5, 2) == [perm[0:4], perm[4:8], perm[8:11]]
    sampler = EpochBatchSampler(11, 4, 5)
    sampler.set_epoch(2, start=1)
    assert [[i for i, _ in b] for b in sampler] == [perm[4:8], perm[8:11]] and len(sampler) == 2


def _mirror_dataset(root, n=6, size=32):
    rng = np.random.default_rng(1)
    for i in range(n):
        img = rng.integers(0, 255, (size, size, 3), dtype=np.uint8)
        write_image(root / "train_A" / f"{i:03d}.png", img)
        write_image(root / "train_B" / f"{i:03d}.png", img)


def test_flip_keeps_pose_and_frame_together(tmp_path):
    _mirror_dataset(tmp_path)
    ds = AlignedDataset(tmp_path, "train", 32, 32)
    sampler = EpochBatchSampler(len(ds), 2, seed=0, flip=True)
    flips = 0
    for epoch in range(4):
        sampler.set_epoch(epoch)
        for batch in sampler:
            for i, flip in batch:
                item = ds[(i, flip)]
                assert torch.equal(item["A"], item["B"])  # pose and frame flipped together, or neither
                assert torch.equal(item["A"], ds[i]["A"].flip(-1) if flip else ds[i]["A"])
                flips += flip
    assert 0 < flips < 24
    a, b = EpochBatchSampler(6, 2, 0, flip=True), EpochBatchSampler(6, 2, 0, flip=True)
    a.set_epoch(3)
    b.set_epoch(3)
    assert list(a) == list(b)  # flips depend on (seed, epoch) only: exact resume


def test_training_with_flip_and_loader_workers(tmp_path):
    _mirror_dataset(tmp_path, n=4)
    cfg = make_config("tiny", {"width": 32, "height": 32, "flip": True, "num_workers": 1, "niter": 1,
                               "niter_decay": 0})
    tr = build_trainer(cfg, tmp_path, "w", tmp_path / "ck", resume=False, progress=False)
    state = torch.get_rng_state()
    tr.train()
    assert tr.iteration == 2 and torch.equal(torch.get_rng_state(), state)  # the loader draws no global RNG


def test_amp_and_config_values_are_checked():
    for key, value in (("amp", "half"), ("device", "gpu"), ("batch_size", 0), ("netG", "big"), ("width", 100)):
        with pytest.raises(ValueError, match=key if key != "width" else "multiples"):
            make_config("tiny", {key: value})
    assert make_config("tiny", {"amp": "off"}).amp == "off"


def test_unusable_gpu_is_announced(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(device_module, "gpu_present_but_unusable", lambda: True)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert device_module.resolve_device("auto").type == "cpu"
    assert any("GPU IS PRESENT BUT THIS TORCH CANNOT USE IT" in str(w.message) for w in caught)


def test_aspect_ratio_of_the_data_must_match_the_preset(tiny_dataset, tmp_path):
    with pytest.raises(ValueError, match=r"drawn at 64x64.*trains at 128x64.*image_size=\[128, 64\]"):
        build_trainer(make_config("tiny", {"width": 128, "height": 64}), tiny_dataset / "dataset", "x", tmp_path,
                progress=False)


RANK_SCRIPT = textwrap.dedent('''
    import os, sys, torch, torch.distributed as dist
    from dancenow_utils.config import make_config
    from dancenow_utils.models.pix2pixhd import Pix2PixHD
    from dancenow_utils.training.stages import build_trainer
    dist.init_process_group("gloo")
    rank = dist.get_rank()
    mode, data, ck = sys.argv[1:4]
    try:
        if mode == "nan":
            model = Pix2PixHD(make_config("tiny"), torch.device("cpu"))
            model.check_finite({"G_GAN": torch.tensor(float("nan") if rank == 1 else 0.5)})
        else:
            cfg = make_config("tiny", {"max_dataset_size": 4, "threads": 1})
            build_trainer(cfg, data, "r", os.path.join(ck, f"node{rank}"), resume=True, progress=False)
        print(f"rank {rank}: no error", flush=True)
    except (FloatingPointError, RuntimeError) as exc:
        print(f"rank {rank}: {type(exc).__name__}: {exc}", flush=True)
''')


def _two_ranks(tmp_path, port, *args):
    script = tmp_path / "ranks.py"
    script.write_text(RANK_SCRIPT)
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", str(port),
           str(script), *map(str, args)]
    return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=180).stdout


def test_non_finite_loss_on_one_rank_stops_every_rank(tmp_path):
    out = _two_ranks(tmp_path, 29541, "nan", "-", "-")
    assert "rank 0: FloatingPointError: non-finite loss (on another rank)" in out
    assert "rank 1: FloatingPointError: non-finite loss {'G_GAN': nan}" in out


def test_ranks_that_would_resume_differently_are_stopped(tiny_dataset, tmp_path):
    cfg = make_config("tiny", {"max_dataset_size": 4})
    build_trainer(cfg, tiny_dataset / "dataset", "r", tmp_path / "node0", resume=False, progress=False).train(2)
    out = _two_ranks(tmp_path, 29542, "resume", tiny_dataset / "dataset", tmp_path)
    assert out.count("ranks disagree on where to resume") == 2 and "iterations by rank [2, 0]" in out


def test_keep_on_drive_links_and_keeps_existing_files(tmp_path, monkeypatch):
    from dancenow_utils.notebook.pipeline import keep_on_drive

    monkeypatch.chdir(tmp_path)
    (tmp_path / "checkpoints" / "demo").mkdir(parents=True)
    (tmp_path / "checkpoints" / "demo" / "latest.pth").write_bytes(b"x")
    drive = tmp_path / "drive"
    assert keep_on_drive(drive, ("checkpoints", "results"), mount=False) == [drive / "checkpoints", drive / "results"]
    assert (tmp_path / "checkpoints").is_symlink() and (drive / "checkpoints" / "demo" / "latest.pth").exists()
    assert (tmp_path / "checkpoints" / "demo" / "latest.pth").read_bytes() == b"x"
    keep_on_drive(drive, mount=False)  # again: nothing changes
    assert (tmp_path / "checkpoints").resolve() == (drive / "checkpoints").resolve()


def test_cpu_bf16_training_keeps_fp32_weights(tiny_dataset, tmp_path):
    cfg = make_config("tiny", {"max_dataset_size": 4, "amp": "bf16"})
    tr = build_trainer(cfg, tiny_dataset / "dataset", "bf16", tmp_path, resume=False, progress=False)
    losses = tr.train(max_iterations=2)
    assert tr.model.precision == "bf16" and not tr.model.scaler.is_enabled()
    assert all(np.isfinite(v) for v in losses.values())
    assert all(p.dtype == torch.float32 for p in tr.model.G.parameters())
