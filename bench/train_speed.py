"""Training-step speed and achieved GFLOP/s at 256x256 for the `seed` and `demo` presets, next to this machine's
fp32 matrix-multiply rate; and generator inference time per frame.

FLOPs of a whole training step (G and D forward and backward, both optimiser steps excluded) are counted with
``torch.utils.flop_counter``. The VGG loss is off (its weights cannot be downloaded here).

    .venv/bin/python bench/train_speed.py [--size 256] [--repeat 3]
"""

from __future__ import annotations

import argparse

import torch
from common import machine, report, timeit
from torch.utils.flop_counter import FlopCounterMode

from dancenow_utils.config import make_config
from dancenow_utils.models.pix2pixhd import Pix2PixHD


def matmul_gflops(n: int = 2048) -> float:
    a, b = torch.randn(n, n), torch.randn(n, n)
    sec, _ = timeit(lambda: a @ b, repeat=5)
    return 2 * n**3 / sec / 1e9


def step_stats(preset: str, size: int, repeat: int) -> dict:
    cfg = make_config(preset, {"width": size, "height": size, "vgg_loss": "off", "batch_size": 1})
    torch.manual_seed(0)
    model = Pix2PixHD(cfg, torch.device("cpu"))
    A = torch.rand(1, 3, size, size) * 2 - 1
    B = torch.rand(1, 3, size, size) * 2 - 1
    with FlopCounterMode(display=False) as counter:
        model.train_step(A, B)
    flops = counter.get_total_flops()
    sec, spread = timeit(lambda: model.train_step(A, B), repeat=repeat)
    with torch.no_grad():
        G = model.G.eval()
        inf, inf_spread = timeit(lambda: G(A), repeat=repeat)
    return {"sec_per_iter": round(sec, 3), "spread": round(spread, 3), "gflop_per_iter": round(flops / 1e9, 1),
            "achieved_gflops": round(flops / sec / 1e9, 1), "inference_ms_per_frame": round(1000 * inf, 1)}


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--repeat", type=int, default=3)
    a = ap.parse_args()
    report("train_speed", {"machine": machine(), "size": a.size, "matmul_fp32_gflops": round(matmul_gflops(), 1),
                           "demo": step_stats("demo", a.size, a.repeat), "seed": step_stats("seed", a.size, a.repeat)})
