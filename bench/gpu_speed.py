"""GPU training speed: iterations per second and peak GPU memory per preset and precision.

    .venv/bin/python bench/gpu_speed.py [--presets seed edn_global edn_local] [--steps 20]

Each preset's networks train on random batches at the preset's size (data loading is not timed: the loader's
workers overlap it with the GPU), after a warm-up that lets cuDNN pick its kernels. Without a CUDA GPU it says so and
exits.
"""

from __future__ import annotations

import argparse
import time

import torch
from common import machine, report

from dancenow_utils.config import make_config
from dancenow_utils.models.pix2pixhd import Pix2PixHD
from dancenow_utils.runtime.device import prepare_device


def speed(preset: str, amp: str, steps: int, device: torch.device) -> dict:
    cfg = make_config(preset, {"amp": amp, "vgg_loss": "off"})
    torch.cuda.reset_peak_memory_stats(device)
    model = Pix2PixHD(cfg, device, vgg=False)
    batch = {k: torch.rand(cfg.batch_size, 3, cfg.height, cfg.width, device=device) * 2 - 1 for k in ("A", "B")}
    if cfg.temporal:
        batch.update(A_next=batch["A"].clone(), B_next=batch["B"].clone())
    for _ in range(3):
        model.train_step(batch)
    torch.cuda.synchronize(device)
    t = time.perf_counter()
    for _ in range(steps):
        model.train_step(batch)
    torch.cuda.synchronize(device)
    sec = (time.perf_counter() - t) / steps
    return {"preset": preset, "precision": model.precision, "size": f"{cfg.width}x{cfg.height}",
            "batch": cfg.batch_size, "it_per_s": round(1 / sec, 2),
            "peak_gpu_memory_gb": round(torch.cuda.max_memory_allocated(device) / 1e9, 2)}


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--presets", nargs="+", default=["demo", "seed", "edn_global", "edn_local"])
    ap.add_argument("--amp", nargs="+", default=["fp32", "auto"])
    ap.add_argument("--steps", type=int, default=20)
    a = ap.parse_args()
    if not torch.cuda.is_available():
        print("bench/gpu_speed.py: no CUDA GPU on this machine; nothing to measure")
        raise SystemExit(0)
    dev = torch.device("cuda")
    prepare_device(dev)
    rows = [speed(p, amp, a.steps, dev) for p in a.presets for amp in a.amp]
    report("gpu_speed", {"machine": machine(), "gpu": torch.cuda.get_device_name(dev), "runs": rows})
