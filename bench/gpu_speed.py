"""GPU training speed: the real step (VGG loss on where its weights are given), per preset and precision, with peak
GPU memory against the trainer's estimate.

    .venv/bin/python bench/gpu_speed.py [--presets seed edn_global edn_local] [--amp fp32 auto] [--steps 20]
                                        [--vgg-weights vgg19-dcbb9e9d.pth]
    .venv/bin/python bench/gpu_speed.py --device cpu --presets tiny --amp fp32 --steps 1   # dry run, no GPU

Each preset's networks train on random batches at the preset's size and batch (data loading is not timed: the
loader's workers overlap it with the GPU), after a warm-up that lets cuDNN pick its kernels. ``edn_local`` is its
local stage at 1024x512 (its global stage is ``edn_global``'s size with twice the filters). Without
``--vgg-weights`` (or with a missing file) the step has no VGG term, which is about a quarter of a ``seed`` step and
half of an ``edn_local`` step by FLOPs: the table says which. A configuration that runs out of memory is a row
saying so, with the estimate; the others still run.
"""

from __future__ import annotations

import argparse
import gc
import time
from pathlib import Path

import torch
from common import machine, report

from dancenow_utils.config import make_config
from dancenow_utils.models.pix2pixhd import Pix2PixHD
from dancenow_utils.runtime.device import prepare_device, resolve_device
from dancenow_utils.runtime.precision import resolve_precision
from dancenow_utils.training.memory import estimate_training_memory


def random_batch(cfg, device: torch.device) -> dict[str, torch.Tensor]:
    keys = ("A", "B", "A_next", "B_next") if cfg.temporal else ("A", "B")
    return {k: torch.rand(cfg.batch_size, 3, cfg.height, cfg.width, device=device) * 2 - 1 for k in keys}


def speed(preset: str, amp: str, steps: int, device: torch.device, vgg_weights: str = "",
          warmup: int = 3) -> dict:
    """One row: iterations per second and peak memory, or ``"out of memory"``."""
    vgg = bool(vgg_weights) and Path(vgg_weights).exists()
    cfg = make_config(preset, {"amp": amp, "vgg_loss": "on" if vgg else "off", "vgg_weights": vgg_weights})
    precision = resolve_precision(cfg.amp, device)
    one = (3, cfg.height, cfg.width)
    shapes = {k: one for k in (("A", "B", "A_next", "B_next") if cfg.temporal else ("A", "B"))}
    estimate = estimate_training_memory(cfg, precision, shapes, vgg=vgg)
    row = {"preset": preset, "precision": precision, "size": f"{cfg.width}x{cfg.height}", "batch": cfg.batch_size,
           "vgg": vgg, "estimate_gb": round(estimate.total / 1e9, 2)}
    cuda = device.type == "cuda"
    if cuda:
        torch.cuda.reset_peak_memory_stats(device)
    model = batch = None
    try:
        model = Pix2PixHD(cfg, device, precision=precision)
        batch = random_batch(cfg, device)
        for _ in range(warmup):
            model.train_step(batch, check_finite=False)
        if cuda:
            torch.cuda.synchronize(device)
        t = time.perf_counter()
        for _ in range(steps):
            model.train_step(batch, check_finite=False)
        model.raise_if_non_finite()
        if cuda:
            torch.cuda.synchronize(device)
        sec = (time.perf_counter() - t) / steps
        row.update(it_per_s=round(1 / sec, 2), status="ok")
    except torch.cuda.OutOfMemoryError:
        row.update(it_per_s=None, status="out of memory")
    finally:
        del model, batch
        gc.collect()
        if cuda:
            row["peak_gpu_memory_gb"] = round(torch.cuda.max_memory_allocated(device) / 1e9, 2)
            torch.cuda.empty_cache()
    return row


def table(rows: list[dict]) -> str:
    """The rows as a markdown table (for bench/RESULTS.md)."""
    cols = ["preset", "size", "batch", "precision", "vgg", "it_per_s", "peak_gpu_memory_gb", "estimate_gb", "status"]
    lines = ["| " + " | ".join(cols) + " |", "|" + " --- |" * len(cols)]
    lines += ["| " + " | ".join("-" if r.get(c) is None else str(r.get(c)) for c in cols) + " |" for r in rows]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> list[dict]:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--presets", nargs="+", default=["demo", "seed", "edn_global", "edn_local"])
    ap.add_argument("--amp", nargs="+", default=["fp32", "auto"])
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--vgg-weights", default="", help="a local vgg19-dcbb9e9d.pth: the step includes the VGG loss")
    ap.add_argument("--device", default="cuda", help="cuda (default) or cpu for a dry run")
    a = ap.parse_args(argv)
    if a.device.startswith("cuda") and not torch.cuda.is_available():
        print("bench/gpu_speed.py: no CUDA GPU on this machine; nothing to measure (--device cpu for a dry run)")
        return []
    dev = resolve_device(a.device)
    prepare_device(dev)
    if a.vgg_weights and not Path(a.vgg_weights).exists():
        print(f"{a.vgg_weights}: not found; timing the step without the VGG loss")
    rows = [speed(p, amp, a.steps, dev, a.vgg_weights, a.warmup) for p in a.presets for amp in a.amp]
    gpu = torch.cuda.get_device_name(dev) if dev.type == "cuda" else "none"
    report("gpu_speed", {"machine": machine(), "gpu": gpu, "runs": rows})
    print(table(rows))
    return rows


if __name__ == "__main__":
    main()
