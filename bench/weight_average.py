"""The moving average of the generator's weights (``ema_decay``) against the trained weights, from the same runs.

Each run trains the demo preset once (``--overrides`` for other settings, e.g. ``'{"jitter": 0.2}'``) on the
demo's training pairs as ``bench/depth_encodings.py`` detects them (today's drawing, ``none``, or another with
``--drawing``, e.g. ``order``: limbs far to near by MediaPipe's depth), and tracks, beside
training, one moving average of the generator's weights per ``--decays`` value with the trainer's own update
(:func:`dancenow_utils.models.base.average_weight`). Averaging does not change training, so the trained weights
and every average come from one trajectory: the comparison is paired, free of the seeds' spread. Each is scored on
the demo's held-out clip with notebook 03's metrics (body SSIM per pose kind, pose error) and the original
project's negative results (``bench/negative_results.py``).

    .venv/bin/python bench/weight_average.py [--seeds 0] [--decays 0.99,0.995,0.999] [--niter 4 --niter-decay 3]
        [--overrides '{"jitter": 0.2}'] [--drawing none] [--threads 1] [--steps N]

One JSON line per scored generator is appended to ``bench/.data/weight_average/results.jsonl``; two processes with
different ``--seeds`` share two cores.
"""

from __future__ import annotations

import argparse
import json
import shutil
import time
from pathlib import Path

import torch
from common import ROOT, demo, machine, report
from depth_encodings import DATA as DEPTH_DATA
from depth_encodings import base_data, figures_of, variant_data
from negative_results import measure

from dancenow_utils.checkpoint import load_checkpoint, save_checkpoint
from dancenow_utils.config import make_config, parse_overrides
from dancenow_utils.evaluation.crossval import evaluate
from dancenow_utils.models.base import average_weight
from dancenow_utils.training.stages import build_trainer

OUT = ROOT / "bench" / ".data" / "weight_average"


def train_with_averages(cfg, train: Path, name: str, ck: Path, decays: list[float],
                        steps: int | None = None) -> dict[float, dict]:
    """Train ``cfg`` (no average of its own) into ``ck/name`` (``steps``: stop early); the averages of G's
    parameters by decay, as state-dict entries."""
    trainer = build_trainer(cfg, train, name, ck, resume=False, progress=False)
    params = list(trainer.model.nets["G"].parameters())
    averages = {d: [p.detach().clone() for p in params] for d in decays}
    updates = [0]

    def follow(_trainer) -> None:
        updates[0] += 1
        with torch.no_grad():
            for decay, avg in averages.items():
                torch._foreach_lerp_(avg, [p.detach() for p in params], average_weight(decay, updates[0]))

    trainer.train(max_iterations=steps, callback=follow)
    names = [n for n, _ in trainer.model.nets["G"].named_parameters()]
    trainer.close()
    return {d: dict(zip(names, avg)) for d, avg in averages.items()}


def with_weights(ck: Path, name: str, other: str, weights: dict) -> None:
    """A copy of run ``name`` as ``other`` whose generator file holds ``weights`` (the buffers kept)."""
    shutil.rmtree(ck / other, ignore_errors=True)
    shutil.copytree(ck / name, ck / other)
    payload = {k: v for k, v in load_checkpoint(ck / name / "latest_G.pth").items() if k != "format"}
    payload["G"] = {**payload["G"], **weights}
    save_checkpoint(ck / other / "latest_G.pth", payload)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", default="0", help="one run per seed, comma-separated")
    ap.add_argument("--decays", default="0.99,0.995,0.999")
    ap.add_argument("--niter", type=int, default=4, help="epochs at the full learning rate (demo preset: 4)")
    ap.add_argument("--niter-decay", type=int, default=3, help="epochs of decay (demo preset: 3)")
    ap.add_argument("--overrides", default="", help='other config keys, e.g. \'{"jitter": 0.2}\'')
    ap.add_argument("--threads", type=int, default=1, help="torch threads per run (1: steady on shared cores)")
    ap.add_argument("--steps", type=int, default=0, help="stop after this many steps (0: the whole schedule)")
    ap.add_argument("--drawing", default="none",
                    help="the poses' drawing, as bench/depth_encodings.py names it: none, order, shade, order_demo")
    a = ap.parse_args()
    decays = [float(d) for d in a.decays.split(",")]
    extra = parse_overrides(a.overrides)
    base_train, base_test = base_data(DEPTH_DATA)
    drawn, train_depth, test_depth = DEPTH_DATA / a.drawing, Path(), Path()
    if "_" in a.drawing:  # order_demo, none_truth...: depth or keypoints from the demo character itself
        paths = demo()
        train_depth, test_depth = paths.keypoints("target_train"), paths.keypoints("target_heldout")
    train = variant_data(a.drawing, base_train, drawn / "dataset", train_depth)
    test = variant_data(a.drawing, base_test, drawn / "dataset_test", test_depth)
    ck, results = OUT / "checkpoints", OUT / "results.jsonl"
    tag = "".join(f"_{k}{v}" for k, v in sorted(extra.items())) + ("" if a.drawing == "none" else f"_{a.drawing}")
    rows = []
    for seed in (int(s) for s in a.seeds.split(",")):
        schedule = {"niter": a.niter, "niter_decay": a.niter_decay}
        cfg = make_config("demo", {**schedule, "seed": seed, "threads": a.threads, "ema_decay": 0.0, **extra})
        name = f"trained_s{seed}_{a.niter}_{a.niter_decay}{tag}"
        t0 = time.perf_counter()
        averages = train_with_averages(cfg, train, name, ck, decays, a.steps or None)
        seconds = time.perf_counter() - t0
        scored = [(name, "trained")]
        for decay, weights in averages.items():
            scored.append((f"ema{decay}_s{seed}_{a.niter}_{a.niter_decay}{tag}", f"ema {decay}"))
            with_weights(ck, name, scored[-1][0], weights)
        for run, weights in scored:
            metrics = evaluate(run, test, checkpoints_dir=ck, train_dataroot=train, progress=False)
            negative = measure(run, ck, test, train, OUT / "figures" / f"negative_{run}.png")
            row = {"weights": weights, "seed": seed, "schedule": schedule, "overrides": extra, "drawing": a.drawing,
                   "steps": a.steps or None,
                   "train_s": round(seconds, 1), "figures": figures_of(metrics, negative)}
            rows.append(row)
            with results.open("a") as fh:
                fh.write(json.dumps(row) + "\n")
            print(json.dumps(row), flush=True)
    report("weight_average", {"machine": machine(), "rows": rows})


if __name__ == "__main__":
    main()
