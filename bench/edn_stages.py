"""The full method's parts, each against the per-frame global model with the same compute budget (issue 7).

Every variant gets ``--budget`` seconds of training on this machine, on the demo's training set, and is scored
on the demo's held-out clip (notebook 03's metrics):

- temporal smoothing (generator sees its previous frame, pairs judged): flicker against per-frame
- face GAN: 75 % of the budget for the main generator, 25 % for the face stage: face-crop SSIM against per-frame
- local enhancer: 50 % global stage at half resolution, 50 % local stage: body SSIM against per-frame global

    .venv/bin/python bench/edn_stages.py [--budget 180] [--dataroot dataset --test dataset_test]

Without ``dataset/`` and ``dataset_test/`` (made by notebook 01 / `make demo`) it extracts the demo first.
"""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

from common import ROOT, demo, machine, report

from dancenow_utils.config import make_config
from dancenow_utils.evaluation.crossval import evaluate
from dancenow_utils.pose.extract import extract
from dancenow_utils.training.stages import train_stage

KEYS = ("ssim", "body_ssim", "face_ssim", "pose_error_px", "flicker", "detection_rate")


def ensure_data(dataroot: Path, test: Path) -> None:
    if (dataroot / "train_A").is_dir() and (test / "train_A").is_dir():
        return
    paths = demo()
    extract(paths.video("target_train"), dataroot, "train", progress=False)
    extract(paths.video("target_heldout"), test, "train", progress=False)


def score(name: str, ck: Path, test: Path, dataroot: Path) -> dict:
    m = evaluate(name, test, checkpoints_dir=ck, train_dataroot=dataroot, progress=False)
    return {k: m[k] for k in KEYS}


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--budget", type=float, default=180.0, help="training seconds per variant")
    ap.add_argument("--dataroot", default=str(ROOT / "bench" / ".data" / "dataset"))
    ap.add_argument("--test", default=str(ROOT / "bench" / ".data" / "dataset_test"))
    a = ap.parse_args()
    dataroot, test = Path(a.dataroot), Path(a.test)
    ensure_data(dataroot, test)
    ck = ROOT / "bench" / ".data" / "edn_checkpoints"
    shutil.rmtree(ck, ignore_errors=True)
    T = a.budget
    base = make_config("demo", {"niter": 100, "niter_decay": 0, "face_niter": 100, "display_freq": 10**9})
    results = {}

    def run(name, stages, cfg):
        for stage, seconds in stages:
            train_stage(stage, cfg, dataroot, name, ck, resume=True, progress=False, max_seconds=seconds)
        results[name] = score(name, ck, test, dataroot)
        print(name, json.dumps(results[name]), flush=True)

    run("per_frame", [("global", T)], base)
    run("temporal", [("global", T)], base.with_overrides({"temporal": True}))
    run("face", [("global", 0.75 * T), ("face", 0.25 * T)], base)
    local = base.with_overrides({"netG": "local", "ngf": 8, "n_local_enhancers": 1, "n_blocks_local": 2})
    run("local", [("global", 0.5 * T), ("local", 0.5 * T)], local)
    report("edn_stages", {"machine": machine(), "budget_s_per_variant": T, **results})
