"""CUDA paths (issue 12): exact resume, mixed precision and NCCL data parallel on a GPU. Skipped without CUDA.

Run them on a GPU machine with ``python -m pytest tests/test_cuda.py``.
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
import torch

from dancenow_utils.config import make_config
from dancenow_utils.training.stages import build_trainer
from tests.conftest import full_and_resumed

pytestmark = [pytest.mark.cuda,
              pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU (this machine has none)")]


def tiny(**kw):
    return make_config("tiny", {"max_dataset_size": 8, "device": "cuda", **kw})


@pytest.mark.parametrize("amp", ["fp32", "fp16", "bf16", "auto"])
def test_training_step_in_each_precision(tiny_dataset, tmp_path, amp):
    if amp == "bf16" and not torch.cuda.is_bf16_supported():
        pytest.skip("this GPU has no bf16")
    tr = build_trainer(tiny(amp=amp), tiny_dataset / "dataset", amp, tmp_path, resume=False, progress=False)
    losses = tr.train(max_iterations=3)
    assert tr.iteration == 3 and all(v == v for v in losses.values())
    assert tr.model.scaler.is_enabled() == (tr.model.precision == "fp16")


def test_resume_on_cuda_matches_an_uninterrupted_run(tiny_dataset, tmp_path):
    cfg = tiny(save_latest_freq=2, niter=1, niter_decay=1)
    a, b = full_and_resumed(cfg, tiny_dataset / "dataset", tmp_path)
    torch.testing.assert_close(a, b, rtol=0, atol=1e-5)  # cuDNN may pick other kernels after a restart


def test_cpu_checkpoint_resumes_on_cuda(tiny_dataset, tmp_path):
    cfg = tiny(save_latest_freq=2)
    build_trainer(cfg.with_overrides({"device": "cpu"}), tiny_dataset / "dataset", "x", tmp_path, resume=False,
            progress=False).train(max_iterations=2)
    resumed = build_trainer(cfg.with_overrides({"amp": "fp16"}), tiny_dataset / "dataset", "x", tmp_path, resume=True,
                      progress=False)
    assert resumed.iteration == 2
    resumed.train(max_iterations=4)


@pytest.mark.skipif(torch.cuda.device_count() < 2, reason="needs 2 GPUs")
def test_nccl_data_parallel_on_uneven_data(tiny_dataset, tmp_path):
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", "29561",
           "-m", "dancenow_utils.training", "--dataroot", str(tiny_dataset / "dataset"), "--name", "ddp", "--preset",
           "tiny", "--checkpoints_dir", str(tmp_path), "--no-resume", "--set", "max_dataset_size=9", "batch_size=2"]
    res = subprocess.run(cmd, env=dict(os.environ), capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stderr[-3000:]
    assert torch.load(tmp_path / "ddp" / "latest.pth", weights_only=True)["iteration"] == 6
