"""Pose coverage against measured quality, and the forensic detector's held-out accuracy (issue 17).

On the demo: the held-out clip's coverage distances (nearest training pose, body heights) correlated with its
per-frame SSIM and body SSIM from the cross-validation (notebook 03's ``per_sample.csv``); SSIM by distance bin,
to ground the default threshold; the coverage of the source dancer's transfer poses; then the forensic detector
trained on the training frames against the generator's frames for the same poses, scored on the held-out clip
(frame alone, and pose + frame), and once more after both held-out sets went through H.264 (mp4).

    .venv/bin/python bench/coverage_forensics.py [--dataroot dataset --test dataset_test --checkpoints checkpoints]

With ``--dataroot``/``--test``/``--checkpoints`` holding the demo model (``make demo``), it uses them. Otherwise
it makes its own in ``--work`` (default ``bench/.data/coverage_forensics``, reused by later runs): the demo clips
(1000 training, 150 held-out, 150 source frames), MediaPipe extraction as notebook 01 does it, and a *short*
training of the ``demo`` preset (``--epochs`` 1 + 1 = 1000 iterations instead of ``make demo``'s 2500), then the
cross-validation.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import time
from pathlib import Path

import numpy as np
import torch
from common import ROOT, machine, report

from dancenow_utils.evaluation.coverage import (
    DEFAULT_THRESHOLD,
    coverage_report,
    coverage_vs_quality,
    load_pose_folder,
    per_sample_values,
    pose_distances,
)


def cpu_flags() -> str:
    out = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
    flags = next((line.split(":", 1)[1].split() for line in out.splitlines() if line.startswith("Flags")), [])
    model = next((line.split(":", 1)[1].strip() for line in out.splitlines() if line.startswith("Model name")), "?")
    return f"{model}; " + " ".join(f for f in flags if "avx" in f or "amx" in f)


def prepare(work: Path, epochs: int, progress: bool) -> tuple[Path, Path, Path, Path]:
    """Demo clips, extracted pairs and a short-trained model in ``work`` (each step skipped when present)."""
    from dancenow_utils.config import make_config
    from dancenow_utils.evaluation.crossval import evaluate
    from dancenow_utils.notebook.pipeline import ensure_demo
    from dancenow_utils.pose.extract import extract
    from dancenow_utils.training.stages import build_trainer

    demo = ensure_demo(work / "demo", 1000, 150, 150, progress=progress)
    dataroot, test, ck = work / "dataset", work / "dataset_test", work / "checkpoints"
    for clip, root in (("target_train", dataroot), ("target_heldout", test)):
        if not (root / "train_keypoints" / "crop.json").exists():
            t = time.time()
            print(extract(demo.video(clip), root, "train", workers=1, progress=progress))
            print(f"extracted {clip} in {time.time() - t:.0f} s", flush=True)
    if not (ck / "demo" / "latest.pth").exists() or not (ck / "demo_test" / "per_sample.csv").exists():
        t = time.time()
        cfg = make_config("demo", {"niter": epochs, "niter_decay": epochs})
        build_trainer(cfg, dataroot, "demo", ck, resume=True, progress=progress).train()
        print(f"trained in {time.time() - t:.0f} s", flush=True)
        evaluate("demo", test, checkpoints_dir=ck, train_dataroot=dataroot, progress=progress)
    return dataroot, test, ck, demo.video("source_dancer")


NOVEL_STD = {"r_abd": 0.9, "l_abd": 0.9, "r_elb": 1.2, "l_elb": 1.2, "lean": 0.25, "twist": 0.3, "head": 0.2,
             "sway": 0.15, "squat": 0.15, "r_foot_x": 0.2, "l_foot_x": 0.2, "r_foot_up": 0.15, "l_foot_up": 0.15}
NOVEL_LIMITS = {"r_abd": (-1.2, 3.1), "l_abd": (-1.2, 3.1), "r_elb": (-2.9, 2.8), "l_elb": (-2.9, 2.8),
                "lean": (-0.6, 0.6), "twist": (-0.8, 0.8), "head": (-0.45, 0.45), "sway": (-0.35, 0.35),
                "squat": (0.0, 0.55), "r_foot_x": (-0.5, 0.5), "l_foot_x": (-0.5, 0.5), "r_foot_up": (0.0, 0.45),
                "l_foot_up": (0.0, 0.45)}


def novel_clip(work: Path, dataroot: Path, ck: Path, n: int = 150, seed: int = 11,
               progress: bool = False) -> tuple[Path, Path]:
    """Poses the target never showed, with their true frames: the demo character dancing, pushed further and
    further (over the clip) off its dances by a smooth random offset, beyond the dances' limits. Extracted with
    MediaPipe and cross-validated like the held-out clip; returns ``(dataroot, per_sample.csv)``."""
    import shutil

    from dancenow_utils.evaluation.crossval import evaluate
    from dancenow_utils.pose.extract import extract
    from dancenow_utils.synthetic.character import TARGET_STYLE, background, render_character
    from dancenow_utils.synthetic.dance import PARAMS, dance_trajectory
    from dancenow_utils.video import write_video

    root, nck = work / "dataset_novel", work / "checkpoints_novel"
    csv_path = nck / "demo_test" / "per_sample.csv"
    if csv_path.exists():
        return root, csv_path
    rng = np.random.default_rng(seed)
    std = np.array([NOVEL_STD[k] for k in PARAMS])
    noise = rng.normal(size=(n, len(PARAMS)))
    kernel = np.hanning(21) / np.hanning(21).sum()  # smooth in time, so the clip moves like a video
    offset = np.stack([np.convolve(noise[:, j], kernel, mode="same") for j in range(len(PARAMS))], 1)
    offset = offset / offset.std(0) * std
    params = dance_trajectory(n, seed, "all") + np.linspace(0, 1.5, n)[:, None] * offset
    params = np.clip(params, [NOVEL_LIMITS[k][0] for k in PARAMS], [NOVEL_LIMITS[k][1] for k in PARAMS])
    bg = background(TARGET_STYLE, 256, 256)
    video = work / "novel.mp4"
    write_video(video, (render_character(TARGET_STYLE, p, 256, 256, bg)[0] for p in params), 30)
    print(extract(video, root, "train", workers=1, progress=progress))
    shutil.rmtree(nck, ignore_errors=True)
    shutil.copytree(ck / "demo", nck / "demo")  # its own copy: evaluate() writes beside the run
    evaluate("demo", root, checkpoints_dir=nck, train_dataroot=dataroot, progress=progress)
    return root, csv_path


def _quality(rep, csv_path: Path, dataroot: Path) -> dict[str, np.ndarray]:
    """Per frame of a coverage report: distance, largest part distance, SSIM, body SSIM and body-box area (the
    body SSIM's window: a larger box holds more easy background)."""
    from dancenow_utils.evaluation.metrics import body_box

    cols = {c: per_sample_values(csv_path, c) for c in ("ssim", "body_ssim")}
    idx = [i for i, name in enumerate(rep.names) if name in cols["ssim"]]
    bodies = load_pose_folder(dataroot / "train_keypoints", (128, 128)).bodies
    area = [(lambda b: (b[2] - b[0]) * (b[3] - b[1]))(body_box(bodies[i], (128, 128))) for i in idx]
    max_part = np.nanmax(np.stack(list(rep.parts.values())), axis=0)
    return {"distance": rep.distance[idx], "max_part": max_part[idx], "area": np.array(area, np.float64),
            **{c: np.array([v[rep.names[i]] for i in idx]) for c, v in cols.items()},
            **{p: v[idx] for p, v in rep.parts.items()}}


def _partial_spearman(x: np.ndarray, y: np.ndarray, z: np.ndarray) -> float:
    """Spearman correlation of x and y with z's (rank) linear effect removed from both."""
    from dancenow_utils.evaluation.stats import average_ranks, pearson

    rz = np.c_[np.ones(len(z)), average_ranks(z)]
    res = [r - rz @ np.linalg.lstsq(rz, r, rcond=None)[0] for r in (average_ranks(x), average_ranks(y))]
    return round(pearson(*res), 4)


def coverage_part(dataroot: Path, test: Path, ck: Path, source: Path, work: Path, progress: bool) -> dict:
    out = work / "coverage"
    res: dict = {}
    sets = {}
    novel_root, novel_csv = novel_clip(work, dataroot, ck, progress=progress)
    for key, root, csv_path in (("heldout", test, ck / "demo_test" / "per_sample.csv"),
                                ("novel", novel_root, novel_csv)):
        rep = coverage_report(root / "train_keypoints", dataroot / "train_keypoints", out / key,
                              title=f"demo {key} clip: pose coverage")
        print(key, rep.summary(), sep="\n", flush=True)
        res[key] = {k: rep.to_dict()[k] for k in ("scale_px", "median", "p95", "max", "n_flagged", "n_frames",
                                                  "part_means")}
        sets[key] = q = _quality(rep, csv_path, root)
        res[key]["quality"] = {"body_ssim": round(float(q["body_ssim"].mean()), 4),
                               "ssim": round(float(q["ssim"].mean()), 4)}
    both = {k: np.concatenate([sets["heldout"][k], sets["novel"][k]]) for k in sets["heldout"]}
    for key, q in (*sets.items(), ("heldout_and_novel", both)):
        r = res.setdefault(key, {})
        for column in ("body_ssim", "ssim"):
            r[f"{column}_vs_distance"] = coverage_vs_quality(q["distance"], q[column])
            r[f"{column}_vs_max_part"] = coverage_vs_quality(q["max_part"], q[column])
        r["body_ssim_vs_distance_partial_area"] = _partial_spearman(q["distance"], q["body_ssim"], q["area"])
    q = both
    r = res["heldout_and_novel"]
    r["body_ssim_vs_part"] = {p: coverage_vs_quality(q[p], q["body_ssim"])["spearman"] for p in rep.parts}
    edges = [0, 0.02, 0.03, 0.035, 0.04, 0.05, 0.06, 0.08, 0.12, 1]
    r["by_distance_bin"] = [
        {"distance": f"{lo:g}-{hi:g}", "n": int(sel.sum()), "body_ssim": round(float(q["body_ssim"][sel].mean()), 4),
         "ssim": round(float(q["ssim"][sel].mean()), 4)}
        for lo, hi in zip(edges[:-1], edges[1:]) if (sel := (q["distance"] > lo) & (q["distance"] <= hi)).any()]
    rng = np.random.default_rng(0)
    for thr in (0.03, 0.035, 0.04, 0.05, 0.06, 0.08):
        above = q["distance"] > thr
        row = {"threshold": thr, "n_above": int(above.sum())}
        if above.any() and (~above).any():
            a_vals, b_vals = q["body_ssim"][above], q["body_ssim"][~above]
            boot = [rng.choice(b_vals, len(b_vals)).mean() - rng.choice(a_vals, len(a_vals)).mean()
                    for _ in range(2000)]
            row.update(mean_above=round(float(a_vals.mean()), 4), mean_below=round(float(b_vals.mean()), 4),
                       drop=round(float(b_vals.mean() - a_vals.mean()), 4),
                       drop_95ci=[round(float(v), 4) for v in np.percentile(boot, [2.5, 97.5])])
        r.setdefault("body_ssim_split", []).append(row)
    train = load_pose_folder(dataroot / "train_keypoints")  # how far one training frame is from the next
    step = [pose_distances(b[None], a[None], scale=res["heldout"]["scale_px"])["distance"][0]
            for a, b in zip(train.bodies[:-1], train.bodies[1:])]
    res["consecutive_training_frames"] = {"mean": round(float(np.nanmean(step)), 5),
                                          "median": round(float(np.nanmedian(step)), 5)}
    # the source dancer, normalised onto the target as notebook 04 does it
    from dancenow_utils.transfer.pose_transfer import prepare_poses

    transfer = work / "dataset_transfer"
    if not (transfer / "test_keypoints" / "crop.json").exists():
        prepare_poses(source, transfer, True, dataroot / "train_keypoints", image_size=256, progress=progress)
    src = coverage_report(transfer / "test_keypoints", dataroot / "train_keypoints", out / "transfer",
                          title="demo source dancer (normalised): pose coverage")
    print("transfer", src.summary(), sep="\n", flush=True)
    res["transfer"] = {k: src.to_dict()[k] for k in ("median", "p95", "max", "n_flagged", "n_frames")}
    return res


def forensics_part(dataroot: Path, test: Path, ck: Path, out: Path, steps: int, progress: bool) -> dict:
    from dancenow_utils.data.datasets import load_resized, pair_files
    from dancenow_utils.evaluation.forensics import detection_metrics, forensic_check, generate_for_poses, score_video
    from dancenow_utils.video import write_video

    res = {}
    for with_pose in (False, True):
        t = time.time()
        r = forensic_check("demo", dataroot, test, ck, out / ("pose_frame" if with_pose else "frame"),
                           with_pose=with_pose, steps=steps, device="cpu", progress=progress)
        key = "pose_and_frame" if with_pose else "frame"
        res[key] = {"train": r.metrics["train"], "heldout": r.metrics["heldout"], "seconds": round(time.time() - t)}
        print(key, json.dumps(res[key]), flush=True)
        if not with_pose:  # the same held-out frames after H.264 encoding (as in a shared video)
            pairs = pair_files(test, "train")
            fakes = generate_for_poses("demo", [a for a, _ in pairs], ck, "cpu")
            h, w = fakes[0].shape[:2]
            reals = [load_resized(b, w, h) for _, b in pairs]
            write_video(out / "heldout_real.mp4", reals, 30)
            write_video(out / "heldout_generated.mp4", fakes, 30)
            s_real = score_video(r.detector, out / "heldout_real.mp4", progress=False)
            s_fake = score_video(r.detector, out / "heldout_generated.mp4", progress=False)
            res["frame_after_h264"] = detection_metrics(s_real, s_fake)
            print("after H.264", json.dumps(res["frame_after_h264"]), flush=True)
    return res


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--dataroot", default="")
    ap.add_argument("--test", default="")
    ap.add_argument("--checkpoints", default="", help="holds demo/ (trained) and demo_test/per_sample.csv")
    ap.add_argument("--work", default=str(ROOT / "bench" / ".data" / "coverage_forensics"))
    ap.add_argument("--epochs", type=int, default=1, help="constant + decaying epochs of the short training")
    ap.add_argument("--steps", type=int, default=300, help="detector training steps")
    ap.add_argument("--threads", type=int, default=1, help="torch threads (1: steadier on a shared CPU)")
    ap.add_argument("--progress", action="store_true")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    work = Path(a.work)
    t0 = time.time()
    print("CPU:", cpu_flags(), flush=True)
    if a.dataroot and a.test and a.checkpoints:
        dataroot, test, ck = Path(a.dataroot), Path(a.test), Path(a.checkpoints)
        source, made = ROOT / "demo_data" / "source_dancer.mp4", "existing demo model"
    else:
        dataroot, test, ck, source = prepare(work, a.epochs, a.progress)
        made = f"made in {work}: demo clips, MediaPipe extraction, demo preset {a.epochs}+{a.epochs} epochs"
    t1 = time.time()
    cov = coverage_part(dataroot, test, ck, source, work, a.progress)
    t2 = time.time()
    forensic = forensics_part(dataroot, test, ck, work / "forensics", a.steps, a.progress)
    t3 = time.time()
    metrics = json.loads((ck / "demo_test" / "metrics.json").read_text())
    report("coverage_forensics", {
        "machine": machine(), "cpu": cpu_flags(), "data": made, "threads": a.threads,
        "model": {k: metrics.get(k) for k in ("ssim", "body_ssim", "nn_body_ssim", "n_samples")},
        "default_threshold": DEFAULT_THRESHOLD, "coverage": cov, "forensics": forensic,
        "seconds": {"data_and_model": round(t1 - t0), "coverage": round(t2 - t1), "forensics": round(t3 - t2),
                    "total": round(t3 - t0)}})
