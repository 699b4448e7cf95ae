"""Pose extraction on hard footage (issue 11, item 5): two people, a crowd of small people, shot cuts, close-ups.

The demo generator draws the clips with their ground truth (``dancenow_utils.synthetic.hard``, made once under
``bench/.data/hard``). For each clip:

- people counting as the extractor runs it on a video (MediaPipe tracking, a second pose pass with the first
  person masked out on every 5th frame and on every frame while two are seen, the 4 frames before a two-person
  detection dropped): of the frames showing one person, the share kept (``single_kept``); of the frames showing
  several, the share wrongly kept as one person (``several_kept``, should be 0);
- the same with every frame an independent image (still-image mode, every frame counted);
- the face detector the extractor counted people with before (faces counted on every frame, its best case);
- shot cuts found against the true ones; the close-up's detection rate and upper-body error;
- seconds per frame of detection with and without people counting.

    .venv/bin/python bench/hard_footage.py [--size 256] [--frames 150]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from common import ROOT, machine, report

from dancenow_utils.pose.cuts import WINDOW, find_cuts
from dancenow_utils.pose.detect import detect
from dancenow_utils.pose.keypoints import read_openpose_json
from dancenow_utils.pose.mediapipe_backend import MediaPipeEstimator, quiet_native_logs
from dancenow_utils.pose.sources import FrameSource
from dancenow_utils.synthetic.hard import HARD_CLIPS, make_hard_footage
from dancenow_utils.video import read_frames

UPPER = [0, 1, 2, 3, 4, 5, 6, 7, 15, 16, 17, 18]  # head, neck, shoulders, elbows, wrists (BODY_25)


def kept(status: list[str], truth: np.ndarray) -> dict:
    ok = np.array([s == "ok" for s in status])
    single, several = truth == 1, truth > 1
    return {"single_kept": round(float(ok[single].mean()), 3) if single.any() else None,
            "several_kept": round(float(ok[several].mean()), 3) if several.any() else None}


def face_counter(video, truth: np.ndarray) -> dict | str:
    """The former check: a frame is kept when the pose model finds someone and the face detector one face
    (mediapipe 0.10.14's face detector, where it is installed: Python 3.12 and older)."""
    try:
        import mediapipe as mp
    except ImportError:
        return "mediapipe 0.10.14 not installed"

    est = MediaPipeEstimator(video=True, count_people=False)
    with quiet_native_logs():
        faces = mp.solutions.face_detection.FaceDetection(model_selection=1, min_detection_confidence=0.6)
    status = []
    for _, rgb in read_frames(video):
        found = est(rgb)
        with quiet_native_logs():
            n_faces = len(faces.process(rgb).detections or [])
        status.append("ok" if found and n_faces <= 1 else "multiple")
    est.close()
    with quiet_native_logs():
        faces.close()
    return kept(status, truth)


def change_stats(changes: list[float], cuts: list[int]) -> dict:
    """Largest change and ratio to the neighbours' median away from cuts; smallest at the cuts."""
    c = np.nan_to_num(np.asarray(changes, np.float64))
    ratio = np.array([c[i] / max(float(np.median(np.r_[c[max(1, i - WINDOW): i], c[i + 1: i + 1 + WINDOW]])), 1e-6)
                      for i in range(1, len(c))])
    other = [i for i in range(1, len(c)) if i not in cuts]
    out = {"max_change_elsewhere": round(float(c[other].max()), 4),
           "max_ratio_elsewhere": round(float(ratio[np.array(other) - 1].max()), 1)}
    if cuts:
        out.update(min_change_at_cuts=round(float(c[cuts].min()), 4),
                   min_ratio_at_cuts=round(float(ratio[np.array(cuts) - 1].min()), 1))
    return out


def closeup_error(paths, results) -> dict:
    errs, found = [], 0
    for r in results:
        gt = read_openpose_json(paths.keypoints("closeup") / f"{r.frame_id}_keypoints.json")[0]
        if r.person is None:
            continue
        found += 1
        vis = [j for j in UPPER if gt.body[j, 2] > 0 and r.person.body[j, 2] > 0.05]
        d = np.linalg.norm(r.person.body[vis, :2] - gt.body[vis, :2], axis=1)
        shoulders = float(np.linalg.norm(gt.body[2, :2] - gt.body[5, :2]))
        errs.append(d.mean() / shoulders)
    return {"detection_rate": round(found / len(results), 3),
            "upper_body_error_of_shoulder_width": round(float(np.mean(errs)), 3)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--frames", type=int, default=150)
    a = ap.parse_args()
    paths = make_hard_footage(ROOT / "bench" / ".data" / f"hard{a.size}", a.size, a.frames, seed=0, progress=False)
    print(machine())  # with the CPU's SIMD flags
    out: dict = {"size": a.size, "frames": a.frames}
    for clip in HARD_CLIPS:
        truth = np.array(paths.truth(clip)["people"])
        src = FrameSource.open(paths.video(clip))
        t = time.perf_counter()
        video = detect(src, workers=1, progress=False, sequence=True)
        sec = (time.perf_counter() - t) / len(video)
        still = detect(src, workers=1, progress=False, sequence=False)
        row = {"video": kept([r.status for r in video], truth), "still_images": kept([r.status for r in still], truth),
               "faces_every_frame": face_counter(paths.video(clip), truth), "sec_per_frame_video": round(sec, 4)}
        cuts = find_cuts([r.change for r in video])
        row["cuts_found"], row["cuts_true"] = cuts, paths.truth(clip)["cuts"]
        row["change"] = change_stats([r.change for r in video], paths.truth(clip)["cuts"])
        if clip == "closeup":
            row["closeup"] = closeup_error(paths, video)
        out[clip] = row
    # the cost of counting on a one-person clip (every 5th frame counted), with and without the second pass
    est_plain, est_count = MediaPipeEstimator(video=True, count_people=False), MediaPipeEstimator(video=True)
    frames = [rgb for _, rgb in read_frames(paths.video("closeup"))]
    for name, est in (("plain", est_plain), ("counting", est_count)):
        t = time.perf_counter()
        for rgb in frames:
            est(rgb)
        out[f"sec_per_frame_{name}"] = round((time.perf_counter() - t) / len(frames), 4)
        est.close()
    report("hard_footage", out)


if __name__ == "__main__":
    main()
