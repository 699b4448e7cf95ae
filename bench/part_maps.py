"""pix2pixHD on label maps: the demo's body-part maps -> the character, against nearest-neighbour retrieval (issue 16).

The demo's training clip becomes a label-map dataset (``make_parts_datasets``: 16 body-part classes one-hot encoded,
plus the character's instance boundaries); the ``demo`` preset's networks (128x128) train on it for
``--iterations`` steps at a constant learning rate (0: the preset's own schedule, `make demo`'s: 4 + 3 epochs with
the learning rate decaying over the last three, and its L1 term) and are scored on the held-out clip with
notebook 03's metrics, where the nearest-neighbour baseline returns the training frame whose pose is closest.
``--features`` also trains pix2pixHD's feature encoder (``instance_feat``), scored with the per-class features it
tracked in training.

    .venv/bin/python bench/part_maps.py [--iterations 1500] [--features]
"""

from __future__ import annotations

import argparse
import json
import shutil
import time
from pathlib import Path

from common import ROOT, demo, machine, report

from dancenow_utils.config import make_config
from dancenow_utils.evaluation.crossval import evaluate
from dancenow_utils.synthetic.parts import PARTS_CONFIG, make_parts_datasets
from dancenow_utils.training.stages import build_trainer

KEYS = ("body_ssim", "nn_body_ssim", "ssim", "nn_ssim", "psnr", "nn_psnr", "pose_error_px", "nn_pose_error_px",
        "detection_rate", "n_samples")


def run(name: str, overrides: dict, roots: dict[str, Path], ck: Path, iterations: int) -> dict:
    """Train ``name`` for ``iterations`` steps on the part maps and score it on the held-out clip."""
    schedule = {"niter": 100, "niter_decay": 0} if iterations else {}
    cfg = make_config("demo", {**PARTS_CONFIG, **overrides, **schedule, "display_freq": 10**9})
    trainer = build_trainer(cfg, roots["train"], name, ck, resume=False, progress=False)
    started = time.perf_counter()
    trainer.train(max_iterations=iterations or None)
    seconds = time.perf_counter() - started
    m = evaluate(name, roots["test"], checkpoints_dir=ck, train_dataroot=roots["train"], progress=False)
    return {"iterations": trainer.iteration, "train_seconds": round(seconds, 1), **{k: m[k] for k in KEYS}}


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--iterations", type=int, default=1500,
                    help="training steps per variant (batch 2) at a constant rate; 0: the demo preset's schedule")
    ap.add_argument("--features", action="store_true", help="also train with the feature encoder (instance_feat)")
    a = ap.parse_args()
    data = ROOT / "bench" / ".data"
    roots = make_parts_datasets(demo(), data / "dataset_parts", data / "dataset_parts_test",
                                data / "dataset_parts_transfer")
    ck = data / "part_checkpoints"
    shutil.rmtree(ck, ignore_errors=True)
    results = {}
    variants = {"parts": {}, **({"parts_features": {"instance_feat": True}} if a.features else {})}
    for name, overrides in variants.items():
        results[name] = run(name, overrides, roots, ck, a.iterations)
        print(name, json.dumps(results[name]), flush=True)
    report("part_maps", {"machine": machine(), "iterations": a.iterations, **results})
