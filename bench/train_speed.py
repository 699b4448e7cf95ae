"""The project's pix2pixHD training step against a plain one, in one run, interleaved, on each precision this
machine has.

The *plain* step is pix2pixHD's iteration written the straightforward way, here in the bench: G forward; D on
the detached fake, on the real pair and on the fake (three D passes); LSGAN and discriminator feature matching;
G's backward and step, then D's; default ``torch.optim.Adam``; fp32; every loss read back. It is the baseline
and always runs in fp32. The *project's* step is ``Pix2PixHD.train_step`` at the identical config and initial
weights, once per precision available here (fp32; bf16 on CPUs with bf16 instructions; fp16 and bf16 on GPUs).

For each precision the two steps alternate (A B, B A, A B, ...: drift and other processes' load hit both alike)
and the bench reports the medians, the ratio plain / project and its range over the rounds, with the CPU's
model and SIMD flags and the allocator setting in effect. On a shared machine it also gives the fastest round of
each (the least disturbed by other processes) and the load average per round. Defaults: the ``seed`` networks at
256x256, batch 1, VGG off (issue 13); about 2 minutes on two idle cores.

    .venv/bin/python bench/train_speed.py [--preset seed] [--size 256] [--rounds 7] [--precisions fp32,bf16]

Run it through ``make bench`` (or with ``GLIBC_TUNABLES`` set as in dancenow_utils/runtime_env.py) to time what
``make demo`` gets.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import time

import torch
from common import machine, report
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from dancenow_utils.config import TrainConfig, make_config
from dancenow_utils.models.networks import build_discriminator, build_generator
from dancenow_utils.models.pix2pixhd import Pix2PixHD
from dancenow_utils.runtime import precision
from dancenow_utils.runtime.device import resolve_device
from dancenow_utils.runtime.env import GLIBC_TUNABLES

Batch = dict[str, torch.Tensor]


def project_step(model: Pix2PixHD, batch: Batch) -> object:
    """One training step of the project's model (its precision comes from ``cfg.amp``): the only place the bench
    calls its API."""
    return model.train_step(batch)


class PlainPix2PixHD:
    """pix2pixHD's training iteration as one would first write it (the baseline): nothing shared, nothing
    frozen, default Adam, fp32, losses read back every step."""

    def __init__(self, cfg: TrainConfig, device: torch.device) -> None:
        if cfg.temporal or cfg.netG != "global":
            raise ValueError("the plain step is the per-frame global generator's; use a preset with netG='global'")
        self.cfg = cfg
        self.G = build_generator(cfg).to(device)
        self.D = build_discriminator(cfg).to(device)
        self.opt_G = torch.optim.Adam(self.G.parameters(), lr=cfg.lr, betas=(cfg.beta1, 0.999))
        self.opt_D = torch.optim.Adam(self.D.parameters(), lr=cfg.lr, betas=(cfg.beta1, 0.999))

    @staticmethod
    def lsgan(preds: list[list[torch.Tensor]], target: float) -> torch.Tensor:
        return sum(torch.mean((scale[-1] - target) ** 2) for scale in preds)

    def feature_matching(self, fake: list[list[torch.Tensor]], real: list[list[torch.Tensor]]) -> torch.Tensor:
        weight = self.cfg.lambda_feat * (4.0 / (self.cfg.n_layers_D + 1)) / len(fake)
        return sum(weight * nn.functional.l1_loss(f, r.detach())
                   for f_scale, r_scale in zip(fake, real) for f, r in zip(f_scale[:-1], r_scale[:-1]))

    def step(self, batch: Batch) -> dict[str, float]:
        A, B = batch["A"], batch["B"]
        fake = self.G(A)
        pred_fake_pool = self.D(torch.cat([A, fake.detach()], 1))
        pred_real = self.D(torch.cat([A, B], 1))
        pred_fake = self.D(torch.cat([A, fake], 1))
        losses = {"G_GAN": self.lsgan(pred_fake, 1.0), "G_GAN_Feat": self.feature_matching(pred_fake, pred_real),
                  "D_real": self.lsgan(pred_real, 1.0), "D_fake": self.lsgan(pred_fake_pool, 0.0)}
        self.opt_G.zero_grad()
        (losses["G_GAN"] + losses["G_GAN_Feat"]).backward()
        self.opt_G.step()
        self.opt_D.zero_grad()
        ((losses["D_real"] + losses["D_fake"]) * 0.5).backward()
        self.opt_D.step()
        return {k: v.item() for k, v in losses.items()}


def bench_config(preset: str, size: int) -> TrainConfig:
    return make_config(preset, {"width": size, "height": size, "batch_size": 1, "vgg_loss": "off"})


def make_batch(cfg: TrainConfig, device: torch.device) -> Batch:
    g = torch.Generator().manual_seed(1)
    shape = (cfg.batch_size, 3, cfg.height, cfg.width)
    return {k: (torch.rand(shape, generator=g) * 2 - 1).to(device) for k in ("A", "B")}


def build_project(cfg: TrainConfig, device: torch.device, prec: str) -> Pix2PixHD:
    torch.manual_seed(cfg.seed)  # the same initial weights as the plain model
    return Pix2PixHD(cfg.with_overrides({"amp": prec}), device)


def load_average() -> float:
    """The 1-minute load average (other processes competing for the cores; 0 where unknown)."""
    try:
        return round(os.getloadavg()[0], 2)
    except OSError:
        return 0.0


def timed(fn, usage: list | None = None) -> float:
    """Wall seconds of ``fn()``; appends (minor page faults, system CPU seconds) during it to ``usage``."""
    r0, t = resource.getrusage(resource.RUSAGE_SELF), time.perf_counter()
    fn()
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    sec, r1 = time.perf_counter() - t, resource.getrusage(resource.RUSAGE_SELF)
    if usage is not None:
        usage.append((r1.ru_minflt - r0.ru_minflt, r1.ru_stime - r0.ru_stime))
    return sec


def compare(cfg: TrainConfig, device: torch.device, prec: str, rounds: int, plain: PlainPix2PixHD,
            batch: Batch) -> dict:
    """Plain fp32 against the project's step in ``prec``, alternating, after one warm-up step each."""
    model = build_project(cfg, device, prec)

    def run_project() -> None:
        project_step(model, batch)

    def run_plain() -> None:
        plain.step(batch)

    runs = {"plain": run_plain, "project": run_project}
    for fn in runs.values():
        fn()
    times: dict[str, list[float]] = {"plain": [], "project": []}
    usage: dict[str, list] = {"plain": [], "project": []}
    for r in range(rounds):
        for name in (("plain", "project") if r % 2 == 0 else ("project", "plain")):
            times[name].append(timed(runs[name], usage[name]))
        print(f"  [{prec}] round {r + 1}/{rounds}: plain {times['plain'][-1]:.3f} s, "
              f"project {times['project'][-1]:.3f} s (load average {load_average()})", flush=True)
    with torch.no_grad(), precision.autocast(device, prec):
        model.G.eval()
        inference = statistics.median(timed(lambda: model.G(batch["A"])) for _ in range(3))
    plain_s, project_s = statistics.median(times["plain"]), statistics.median(times["project"])
    plain_best, project_best = min(times["plain"]), min(times["project"])
    per_round = [p / q for p, q in zip(times["plain"], times["project"])]
    return {"plain_fp32_s": round(plain_s, 3), "project_s": round(project_s, 3),
            "ratio": round(plain_s / project_s, 2),
            "ratio_range": [round(min(per_round), 2), round(max(per_round), 2)],
            "plain_fp32_best_s": round(plain_best, 3), "project_best_s": round(project_best, 3),
            "ratio_of_best": round(plain_best / project_best, 2),
            "plain_rounds_s": [round(t, 3) for t in times["plain"]],
            "project_rounds_s": [round(t, 3) for t in times["project"]],
            "project_G_inference_s": round(inference, 3),
            # allocator behaviour, insensitive to other processes' load (see dancenow_utils/runtime_env.py)
            "minor_page_faults_per_step": {k: int(statistics.median(f for f, _ in u)) for k, u in usage.items()},
            "system_s_per_step": {k: round(statistics.median(st for _, st in u), 3) for k, u in usage.items()}}


