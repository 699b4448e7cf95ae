"""Training-step levers side by side, in one run, on real demo batches (issue 28).

Each variant is the project's ``Pix2PixHD.train_step`` at the preset's config and the same initial weights, with
one lever changed:

- ``baseline``: the step as the trainer runs it (``amp="auto"``, fused Adam);
- ``channels_last``: networks and batches in NHWC memory format (what oneDNN's bf16 kernels prefer);
- ``foreach_adam``: the multi-tensor Adam instead of the fused one;
- ``compile``: ``torch.compile`` of the generator and discriminator (its up-front cost reported separately);
- ``batch<k>``: batch size ``k`` (time per *sample* is what counts: an epoch has fewer steps);
- ``blocks<k>``: a generator with ``k`` residual blocks (the demo's has 4);
- ``size<k>``: the same networks and step on ``k`` x ``k`` batches: at a quarter of the demo's side the step has a
  sixteenth of its FLOPs, so what is left is the step's fixed cost (operator calls, autograd, optimiser, weight
  reorders), which no faster kernel removes;
- ``thread_replicas``: two replicas of the networks, each stepping on half the batch in its own Python thread with
  one operator thread (data parallelism inside one process, instead of ``gpus=2``'s two processes over gloo); the
  gradients are not exchanged, so this is an upper bound on what such a layout could gain;
- ``no_inplace``: ReLU and LeakyReLU not in place (pix2pixHD applies them in place to the instance norm's output,
  a view, which autograd answers with a copy of the whole gradient in the backward pass); the same values;
- ``three_d_passes``: pix2pixHD's own step, which runs the discriminator on the fake pair twice (detached for D's
  loss, with D's weights frozen for G's) where the project's step shares one pass (the same values and gradients).

Variants alternate round by round (drift and other processes' load hit all alike); per variant the bench
reports the median time per step and per sample, the speed-up per sample against the baseline and its range
over the rounds, and the load average, with the CPU's flags.

    .venv/bin/python bench/train_levers.py [--preset demo] [--rounds 5] [--steps 10] \
        [--variants baseline,channels_last,foreach_adam,compile,batch4] [--dataroot dataset] [--threads N]
"""

from __future__ import annotations

import argparse
import os
import statistics
import threading
import time
from collections.abc import Callable
from pathlib import Path

import torch
from common import ROOT, machine, report

from dancenow_utils.config import TrainConfig, make_config
from dancenow_utils.data.datasets import AlignedDataset
from dancenow_utils.models.base import frozen
from dancenow_utils.models.losses import feature_matching_loss, gan_loss
from dancenow_utils.models.pix2pixhd import Pix2PixHD
from dancenow_utils.runtime import precision
from dancenow_utils.runtime.device import resolve_device

Batch = dict[str, torch.Tensor]


def load_average() -> float:
    try:
        return round(os.getloadavg()[0], 2)
    except OSError:
        return 0.0


def batches(cfg: TrainConfig, dataroot: Path, n: int) -> list[Batch]:
    """``n`` real training batches of the preset's size (the first items of the dataset, no flips)."""
    data = AlignedDataset(dataroot, "train", cfg.width, cfg.height, max_size=n * cfg.batch_size)
    out = []
    for i in range(n):
        items = [data[(i * cfg.batch_size + j) % len(data)] for j in range(cfg.batch_size)]
        out.append({k: torch.stack([it[k] for it in items]) for k in ("A", "B")})
    return out


class ThreePasses(Pix2PixHD):
    """pix2pixHD's step as NVIDIA wrote it: D on the real pair, on the detached fake pair, and on the fake pair
    again with its weights frozen for G's losses; each backward runs through the whole graph."""

    def adversarial_losses(self, real_pair, fake_pair, n_layers, lambda_feat, feat, key="D"):
        D = self.net(key)
        pred_real, pred_fake_d = D(real_pair), D(fake_pair.detach())
        with frozen(self.nets[key]) as D_frozen:
            pred_fake_g = D_frozen(fake_pair)
        g_feat = feature_matching_loss(pred_fake_g, pred_real, n_layers, lambda_feat) if feat else 0.0
        return {"G_GAN": gan_loss(pred_fake_g, True), "G_GAN_Feat": g_feat,
                "D_real": gan_loss(pred_real, True), "D_fake": gan_loss(pred_fake_d, False)}

    def update(self, loss, keys, keep_graph=False):
        for key in keys:
            self.optimizers[key].zero_grad(set_to_none=True)
        self.scaler.scale(loss).backward()
        for key in keys:
            self.scaler.step(self.optimizers[key])


