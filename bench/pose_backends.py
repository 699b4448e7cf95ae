"""The pose backend on LiteRT against the mediapipe 0.10.14 one it replaced, side by side in one run (issue 22).

Both run MediaPipe's BlazePose (full), face-mesh and hand models; the new one through
:mod:`dancenow_utils.pose.blazepose` on LiteRT, the old one through ``mp.solutions.holistic`` (only where
mediapipe 0.10.14 installs: Python 3.12 and older; ``pip install mediapipe==0.10.14``). Measured:

- on the demo's ground truth (tracking mode, as extraction runs it): detection rate, mean body-joint error as a
  fraction of the character's height, PCK@0.1, frames per second of the bare estimator;
- on real photos that ship in packages (skimage's astronaut, matplotlib's Grace Hopper, opencv-doc's messi5 and
  basketball1 where installed): whether each finds the person, its face and hands, the time per photo, and how
  far the two agree (PCK@0.1 of the new backend's body joints against the old one's, 1.0 = every joint within a
  tenth of the body's height). The photos have no human labels, so agreement is what can be measured.

    .venv/bin/python bench/pose_backends.py [--frames 300]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import cv2
import numpy as np
from common import demo, machine, report

from dancenow_utils.pose.keypoints import read_openpose_json
from dancenow_utils.pose.mediapipe_backend import MediaPipeEstimator
from dancenow_utils.pose.normalize import body_height
from dancenow_utils.video import read_frames

sys.path.insert(0, str(Path(__file__).resolve().parent))
BODY = list(range(19))  # BODY_25 without the six foot points (MediaPipe has one toe point per foot)
PHOTOS = ("astronaut", "grace_hopper", "messi5.jpg", "basketball1.png")


def photo(name: str) -> np.ndarray | None:
    if name == "astronaut":
        from skimage import data

        return data.astronaut()
    if name == "grace_hopper":
        import matplotlib

        path = Path(matplotlib.get_data_path()) / "sample_data" / "grace_hopper.jpg"
    else:
        path = Path("/usr/share/doc/opencv-doc/examples/data") / name
    return cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB) if path.exists() else None


def backends() -> dict:
    out = {"litert": lambda video: MediaPipeEstimator(video=video, count_people=False)}
    try:
        import mediapipe  # noqa: F401
        from legacy_mediapipe import LegacyHolistic

        out["mediapipe_0.10.14"] = lambda video: LegacyHolistic(video=video)
    except ImportError:
        print("mediapipe 0.10.14 is not installed here: measuring the LiteRT backend alone", file=sys.stderr)
    return out


def on_demo(make, paths, clip: str, frames: int) -> dict:
    est = make(True)
    found = n = 0
    err, pck, spent = [], [], 0.0
    for i, rgb in read_frames(paths.video(clip), max_frames=frames):
        n += 1
        t = time.perf_counter()
        people = est(rgb)
        spent += time.perf_counter() - t
        gt = read_openpose_json(paths.keypoints(clip) / f"frame_{i:06d}_keypoints.json")[0]
        if len(people) != 1:
            continue
        found += 1
        h = body_height(gt)
        d = np.linalg.norm(people[0].body[BODY, :2] - gt.body[BODY, :2], axis=1)
        err.append(d.mean() / h)
        pck.append((d < 0.1 * h).mean())
    est.close()
    return {"frames": n, "detection_rate": round(found / n, 4),
            "mean_body_error_of_height": round(float(np.mean(err)), 4), "pck_0.1": round(float(np.mean(pck)), 4),
            "fps": round(n / spent, 2)}


def on_photos(makes: dict) -> dict:
    ests = {k: make(False) for k, make in makes.items()}
    rows = {}
    for name in PHOTOS:
        rgb = photo(name)
        if rgb is None:
            rows[name] = "not installed (Debian package opencv-doc)"
            continue
        row, people = {}, {}
        for k, est in ests.items():
            est(rgb)  # warm-up
            t = time.perf_counter()
            found = est(rgb)
            ms = 1000 * (time.perf_counter() - t)
            people[k] = found[0] if found else None
            p = people[k]
            row[k] = {"person": p is not None, "face": p is not None and p.face is not None,
                      "hands": 0 if p is None else int(p.left_hand is not None) + int(p.right_hand is not None),
                      "ms": round(ms, 1)}
        if len(people) == 2 and all(p is not None for p in people.values()):
            new, old = people["litert"], people["mediapipe_0.10.14"]
            both = (new.body[BODY, 2] > 0.5) & (old.body[BODY, 2] > 0.5)
            h = max(old.height(0.5), 1.0)
            d = np.linalg.norm(new.body[BODY, :2] - old.body[BODY, :2], axis=1)[both]
            row["agreement_pck_0.1"] = round(float((d < 0.1 * h).mean()), 4)
            row["joints_compared"] = int(both.sum())
            row["median_body_difference_of_height"] = round(float(np.median(d) / h), 4)
        rows[name] = row
    for est in ests.values():
        est.close()
    return rows


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--frames", type=int, default=300, help="frames of each demo clip")
    a = ap.parse_args()
    paths = demo()
    makes = backends()
    result = {"machine": machine(), "python": sys.version.split()[0]}
    for clip in ("target_train", "target_heldout"):
        result[clip] = {k: on_demo(make, paths, clip, a.frames) for k, make in makes.items()}
    result["photos"] = on_photos(makes)
    report("pose_backends", result)
