"""Speed of pose extraction (step 1) on the demo clip against the bare pose networks on the same frames, 1 vs 2 workers.

"Bare" is the backend's Holistic pipeline (:class:`~dancenow_utils.pose.blazepose.Holistic`, tracking mode) on each
decoded frame and nothing else. The whole step adds the
multi-person check, smoothing, crop, drawing and writing the pairs.

    .venv/bin/python bench/pose_speed.py [--frames 300]
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path

from common import demo, machine, report

from dancenow_utils.pose.blazepose import Holistic
from dancenow_utils.pose.extract import extract
from dancenow_utils.pose.tflite_models import model_paths
from dancenow_utils.video import read_frames


def bare(video: Path, n: int) -> float:
    frames = [rgb for _, rgb in read_frames(video, max_frames=n)]
    h = Holistic(model_paths(), video=True)
    t = time.perf_counter()
    for rgb in frames:
        h(rgb)
    return len(frames) / (time.perf_counter() - t)


def whole(video: Path, n: int, workers: int) -> float:
    out = Path(tempfile.mkdtemp())
    t = time.perf_counter()
    s = extract(video, out, "train", max_frames=n, workers=workers, progress=False)
    fps = s.total / (time.perf_counter() - t)
    shutil.rmtree(out)
    return fps


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--frames", type=int, default=300)
    a = ap.parse_args()
    video = demo().video("target_train")
    b = bare(video, a.frames)
    one = whole(video, a.frames, 1)
    two = whole(video, a.frames, 2)
    report("pose_speed", {"machine": machine(), "frames": a.frames, "bare_holistic_fps": round(b, 2),
                          "step_1_worker_fps": round(one, 2), "step_2_workers_fps": round(two, 2),
                          "overhead_1_worker": f"{100 * (b / one - 1):.1f} %",
                          "speedup_2_workers": round(two / one, 2)})