def matmul_gflops(device: torch.device, prec: str, n: int = 2048) -> float:
    a, b = torch.randn(n, n, device=device), torch.randn(n, n, device=device)
    with precision.autocast(device, prec):
        a @ b
        sec = statistics.median(timed(lambda: a @ b) for _ in range(5))
    return round(2 * n**3 / sec / 1e9, 1)


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--preset", default="seed", help="network sizes from this config preset (default: seed)")
    ap.add_argument("--size", type=int, default=256, help="image width and height (default: 256)")
    ap.add_argument("--rounds", type=int, default=7, help="timed steps of each kind per precision (default: 7)")
    ap.add_argument("--precisions", default="", help="comma-separated, e.g. fp32,bf16 (default: all available)")
    ap.add_argument("--device", default="auto")
    a = ap.parse_args(argv)
    device = resolve_device(a.device)
    precs = [precision.resolve_precision(p, device) for p in a.precisions.split(",") if p.strip()] \
        or precision.available_precisions(device)
    cfg = bench_config(a.preset, a.size)
    tunables = os.environ.get("GLIBC_TUNABLES", "")
    print(f"CPU: {precision.describe_cpu()}\n{machine()}\n"
          f"GLIBC_TUNABLES={tunables or '(unset)'}"
          f"{'' if tunables == GLIBC_TUNABLES else '  (not the project setting: run through make bench)'}\n"
          f"{a.preset} networks at {a.size}x{a.size}, batch 1, VGG off; precisions {precs}; amp='auto' here: "
          f"{precision.resolve_precision('auto', device)}", flush=True)
    load_start = load_average()
    batch = make_batch(cfg, device)
    torch.manual_seed(cfg.seed)
    plain = PlainPix2PixHD(cfg, device)
    with FlopCounterMode(display=False) as counter:
        plain.step(batch)
    gflop = counter.get_total_flops() / 1e9
    results = {}
    for prec in precs:
        results[prec] = compare(cfg, device, prec, a.rounds, plain, batch)
        res = results[prec]
        print(f"{prec}: medians plain fp32 {res['plain_fp32_s']} s, project {res['project_s']} s, ratio "
              f"{res['ratio']}x (rounds {res['ratio_range'][0]}-{res['ratio_range'][1]}x); best "
              f"{res['plain_fp32_best_s']} s against {res['project_best_s']} s, {res['ratio_of_best']}x", flush=True)
    out = {"machine": machine(), "cpu": precision.describe_cpu(), "glibc_tunables": tunables,
           "load_average": {"start": load_start, "end": load_average()},
           "preset": a.preset, "size": a.size, "rounds": a.rounds, "gflop_per_step": round(gflop, 1),
           "matmul_gflops": {p: matmul_gflops(device, p) for p in precs}, "steps": results}
    report("train_speed", out)
    return out


if __name__ == "__main__":
    main()
