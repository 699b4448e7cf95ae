"""Where a training step's time goes, and how far it is from the machine's limit (issue 28).

Two parts, one run (three with ``--layers``):

1. **Profile** of real training (``Trainer.train`` on the demo's 1000 pairs, the loop exactly as notebook 02 runs
   it: data loading, the step, logging, checkpoints) under ``torch.profiler``: self time per operator group
   (convolutions forward and backward, normalisation, element-wise, precision casts, optimiser, data loading,
   losses) and the host time outside any operator (Python, autograd bookkeeping).
2. **Peak**: FLOPs of one step (``FlopCounterMode``) against the machine's measured convolution and matrix
   multiply throughput in the step's precision, so the share of peak each step reaches is visible.
3. With ``--layers``: every convolution of the generator and discriminator alone, forward and backward (input,
   weight and bias gradients) at the preset's batch and size: milliseconds and GFLOP/s in NCHW and in
   channels_last (the input converted and the output converted back, as a per-layer choice would), so the layers
   far from the peak are named.

    .venv/bin/python bench/train_profile.py [--preset demo] [--steps 60] [--warmup 10] [--dataroot DIR] [--layers]

Run it through ``make bench``'s environment (``GLIBC_TUNABLES`` as in dancenow_utils/runtime/env.py). It trains on
``dataset/`` as ``make demo`` leaves it (the pairs notebook 02 trains on).
"""

from __future__ import annotations

import argparse
import os
import re
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import torch
from common import ROOT, call_times, machine, report
from torch.profiler import ProfilerActivity, profile
from torch.utils.flop_counter import FlopCounterMode

from dancenow_utils.config import make_config
from dancenow_utils.models.networks import build_discriminator, build_generator, condition_nc, generator_input_nc
from dancenow_utils.runtime import precision
from dancenow_utils.training.stages import build_trainer

# operator name (regular expression) -> group; the first match wins
GROUPS = [
    ("data loading", r"DataLoader|enumerate\(|collate|PIL|decode"),
    ("optimiser (Adam)", r"adam|Optimizer|_foreach"),
    ("convolution backward", r"convolution_backward|mkldnn_convolution_backward|ConvolutionBackward"),
    ("convolution forward", r"convolution|conv2d|conv_transpose|mkldnn_conv"),
    ("normalisation", r"instance_norm|batch_norm|InstanceNorm|BatchNorm|native_batch_norm|_batch_norm"),
    ("precision casts and copies", r"aten::to$|_to_copy|aten::copy_|clone|contiguous"),
    ("pooling and padding", r"pool|pad|reflection"),
    ("element-wise and activations", r"relu|leaky|tanh|threshold|add|mul|sub|div|sum|mean|abs|pow|sgn|"
                                     r"where|fill|zero|neg|cat|stack|rsub|mse|l1|isfinite|any|sign|sqrt"),
]


def group_of(name: str) -> str:
    for group, pattern in GROUPS:
        if re.search(pattern, name, re.IGNORECASE):
            return group
    return "other operators"


def profile_training(dataroot: Path, preset: str, steps: int, warmup: int) -> dict:
    """Profile ``steps`` iterations of real training after ``warmup`` unprofiled ones."""
    cfg = make_config(preset, {"save_latest_freq": 10**9, "display_freq": 10**9})
    with tempfile.TemporaryDirectory() as tmp:
        trainer = build_trainer(cfg, dataroot, "profile", tmp, resume=False, progress=False)
        trainer.train(max_iterations=warmup)
        t = time.perf_counter()
        with profile(activities=[ProfilerActivity.CPU]) as prof:
            trainer.train(max_iterations=warmup + steps)
        wall = time.perf_counter() - t
        prec = trainer.model.precision
        trainer.close()
    per_group: dict[str, float] = defaultdict(float)
    for ev in prof.key_averages():
        per_group[group_of(ev.key)] += ev.self_cpu_time_total / 1e6
    # operators run on the calling thread (intra-op threads inside them): their self times add up to the wall
    # time the thread spent inside operators; the rest is host work outside any operator
    in_ops = sum(per_group.values())
    shares = {g: round(s / wall, 3) for g, s in sorted(per_group.items(), key=lambda kv: -kv[1])}
    shares["host work outside operators (Python, autograd, logging)"] = round(max(0.0, wall - in_ops) / wall, 3)
    top = sorted(prof.key_averages(), key=lambda e: -e.self_cpu_time_total)[:15]
    return {"precision": prec, "steps": steps, "ms_per_step": round(wall / steps * 1e3, 1), "shares": shares,
            "top_operators_ms_per_step": {e.key: round(e.self_cpu_time_total / 1e3 / steps, 2) for e in top}}


def step_flops(preset: str, dataroot: Path) -> tuple[float, str]:
    """GFLOP of one training step of ``preset`` (on one real batch), and the precision it trains in."""
    cfg = make_config(preset)
    with tempfile.TemporaryDirectory() as tmp:
        trainer = build_trainer(cfg, dataroot, "flops", tmp, resume=False, progress=False)
        batch = trainer.to_device(next(iter(trainer.loader)))
        with FlopCounterMode(display=False) as counter:
            trainer.model.train_step(batch)
        prec = trainer.model.precision
        trainer.close()
    return counter.get_total_flops() / 1e9, prec