class Variant:
    """One lever applied to a fresh model; ``step()`` runs one training step on the next batch."""

    def __init__(self, name: str, cfg: TrainConfig, dataroot: Path, device: torch.device, n_batches: int) -> None:
        self.name, self.setup_s = name, 0.0
        batch = int(name.removeprefix("batch")) if name.startswith("batch") else cfg.batch_size
        cfg = cfg.with_overrides({"batch_size": batch})
        if name.startswith("blocks"):  # a generator with fewer (or more) residual blocks: fewer FLOPs per step
            cfg = cfg.with_overrides({"n_blocks_global": int(name.removeprefix("blocks"))})
        if name.startswith("size"):
            side = int(name.removeprefix("size"))
            cfg = cfg.with_overrides({"width": side, "height": side})
        self.batch_size = batch
        torch.manual_seed(cfg.seed)
        self.model = (ThreePasses if name == "three_d_passes" else Pix2PixHD)(cfg, device, vgg=False)
        self.batches = [{k: v.to(device) for k, v in b.items()} for b in batches(cfg, dataroot, n_batches)]
        self.replicas: list[Pix2PixHD] = []
        if name == "thread_replicas":
            if batch < 2:
                raise SystemExit("thread_replicas splits the batch in two: it needs a preset with batch_size >= 2")
            self.replicas = [self.model, Pix2PixHD(cfg, device, vgg=False)]
        if name == "channels_last":
            for net in self.model.nets.values():
                net.to(memory_format=torch.channels_last)
            self.batches = [{k: v.contiguous(memory_format=torch.channels_last) for k, v in b.items()}
                            for b in self.batches]
        if name == "no_inplace":
            for net in self.model.nets.values():
                for m in net.modules():
                    if isinstance(m, (torch.nn.ReLU, torch.nn.LeakyReLU)):
                        m.inplace = False
        if name == "foreach_adam":
            for key, opt in self.model.optimizers.items():
                params = [p for g in opt.param_groups for p in g["params"]]
                self.model.optimizers[key] = torch.optim.Adam(params, lr=cfg.lr, betas=(cfg.beta1, 0.999),
                                                              foreach=True)
        self.i = 0
        if name == "compile":
            t = time.perf_counter()
            self.model.nets = {k: torch.compile(v) for k, v in self.model.nets.items()}
            for _ in range(2):  # the first steps compile (G and D forward and backward, D frozen and not)
                self.step()
            self.setup_s = time.perf_counter() - t

    def step(self) -> None:
        batch = self.batches[self.i % len(self.batches)]
        self.i += 1
        if not self.replicas:
            self.model.train_step(batch, check_finite=False)
            return
        half = self.batch_size // 2
        parts = [{k: v[:half] for k, v in batch.items()}, {k: v[half:] for k, v in batch.items()}]
        threads_before = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            workers = [threading.Thread(target=m.train_step, args=(p,), kwargs={"check_finite": False})
                       for m, p in zip(self.replicas, parts)]
            for w in workers:
                w.start()
            for w in workers:
                w.join()
        finally:
            torch.set_num_threads(threads_before)


def timed(fn: Callable[[], None], steps: int) -> float:
    t = time.perf_counter()
    for _ in range(steps):
        fn()
    return (time.perf_counter() - t) / steps


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--preset", default="demo")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--steps", type=int, default=10, help="steps per variant per round (default: 10)")
    ap.add_argument("--variants", default="baseline,channels_last,foreach_adam,compile,batch4")
    ap.add_argument("--dataroot", default=str(ROOT / "dataset"))
    ap.add_argument("--device", default="auto")
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default, one per core)")
    a = ap.parse_args(argv)
    if a.threads:
        torch.set_num_threads(a.threads)
    dataroot = Path(a.dataroot)
    if not (dataroot / "train_A").is_dir():
        raise SystemExit(f"{dataroot / 'train_A'} not found: run `make demo` first (or pass --dataroot)")
    device = resolve_device(a.device)
    cfg = make_config(a.preset, {"vgg_loss": "off"})
    print(f"CPU: {precision.describe_cpu()}\n{machine()}\n{a.preset} at {cfg.width}x{cfg.height}, batch "
          f"{cfg.batch_size}, amp='auto' -> {precision.resolve_precision(cfg.amp, device)}", flush=True)
    names = [v.strip() for v in a.variants.split(",") if v.strip()]
    if "baseline" not in names:
        names.insert(0, "baseline")
    variants = {n: Variant(n, cfg, dataroot, device, a.steps) for n in names}
    for v in variants.values():  # warm-up: allocator, oneDNN primitives
        for _ in range(2):
            v.step()
    per_sample: dict[str, list[float]] = {n: [] for n in names}
    step_s: dict[str, list[float]] = {n: [] for n in names}
    loads = []
    for r in range(a.rounds):
        order = names if r % 2 == 0 else names[::-1]
        for n in order:
            s = timed(variants[n].step, a.steps)
            step_s[n].append(s)
            per_sample[n].append(s / variants[n].batch_size)
        loads.append(load_average())
        print(f"round {r + 1}/{a.rounds}: " + ", ".join(f"{n} {step_s[n][-1] * 1e3:.0f} ms" for n in names)
              + f" (load average {loads[-1]})", flush=True)
    base = per_sample["baseline"]
    rows = {}
    for n in names:
        ratios = [b / s for b, s in zip(base, per_sample[n])]
        rows[n] = {"ms_per_step": round(statistics.median(step_s[n]) * 1e3, 1),
                   "ms_per_sample": round(statistics.median(per_sample[n]) * 1e3, 1),
                   "speedup_per_sample": round(statistics.median(base) / statistics.median(per_sample[n]), 2),
                   "speedup_range": [round(min(ratios), 2), round(max(ratios), 2)],
                   "setup_s": round(variants[n].setup_s, 1)}
    out = {"machine": machine(), "cpu": precision.describe_cpu(), "preset": a.preset,
           "precision": variants["baseline"].model.precision, "rounds": a.rounds, "steps": a.steps,
           "load_average": loads, "variants": rows}
    report("train_levers", out)
    return out


if __name__ == "__main__":
    main()
