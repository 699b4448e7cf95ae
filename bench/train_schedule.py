"""Batch size against quality at the demo's schedule (issue 28): the `demo` preset as it is, against larger batches
over the same epochs (fewer steps, learning rate scaled by the square root of the batch ratio), trained from
scratch with the same seeds and scored on the held-out clip with notebook 03's metrics.

    .venv/bin/python bench/train_schedule.py [--batches 2,8] [--seeds 0,1] [--dataroot dataset --test dataset_test]
        [--overrides '{"n_blocks_global": 2}'] [--keep]

Needs `make demo`'s `dataset/` and `dataset_test/` (or pass other roots). Runs alternate (batch 2 seed 0, batch 8
seed 0, batch 2 seed 1, ...) so that drift and other load hit both alike; prints each run's training time, body
SSIM, SSIM and pose error, with the CPU's flags.
"""

from __future__ import annotations

import argparse
import math
import shutil
import time
from pathlib import Path

from common import ROOT, machine, report

from dancenow_utils.config import make_config, parse_overrides
from dancenow_utils.evaluation.crossval import evaluate
from dancenow_utils.runtime.precision import describe_cpu
from dancenow_utils.training.stages import build_trainer


def run(batch: int, seed: int, train: Path, test: Path, ck: Path, overrides: dict | None = None) -> dict:
    base = make_config("demo")
    lr = base.lr * math.sqrt(batch / base.batch_size)
    overrides = overrides or {}
    cfg = make_config("demo", {"batch_size": batch, "lr": lr, "seed": seed, "display_freq": 10**9, **overrides})
    tag = "".join(f"_{k}{v}" for k, v in sorted(overrides.items()))
    name = f"batch{batch}_seed{seed}{tag}"
    t = time.perf_counter()
    trainer = build_trainer(cfg, train, name, ck, resume=False, progress=False)
    trainer.train()
    seconds = time.perf_counter() - t
    steps = trainer.iteration
    trainer.close()
    m = evaluate(name, test, checkpoints_dir=ck, train_dataroot=train, progress=False)
    row = {"batch": batch, "lr": round(cfg.lr, 6), "seed": seed, "overrides": overrides, "steps": steps,
           "train_s": round(seconds, 1),
           "body_ssim": m["body_ssim"], "ssim": m["ssim"], "pose_error_px": m["pose_error_px"],
           "by_pose_kind": {k: v["body_ssim"] for k, v in m.get("by_pose_kind", {}).items()}}
    print(row, flush=True)
    return row


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--batches", default="2,8")
    ap.add_argument("--seeds", default="0,1")
    ap.add_argument("--dataroot", default=str(ROOT / "dataset"))
    ap.add_argument("--test", default=str(ROOT / "dataset_test"))
    ap.add_argument("--overrides", default="", help='other config keys for every run, e.g. \'{"n_blocks_global": 2}\'')
    ap.add_argument("--keep", action="store_true", help="keep earlier runs' checkpoints (several processes at once)")
    a = ap.parse_args(argv)
    overrides = parse_overrides(a.overrides)
    train, test = Path(a.dataroot), Path(a.test)
    for root in (train, test):
        if not (root / "train_A").is_dir():
            raise SystemExit(f"{root / 'train_A'} not found: run `make demo` first (or pass --dataroot/--test)")
    ck = ROOT / "bench" / ".data" / "schedule_checkpoints"
    if not a.keep:
        shutil.rmtree(ck, ignore_errors=True)
    print(f"CPU: {describe_cpu()}\n{machine()}", flush=True)
    rows = [run(int(b), int(s), train, test, ck, overrides) for s in a.seeds.split(",") for b in a.batches.split(",")]
    out = {"machine": machine(), "runs": rows}
    report("train_schedule", out)
    return out


if __name__ == "__main__":
    main()