def peak_gflops(prec: str, repeat: int = 5) -> dict[str, float]:
    """Measured throughput of one large matrix multiply and one large 3x3 convolution in ``prec`` (the best of
    ``repeat``: the machine's practical peak for such work)."""
    device = torch.device("cpu")
    out = {}
    a, b = torch.randn(2048, 2048), torch.randn(2048, 2048)
    conv = torch.nn.Conv2d(128, 128, 3, padding=1)
    x = torch.randn(4, 128, 64, 64)
    conv_flop = 2 * 4 * 128 * 128 * 9 * 64 * 64
    with torch.no_grad(), precision.autocast(device, prec):
        for name, fn, flop in (("matmul 2048", lambda: a @ b, 2 * 2048**3),
                               ("conv 3x3 128ch 64x64 batch 4", lambda: conv(x), conv_flop)):
            out[name] = round(flop / min(call_times(fn, repeat)) / 1e9, 1)
    return out


def layer_times(preset: str, repeat: int = 25) -> list[dict]:
    """Forward + backward of each convolution of the preset's G and D alone, NCHW against channels_last."""
    cfg = make_config(preset)
    G, D = build_generator(cfg), build_discriminator(cfg)
    convs: list[tuple[str, torch.nn.Module, tuple[int, ...]]] = []

    def hook(name: str):
        return lambda module, inputs, output: convs.append((name, module, tuple(inputs[0].shape)))

    handles = [m.register_forward_hook(hook(f"{net_name}.{n}")) for net_name, net in (("G", G), ("D", D))
               for n, m in net.named_modules() if isinstance(m, (torch.nn.Conv2d, torch.nn.ConvTranspose2d))]
    with torch.no_grad():
        pose = torch.zeros(cfg.batch_size, generator_input_nc(cfg), cfg.height, cfg.width)
        D(torch.cat([pose[:, :condition_nc(cfg)], G(pose)], 1))
    for h in handles:
        h.remove()
    rows = []
    for i, (name, module, shape) in enumerate(convs):
        x = torch.randn(shape, requires_grad=i > 0)  # G's first convolution needs no input gradient
        times = {}
        for layout in ("nchw", "channels_last"):
            last = layout == "channels_last"
            module.to(memory_format=torch.channels_last if last else torch.contiguous_format)

            def run(module: torch.nn.Module = module, x: torch.Tensor = x, last: bool = last) -> None:
                y = module(x.contiguous(memory_format=torch.channels_last) if last else x)
                y.contiguous().backward(torch.ones_like(y))

            times[layout] = min(call_times(run, repeat, warmup=3))
        module.to(memory_format=torch.contiguous_format)
        with FlopCounterMode(display=False) as counter:
            y = module(x)
            y.backward(torch.ones_like(y))
        rows.append({"layer": name, "conv": f"{module.in_channels}->{module.out_channels} k{module.kernel_size[0]} "
                                           f"s{module.stride[0]}", "input": list(shape),
                     "ms": round(times["nchw"] * 1e3, 2), "ms_channels_last": round(times["channels_last"] * 1e3, 2),
                     "gflops": round(counter.get_total_flops() / times["nchw"] / 1e9, 1)})
    return rows


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--preset", default="demo")
    ap.add_argument("--steps", type=int, default=60, help="profiled iterations (default: 60)")
    ap.add_argument("--warmup", type=int, default=10, help="iterations before profiling (default: 10)")
    ap.add_argument("--dataroot", default=str(ROOT / "dataset"),
                    help="a dataset root with train_A/train_B (default: dataset/, as `make demo` leaves it)")
    ap.add_argument("--layers", action="store_true", help="also time each convolution alone (NCHW, channels_last)")
    a = ap.parse_args(argv)
    dataroot = Path(a.dataroot)
    if not (dataroot / "train_A").is_dir():
        raise SystemExit(f"{dataroot / 'train_A'} not found: run `make demo` first (or pass --dataroot)")
    print(f"CPU: {precision.describe_cpu()}\n{machine()}", flush=True)
    prof = profile_training(dataroot, a.preset, a.steps, a.warmup)
    gflop, prec = step_flops(a.preset, dataroot)
    peaks = peak_gflops(prec)
    achieved = gflop / (prof["ms_per_step"] / 1e3)
    best_peak = max(peaks.values())
    out = {"machine": machine(), "cpu": precision.describe_cpu(), "preset": a.preset, "profile": prof,
           "gflop_per_step": round(gflop, 2), "achieved_gflops": round(achieved, 1), "peak_gflops": peaks,
           "share_of_peak": round(achieved / best_peak, 3),
           "load_average": os.getloadavg()[0]}
    if a.layers:
        out["layers"] = layer_times(a.preset)
    report("train_profile", out)
    return out


if __name__ == "__main__":
    main()
