"""Stick figures that carry depth against today's drawing, at equal compute on the demo (issue 25).

Every variant trains the demo preset from scratch on the same 1000 training pairs for the same steps with the same
seeds (run k uses seed k for every variant), and is scored on the demo's held-out clip with notebook 03's metrics
(body SSIM per pose kind, pose error) and the original project's three negative results
(``bench/negative_results.py``). A variant is a drawing (``PoseSettings.depth``: ``none`` is today's, ``order``
draws far to near, ``shade`` also shades by depth) and where the depth comes from: ``mediapipe`` (what notebook 01
detects: MediaPipe's z) or ``demo`` (the demo character's own drawing order, its ground truth); ``_truth`` draws
the character's true keypoints and depth instead of MediaPipe's (a perfect detector: the upper bound of what
better keypoints could give, on training and held-out poses alike); optionally with
``@b``: training draws the rare pose kinds more often (``pose_balance=b``, :mod:`dancenow_utils.data.balance`;
``none@0.5`` is today's drawing with balance 0.5) and ``jJ`` or ``sJ``: each training pair is jittered
(``jitter=J``, ``jitter_kind`` "affine" or "shift": ``none@0.5j0.5``, ``none@0.5s0.5``). The keypoints are
detected once (MediaPipe, as notebook 01 does); each variant only draws them again (``redraw_poses``).

    .venv/bin/python bench/depth_encodings.py [--variants none,order,shade] [--runs 2] [--niter 4 --niter-decay 3]
        [--threads 1] [--seeds 1]

Results are appended, one JSON line per run, to ``bench/.data/depth/results.jsonl`` (runs already there are not
repeated) and summarised (mean and spread of the runs per variant) at the end. Two processes with different
``--seeds`` share the work on two cores.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import re
import shutil
import time
from pathlib import Path

import numpy as np
from common import ROOT, demo, machine, report
from negative_results import measure

from dancenow_utils.config import make_config
from dancenow_utils.evaluation.crossval import evaluate
from dancenow_utils.layout import DatasetLayout
from dancenow_utils.pose.extract import extract, redraw_poses
from dancenow_utils.pose.formats import joint
from dancenow_utils.pose.keypoints import Person, read_openpose_json
from dancenow_utils.pose.kinds import POSE_KINDS, pose_kind
from dancenow_utils.pose.settings import PoseSettings
from dancenow_utils.training.stages import train_stage

DATA = ROOT / "bench" / ".data" / "depth"
# a variant: the drawing, where its depth comes from, how training draws the pose kinds and jitters the pairs
VARIANT = re.compile(r"^(?P<drawing>none|order|shade)(?:_(?P<source>demo|truth))?(?:@(?P<balance>[0-9.]+))?"
                     r"(?:(?P<jkind>[js])(?P<jitter>[0-9.]+))?$")
SOURCES = ("mediapipe", "demo", "truth")


def base_data(data: Path) -> tuple[Path, Path]:
    """The demo's training and held-out pairs, detected once with MediaPipe (keypoints with MediaPipe's depth)."""
    train, test = data / "base" / "dataset", data / "base" / "dataset_test"
    paths = demo()
    for clip, root in (("target_train", train), ("target_heldout", test)):
        if not (root / "train_A").is_dir():
            extract(paths.video(clip), root, "train", progress=False)
    return train, test


def variant_data(variant: str, base: Path, out: Path, depth_from: Path) -> Path:
    """``base`` drawn as ``variant`` (``<drawing>``, ``<drawing>_demo`` or ``<drawing>_truth``) under ``out``: the
    frames are linked, the keypoints copied (``_truth``: the character's true keypoints, ``depth_from``'s, for the
    frames MediaPipe kept, in the same crop), the poses drawn again."""
    drawing, _, source = variant.partition("_")
    if (out / "train_A").is_dir():
        return out
    tmp = out.with_name(out.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    src, dst = DatasetLayout(base, "train"), DatasetLayout(tmp, "train")
    dst.B.symlink_to(src.B.resolve(), target_is_directory=True)
    shutil.copytree(src.keypoints, dst.keypoints)
    if source == "truth":  # an upper bound: what a perfect pose detector would give the generator
        for f in dst.keypoints.glob("*_keypoints.json"):
            shutil.copyfile(depth_from / f.name, f)
    settings = dataclasses.replace(PoseSettings.load(src.settings) or PoseSettings(), depth=drawing)
    redraw_poses(tmp, settings, "train", depth_from=depth_from if source else "", progress=False)
    shutil.rmtree(out, ignore_errors=True)
    tmp.rename(out)
    return out


def front_arm(p: Person) -> str:
    """The arm whose elbow and wrist are nearer the camera (smaller depth)."""
    z = p.part_depth("body")
    right, left = z[joint("RElbow")] + z[joint("RWrist")], z[joint("LElbow")] + z[joint("LWrist")]
    return "right" if right < left else "left"


def depth_agreement(base: Path, truth: Path) -> dict:
    """On the frames whose arms cross or whose hands overlap (by the character's true keypoints): how often the
    depth MediaPipe gave (``base``, as extracted) puts the same arm in front as the character's drawing order."""
    agree: dict[str, list[bool]] = {"crossed arms": [], "hands overlapping": []}
    for f in sorted((base / "train_keypoints").glob("*_keypoints.json")):
        found, true = read_openpose_json(f), read_openpose_json(truth / f.name)
        kind = pose_kind(true[0])
        if kind in agree and len(found) == 1 and found[0].has_depth:
            agree[kind].append(front_arm(found[0]) == front_arm(true[0]))
    return {k: {"frames": len(v), "same_front_arm": round(float(np.mean(v)), 3) if v else None}
            for k, v in agree.items()}


ARM_JOINTS = [joint(n) for n in ("RShoulder", "LShoulder", "RElbow", "LElbow", "RWrist", "LWrist")]


def arm_error(base: Path, truth: Path) -> dict:
    """Per pose kind (by the character's true keypoints): how far MediaPipe's arm joints (as extracted) lie from the
    character's, in torso lengths (neck to mid-hip), over the joints both see."""
    errors: dict[str, list[float]] = {k: [] for k in POSE_KINDS}
    for f in sorted((base / "train_keypoints").glob("*_keypoints.json")):
        found, true = read_openpose_json(f), read_openpose_json(truth / f.name)
        if not found or not true:
            continue
        a, b = found[0].body, true[0].body
        torso = float(np.linalg.norm(b[joint("Neck"), :2] - b[joint("MidHip"), :2]))
        seen = (a[ARM_JOINTS, 2] > 0.1) & (b[ARM_JOINTS, 2] > 0.1)
        if torso > 0 and seen.any():
            d = np.linalg.norm(a[ARM_JOINTS, :2] - b[ARM_JOINTS, :2], axis=1)[seen] / torso
            errors[pose_kind(true[0])].extend(d.tolist())
    return {k: {"joints": len(v), "mean": round(float(np.mean(v)), 3) if v else None,
                "over_0.15": round(float(np.mean(np.array(v) > 0.15)), 3) if v else None} for k, v in errors.items()}


def summarise(rows: list[dict]) -> dict:
    """Per variant: the mean and half the range of each figure over its runs."""
    out: dict[str, dict] = {}
    for variant in dict.fromkeys(r["variant"] for r in rows):
        runs = [r for r in rows if r["variant"] == variant]
        figures = {k: [r["figures"][k] for r in runs if r["figures"].get(k) is not None] for k in runs[0]["figures"]}
        out[variant] = {"runs": len(runs), "seeds": [r["seed"] for r in runs],
                        **{k: {"mean": round(float(np.mean(v)), 4), "spread": round(float(np.ptp(v) / 2), 4)}
                           for k, v in figures.items() if v}}
    return out


def figures_of(metrics: dict, negative: dict) -> dict:
    """The figures compared: overall (flicker too), per pose kind, the negative results."""
    f = {"ssim": metrics["ssim"], "body_ssim": metrics["body_ssim"], "pose_error_px": metrics["pose_error_px"],
         "flicker": metrics["flicker"]}
    for kind in POSE_KINDS:
        s = metrics["by_pose_kind"][kind]
        key = kind.replace(" ", "_")
        f[f"{key}_n"] = s["n"]
        f[f"{key}_body_ssim"] = s["body_ssim"]
        f[f"{key}_pose_error_px"] = s["pose_error_px"]
    f["star_kept"] = negative["star"]["gan"]["kept_share"]
    f["hand_missing"] = negative["hand"]["gan"]["missing_share"]
    for kind in ("crossed arms", "hands overlapping", "others"):
        f[f"hand_missing_{kind.replace(' ', '_')}"] = negative["hand_missing_by_kind"][kind]["share"]
    front = [negative["hand_missing_by_kind"][k] for k in ("crossed arms", "hands overlapping")]
    n = sum(s["n"] for s in front)
    f["hand_missing_in_front"] = round(sum(s["share"] * s["n"] for s in front if s["share"] is not None) / n, 3) \
        if n else None
    return f


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--variants", default="none,order,shade",
                    help="<drawing>[_demo][@balance][j|s<jitter>], comma-separated")
    ap.add_argument("--runs", type=int, default=2, help="runs per variant (run k uses seed k)")
    ap.add_argument("--seeds", default="", help="only these runs' seeds, comma-separated (e.g. 1: a second process)")
    ap.add_argument("--niter", type=int, default=4, help="epochs at the full learning rate (demo preset: 4)")
    ap.add_argument("--niter-decay", type=int, default=3, help="epochs of decay (demo preset: 3)")
    ap.add_argument("--threads", type=int, default=1, help="torch threads per run (1: steady on shared cores)")
    ap.add_argument("--data", default=str(DATA))
    ap.add_argument("--agreement", action="store_true",
                    help="only how often MediaPipe's depth is right, and how far its arm joints lie from the truth")
    a = ap.parse_args()
    data = Path(a.data)
    train, test = base_data(data)
    if a.agreement:
        paths = demo()
        report("depth_agreement", {"train": depth_agreement(train, paths.keypoints("target_train")),
                                   "heldout": depth_agreement(test, paths.keypoints("target_heldout")),
                                   "arm_error_torso_lengths": {
                                       "train": arm_error(train, paths.keypoints("target_train")),
                                       "heldout": arm_error(test, paths.keypoints("target_heldout"))}})
        return
    results = data / "results.jsonl"
    done = [json.loads(line) for line in results.read_text().splitlines()] if results.exists() else []
    schedule = {"niter": a.niter, "niter_decay": a.niter_decay}
    demo_paths = demo()
    variants = a.variants.split(",")
    for variant in variants:
        if not VARIANT.match(variant):
            raise SystemExit(f"unknown variant {variant!r}: use none, order, shade, order_demo, shade_demo, "
                             "none_truth, each optionally with @<pose_balance> and j<jitter>, e.g. none@0.5j0.5")
    seeds = [int(k) for k in a.seeds.split(",")] if a.seeds else list(range(a.runs))
    # the generator weights the preset saves: runs from before it saved their moving average scored the trained
    # weights (ema_decay 0) and are not mixed with today's
    ema = make_config("demo").ema_decay
    for seed in seeds:  # every variant's first run, then every variant's second...
        for variant in variants:
            parts = VARIANT.match(variant)
            drawn = parts["drawing"] + (f"_{parts['source']}" if parts["source"] else "")
            training = {"pose_balance": float(parts["balance"] or 0), "jitter": float(parts["jitter"] or 0),
                        "jitter_kind": "shift" if parts["jkind"] == "s" else "affine"}
            vtrain = variant_data(drawn, train, data / drawn / "dataset", demo_paths.keypoints("target_train"))
            vtest = variant_data(drawn, test, data / drawn / "dataset_test", demo_paths.keypoints("target_heldout"))
            if results.exists():  # another process may have measured it meanwhile
                done = [json.loads(line) for line in results.read_text().splitlines()]
            if any(r["variant"] == variant and r["seed"] == seed and r["schedule"] == schedule
                   and r.get("ema_decay", 0.0) == ema for r in done):
                continue
            name = f"{variant}_s{seed}_{a.niter}_{a.niter_decay}"
            ck = data / "checkpoints"
            shutil.rmtree(ck / name, ignore_errors=True)
            cfg = make_config("demo", {**schedule, "seed": seed, "threads": a.threads, **training})
            t0 = time.perf_counter()
            train_stage("global", cfg, vtrain, name, ck, resume=False, progress=False)
            seconds = time.perf_counter() - t0
            metrics = evaluate(name, vtest, checkpoints_dir=ck, train_dataroot=vtrain, progress=False)
            negative = measure(name, ck, vtest, vtrain, data / "figures" / f"negative_{name}.png")
            row = {"variant": variant, "seed": seed, "schedule": schedule, "ema_decay": ema,
                   "train_s": round(seconds, 1),
                   "figures": figures_of(metrics, negative)}
            with results.open("a") as fh:
                fh.write(json.dumps(row) + "\n")
            done.append(row)
            print(json.dumps(row), flush=True)
    rows = [r for r in done if r["schedule"] == schedule and r["variant"] in a.variants.split(",")
            and r.get("ema_decay", 0.0) == ema]
    agreement = {"train": depth_agreement(train, demo_paths.keypoints("target_train")),
                 "heldout": depth_agreement(test, demo_paths.keypoints("target_heldout"))}
    report("depth_encodings", {"machine": machine(), "schedule": schedule,
                               "steps": 500 * (a.niter + a.niter_decay), "mediapipe_depth_agreement": agreement,
                               "summary": summarise(rows)})


if __name__ == "__main__":
    main()
