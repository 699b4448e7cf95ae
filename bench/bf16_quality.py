"""Quality is not traded for speed: the demo trained in bf16 and in fp32 for the same iterations, then scored.

    .venv/bin/python bench/bf16_quality.py [--iterations 2500]

Both runs use the `demo` preset on the full demo clips (made once under bench/.data), the same seed and data order;
only `amp` differs. Prints body SSIM, SSIM and the training time of each, and the CPU's flags. Issue 13 asks that
bf16's body SSIM stays within 0.01 of fp32's.
"""

from __future__ import annotations

import argparse
import shutil
import time
from pathlib import Path

from common import ROOT, demo, machine, report

from dancenow_utils.config import make_config
from dancenow_utils.evaluation.crossval import evaluate
from dancenow_utils.pose.extract import extract
from dancenow_utils.runtime.precision import available_precisions, describe_cpu
from dancenow_utils.training.stages import build_trainer

DATA = ROOT / "bench" / ".data"


def ensure_data() -> tuple[Path, Path]:
    train, test = DATA / "dataset", DATA / "dataset_test"
    if not (train / "train_A").is_dir() or not (test / "train_A").is_dir():
        paths = demo()
        extract(paths.video("target_train"), train, "train", image_size=128, progress=False)
        extract(paths.video("target_heldout"), test, "train", image_size=128, progress=False)
    return train, test


def run(amp: str, iterations: int, train: Path, test: Path, ck: Path) -> dict:
    cfg = make_config("demo", {"amp": amp, "display_freq": 10**9})
    t = time.perf_counter()
    trainer = build_trainer(cfg, train, f"demo_{amp}", ck, resume=False, progress=False)
    trainer.train(max_iterations=iterations)
    seconds = time.perf_counter() - t
    m = evaluate(f"demo_{amp}", test, checkpoints_dir=ck, train_dataroot=train, progress=False)
    return {"amp": amp, "precision": trainer.model.precision, "iterations": trainer.iteration,
            "train_s": round(seconds, 1), "body_ssim": m["body_ssim"], "ssim": m["ssim"],
            "pose_error_px": m["pose_error_px"]}


if __name__ == "__main__":
    import torch

    ap = argparse.ArgumentParser()
    ap.add_argument("--iterations", type=int, default=2500)
    a = ap.parse_args()
    train, test = ensure_data()
    ck = DATA / "bf16_checkpoints"
    shutil.rmtree(ck, ignore_errors=True)
    if "bf16" not in available_precisions(torch.device("cpu")):
        print(f"this CPU has no bf16 instructions ({describe_cpu()}): bf16 would be emulated; nothing to compare")
        raise SystemExit(0)
    rows = [run(amp, a.iterations, train, test, ck) for amp in ("fp32", "bf16")]
    delta = round(rows[1]["body_ssim"] - rows[0]["body_ssim"], 4)
    speedup = round(rows[0]["train_s"] / rows[1]["train_s"], 2)
    report("bf16_quality", {"machine": machine(), "runs": rows, "body_ssim_bf16_minus_fp32": delta,
                            "speedup": speedup})
