"""Speed of pose extraction (step 1) on the demo clip against bare MediaPipe on the same frames, 1 vs 2 workers.

"Bare" is MediaPipe Holistic's ``process`` on each decoded frame and nothing else. The whole step adds the
multi-person check, smoothing, crop, drawing and writing the pairs.

    .venv/bin/python bench/pose_speed.py [--frames 300]
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path

import mediapipe as mp
from common import demo, machine, report

from dancenow_utils.pose.extract import extract
from dancenow_utils.video import read_frames


def bare(video: Path, n: int) -> float:
    frames = [rgb for _, rgb in read_frames(video, max_frames=n)]
    with mp.solutions.holistic.Holistic(static_image_mode=False, model_complexity=1) as h:
        t = time.perf_counter()
        for rgb in frames:
            h.process(rgb)
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
    report("pose_speed", {"machine": machine(), "frames": a.frames, "bare_mediapipe_fps": round(b, 2),
                          "step_1_worker_fps": round(one, 2), "step_2_workers_fps": round(two, 2),
                          "overhead_1_worker": f"{100 * (b / one - 1):.1f} %",
                          "speedup_2_workers": round(two / one, 2)})
