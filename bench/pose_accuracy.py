"""Pose accuracy on the demo character and how new the held-out poses are (issues 3 and 4).

Runs MediaPipe (tracking mode, as the extractor does) on the full demo clips and compares with the ground truth:
detection rate, mean body-joint error as a fraction of the character's height, PCK@0.1. Then measures the mean
distance from each held-out pose to its nearest training pose, next to the mean distance between consecutive
training frames.

    .venv/bin/python bench/pose_accuracy.py
"""

from __future__ import annotations

import numpy as np
from common import demo, machine, report

from dancenow_utils.pose.keypoints import read_openpose_json
from dancenow_utils.pose.mediapipe_backend import MediaPipeEstimator
from dancenow_utils.pose.normalize import body_height
from dancenow_utils.video import read_frames

BODY = list(range(19))  # BODY_25 without the six foot points (MediaPipe has one toe point per foot)


def accuracy(paths, clip: str) -> dict:
    est = MediaPipeEstimator(video=True)
    n = found = 0
    err, pck, err_feet = [], [], []
    for i, rgb in read_frames(paths.video(clip)):
        n += 1
        people = est(rgb)
        gt = read_openpose_json(paths.keypoints(clip) / f"frame_{i:06d}_keypoints.json")[0]
        if len(people) != 1:
            continue
        found += 1
        h = body_height(gt)
        d = np.linalg.norm(people[0].body[:, :2] - gt.body[:, :2], axis=1)
        err.append(d[BODY].mean() / h)
        err_feet.append(d[19:].mean() / h)
        pck.append((d[BODY] < 0.1 * h).mean())
    est.close()
    return {"frames": n, "detection_rate": round(found / n, 4),
            "mean_body_error_of_height": round(float(np.mean(err)), 4), "pck_0.1": round(float(np.mean(pck)), 4),
            "mean_foot_error_of_height": round(float(np.mean(err_feet)), 4)}


def novelty(paths) -> dict:
    def load(clip):
        arr = [read_openpose_json(f)[0].body[BODY, :2] for f in sorted(paths.keypoints(clip).glob("*.json"))]
        return np.stack(arr)

    train, held = load("target_train"), load("target_heldout")
    consecutive = np.linalg.norm(np.diff(train, axis=0), axis=2).mean()
    nearest = np.array([np.linalg.norm(train - h[None], axis=2).mean(axis=1).min() for h in held])
    return {"heldout_to_nearest_train_px": round(float(nearest.mean()), 2),
            "heldout_to_nearest_train_median_px": round(float(np.median(nearest)), 2),
            "consecutive_train_frames_px": round(float(consecutive), 2)}


if __name__ == "__main__":
    paths = demo()
    report("pose_accuracy", {"machine": machine(), "target_train": accuracy(paths, "target_train"),
                             "target_heldout": accuracy(paths, "target_heldout"), "novelty": novelty(paths)})
