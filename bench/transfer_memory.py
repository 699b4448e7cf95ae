"""Peak host memory of pose transfer against the number of frames: it must stay flat (frames are streamed).

    .venv/bin/python bench/transfer_memory.py [--frames 300 1200] [--size 512]

Each length runs in a fresh process (so peaks do not mix); the pose images are random stick-figure-like images at
the generator's size and the generator is the demo preset's, untrained (transfer's memory does not depend on the
weights). Prints the peak resident memory (ru_maxrss) per length and the CPU's flags.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

from common import machine, report

CHILD = r"""
import resource, sys, time
from pathlib import Path
import numpy as np
from dancenow_utils.config import make_config
from dancenow_utils.io_utils import write_image
from dancenow_utils.layout import RunLayout
from dancenow_utils.models.networks import build_generator
from dancenow_utils.checkpoint import save_checkpoint
from dancenow_utils.transfer.pose_transfer import run_transfer

root, n, size = Path(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
cfg = make_config("demo", {"width": size, "height": size})
run = RunLayout(root / "ck", "mem")
cfg.save(run.config)
save_checkpoint(run.generator(), {"G": build_generator(cfg).state_dict(), "config": cfg.to_dict()})
rng = np.random.default_rng(0)
poses = root / "poses" / "test_A"
for i in range(n):
    img = np.zeros((size, size, 3), np.uint8)
    x, y = rng.integers(0, size - 40, 2)
    img[y:y + 40, x:x + 8] = (255, 0, 0)
    write_image(poses / f"frame_{i:06d}.png", img)
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
t = time.perf_counter()
run_transfer("mem", poses, root / "results", checkpoints_dir=root / "ck", progress=False)
print(base, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, time.perf_counter() - t)
"""


def peak_mb(frames: int, size: int) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        out = subprocess.run([sys.executable, "-c", CHILD, tmp, str(frames), str(size)], capture_output=True,
                             text=True, check=True, cwd=Path(__file__).resolve().parents[1])
        before, after, sec = out.stdout.split()[-3:]
    return {"frames": frames, "peak_rss_mb": round(int(after) / 1024, 1),
            "rss_before_transfer_mb": round(int(before) / 1024, 1), "transfer_s": round(float(sec), 1)}


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--frames", type=int, nargs="+", default=[300, 1200])
    ap.add_argument("--size", type=int, default=512)
    a = ap.parse_args()
    rows = [peak_mb(n, a.size) for n in a.frames]
    report("transfer_memory", {"machine": machine(), "size": a.size, "runs": rows})
