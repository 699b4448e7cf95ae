"""Global pose normalisation on the demo dancers: EDN's method against the project's (issue 14, item 7).

The demo's ground-truth skeletons (target_train and source_dancer, rebuilt from the same styles, trajectories and
seeds as ``make_demo`` without rendering; ``--demo DIR`` reads an existing demo's keypoint JSON instead) are
normalised source -> target in four scenarios:

- ``clean``: the ground truth as is. Both dancers stay on their floor line (no movement in depth).
- ``noisy``: every keypoint jittered (Gaussian, sigma = ``--noise`` of the character's standing height; 1.4 %
  gives MediaPipe's measured mean joint error of 1.7 %, bench/RESULTS.md), ``--repeats`` draws averaged.
- ``depth``: noisy, and each dancer also walks to and from the camera: every frame is scaled about the vanishing
  point (frame centre, painted horizon) by a depth factor (target 0.85-1.0, source 0.80-1.05, other periods).
  Not in the demo; it exercises the close/far interpolation the demo never needs.
- ``mediapipe``: a small demo is rendered (``--mp-target`` / ``--mp-source`` frames, cached in bench/.data) and
  MediaPipe (tracking mode, as the extractor runs it) detects both dancers: what the demo's transfer sees.

Rows: ``edn`` (fit on raw keypoints, normalise, then smooth: EDN's order), ``edn, smooth first`` (the order the
extractor uses today), ``project`` (smooth, then normalise). The target is smoothed in every row, as the
extractor stores it. ``edn`` rows get the frame width, so the anchor is EDN's (frame centre).

Measures, on the normalised and smoothed source, against ground truth (H = the target's standing height):
- scale error: per frame, the least-squares scale from the ground-truth source skeleton to the output, against
  the right one (target / source standing height, at the depth where the frame was placed); median and 95th
  percentile of |s / s* - 1|, and the median frame-to-frame change of s / s* (jitter);
- floor error: where the source's floor contact lands against the target's floor (flat scenarios; in ``depth``
  the share of frames placed outside the target's floor range), in % of H;
- distribution distances (1-D Wasserstein, % of H) between output and target of lower-ankle y and body height;
- horizontal offset: median hip x of the output minus the target's, % of H;
- crop exits: share of frames with a keypoint (body, face or hands) outside the target's crop (the one the
  extractor makes from the target's keypoints), and share of keypoints outside it.

    .venv/bin/python bench/normalization.py                   # about 1 minute (10 s with --skip-mediapipe)
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from common import machine, report

from dancenow_utils.pose.extract import Crop
from dancenow_utils.pose.keypoints import Person, read_openpose_json
from dancenow_utils.pose.normalize import PoseNormalizer, body_height, hip_x
from dancenow_utils.pose.smoothing import smooth_sequence
from dancenow_utils.synthetic.character import SOURCE_STYLE, TARGET_STYLE, CharacterStyle, skeleton
from dancenow_utils.synthetic.dance import dance_trajectory
from dancenow_utils.synthetic.demo import DemoPaths, make_demo

SCENARIOS = ("clean", "noisy", "depth", "mediapipe")
ROWS = ("edn", "edn, raw fit", "edn, smooth first", "project")
DEPTH = {"target": (0.85, 1.0, 210), "source": (0.80, 1.05, 140)}  # depth factor range and period (frames)


def detect_clip(video: Path, n: int) -> list[Person | None]:
    """MediaPipe (tracking mode, as the extractor runs it) on the first ``n`` frames of a demo video."""
    from dancenow_utils.pose.mediapipe_backend import MediaPipeEstimator
    from dancenow_utils.video import read_frames

    est, out = MediaPipeEstimator(video=True), []
    for i, rgb in read_frames(video):
        if i >= n:
            break
        people = est(rgb)
        out.append(people[0] if len(people) == 1 else None)
    est.close()
    return out


def rendered_demo(size: int, n_target: int, n_source: int, seed: int) -> DemoPaths:
    """A small rendered demo under bench/.data (made once; remade when its size, frames or seed differ)."""
    paths = DemoPaths(Path(__file__).parent / ".data" / f"normalization_demo_{size}_{n_target}_{n_source}_{seed}")
    if not paths.manifest.exists():
        make_demo(paths.root, size, n_target, 1, n_source, seed, progress=False)
    return paths


def demo_people(style: CharacterStyle, n: int, seed: int, combos: str, size: int) -> list[Person]:
    """The skeletons ``make_demo`` writes for one clip (same trajectory and style), without rendering."""
    return [skeleton(style, params, size, size).person() for params in dance_trajectory(n, seed, combos)]


def read_clip(folder: Path) -> list[Person]:
    return [read_openpose_json(f)[0] for f in sorted(folder.glob("*_keypoints.json"))]


def depth_factors(n: int, lo: float, hi: float, period: int) -> np.ndarray:
    t = np.arange(n)
    return lo + (hi - lo) * (0.5 + 0.5 * np.cos(2 * np.pi * t / period))


def about(p: Person, k: float, cx: float, horizon: float) -> Person:
    """Scale a person by ``k`` about the vanishing point: the same dancer ``1 / k`` times as far away."""
    return p.transformed(k, ((1 - k) * cx, (1 - k) * horizon))


def jitter(people: list[Person], sigma: float, rng: np.random.Generator) -> list[Person]:
    out = []
    for p in people:
        q = p.copy()
        for a in q.arrays():
            if a is not None:
                a[:, :2] += rng.normal(0, sigma, (len(a), 2)).astype(np.float32)
        out.append(q)
    return out


def similarity(src: Person, out: Person) -> tuple[float, float]:
    """Least-squares scale and vertical offset mapping ``src``'s body onto ``out``'s (``out ~ s src + t``)."""
    ok = (src.body[:, 2] > 0) & (out.body[:, 2] > 0)
    g, o = src.body[ok, :2].astype(np.float64), out.body[ok, :2].astype(np.float64)
    gc, oc = g - g.mean(0), o - o.mean(0)
    s = float((gc * oc).sum() / (gc * gc).sum())
    return s, float(o[:, 1].mean() - s * g[:, 1].mean())


def wasserstein(a: np.ndarray, b: np.ndarray) -> float:
    q = np.linspace(0, 1, 201)
    return float(np.abs(np.quantile(a, q) - np.quantile(b, q)).mean())


def lower_ankle(p: Person) -> float:
    return float(max(p.body[11, 1], p.body[14, 1]))


def evaluate(out: list[Person | None], truth: list[Person], k_src: np.ndarray, target: list[Person | None], crop: Crop,
             geo: dict, depth: bool) -> dict:
    keep = [i for i, o in enumerate(out) if o is not None]  # frames where the detector found the source dancer
    out, truth, k_src = [out[i] for i in keep], [truth[i] for i in keep], k_src[keep]
    target = [p for p in target if p is not None]
    ht = geo["H_t"]
    scale_err, floor_err, outside_range, ratios = [], [], [], []
    for o, g, k in zip(out, truth, k_src):
        s, ty = similarity(g, o)
        floor_out = s * (geo["hor_s"] + (geo["ankle_s"] - geo["hor_s"]) * k) + ty
        if depth:  # the right size where the frame was placed
            h_here = ht * (floor_out - geo["hor_t"]) / (geo["ankle_t"] - geo["hor_t"])
            lo, hi = (geo["hor_t"] + (geo["ankle_t"] - geo["hor_t"]) * f for f in DEPTH["target"][:2])
            outside_range.append(not (lo - 0.02 * ht <= floor_out <= hi + 0.02 * ht))
        else:
            h_here = ht
            floor_err.append(abs(floor_out - geo["ankle_t"]) / ht)
        ratios.append(s * geo["H_s"] * k / h_here)
    ratios = np.array(ratios)
    scale_err = np.abs(ratios - 1)
    x0, y0, side = crop.x0, crop.y0, crop.side
    outside = [((pts < [x0, y0]) | (pts > [x0 + side, y0 + side])).any(axis=1) for pts in (p.all_points() for p in out)]
    med = lambda f, ppl: float(np.median([v for v in map(f, ppl) if v is not None]))  # noqa: E731
    res = {
        "scale_err_median_pct": 100 * float(np.median(scale_err)),
        "scale_err_p95_pct": 100 * float(np.percentile(scale_err, 95)),
        "scale_jitter_pct": 100 * float(np.median(np.abs(np.diff(ratios)))),
        "ankle_w1_pct": 100 * wasserstein(np.array([lower_ankle(p) for p in out]),
                                          np.array([lower_ankle(p) for p in target])) / ht,
        "height_w1_pct": 100 * wasserstein(np.array([body_height(p) or 0 for p in out]),
                                           np.array([body_height(p) or 0 for p in target])) / ht,
        "hip_x_offset_pct": 100 * (med(hip_x, out) - med(hip_x, target)) / ht,
        "crop_exit_frames_pct": 100 * float(np.mean([o.any() for o in outside])),
        "crop_exit_points_pct": 100 * float(np.mean(np.concatenate(outside))),
    }
    if depth:
        res["placed_outside_floor_range_pct"] = 100 * float(np.mean(outside_range))
    else:
        res["floor_err_median_pct"] = 100 * float(np.median(floor_err))
        res["floor_err_p95_pct"] = 100 * float(np.percentile(floor_err, 95))
    return {k: round(v, 2) for k, v in res.items()}


def run_row(row: str, raw: list[Person | None], target: list[Person | None], width: int,
            window: int) -> list[Person | None]:
    smoothed = smooth_sequence(raw, window=window)
    if row == "edn":
        return smooth_sequence(PoseNormalizer.fit(smoothed, target, "edn", width)(raw), window=window)
    if row == "edn, raw fit":
        return smooth_sequence(PoseNormalizer.fit(raw, target, "edn", width)(raw), window=window)
    method = "edn" if row.startswith("edn") else "project"
    return PoseNormalizer.fit(smoothed, target, method, width)(smoothed)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n-target", type=int, default=1000)
    ap.add_argument("--n-source", type=int, default=300)
    ap.add_argument("--size", type=int, default=256, help="frame size of the demo (make_demo's default: 256)")
    ap.add_argument("--seed", type=int, default=0, help="make_demo's seed")
    ap.add_argument("--noise", type=float, default=0.014, help="keypoint jitter, fraction of standing height")
    ap.add_argument("--repeats", type=int, default=3, help="noise draws averaged in the noisy scenarios")
    ap.add_argument("--window", type=int, default=7, help="smoothing window (the extractor's default: 7)")
    ap.add_argument("--skip-mediapipe", action="store_true",
                    help="skip the scenario that renders the demo and runs MediaPipe on it (about 40 s)")
    ap.add_argument("--mp-target", type=int, default=300)
    ap.add_argument("--mp-source", type=int, default=150)
    ap.add_argument("--demo", default="", help="read an existing demo's ground-truth keypoint JSON from this folder")
    args = ap.parse_args()
    size = args.size
    if args.demo:
        target_gt = read_clip(Path(args.demo) / "target_train_keypoints")[:args.n_target]
        source_gt = read_clip(Path(args.demo) / "source_dancer_keypoints")[:args.n_source]
    else:
        target_gt = demo_people(TARGET_STYLE, args.n_target, args.seed, "train", size)
        source_gt = demo_people(SOURCE_STYLE, args.n_source, args.seed + 2, "all", size)

    def geometry(style: CharacterStyle) -> dict:
        u = style.unit * size
        return {"H": style.height * size, "ankle": style.floor_y * size - style.ankle_h * u,
                "hor": style.horizon * size}

    gt, gs = geometry(TARGET_STYLE), geometry(SOURCE_STYLE)
    geo = {"H_t": gt["H"], "H_s": gs["H"], "ankle_t": gt["ankle"], "ankle_s": gs["ankle"], "hor_t": gt["hor"],
           "hor_s": gs["hor"]}
    results: dict = {"frames": {"target": len(target_gt), "source": len(source_gt)}, "noise": args.noise,
                     "repeats": args.repeats, "window": args.window, "right_scale_flat": round(gt["H"] / gs["H"], 4)}
    detected = None
    if not args.skip_mediapipe:
        paths = rendered_demo(size, args.mp_target, args.mp_source, args.seed)
        detected = (detect_clip(paths.video("target_train"), args.mp_target),
                    detect_clip(paths.video("source_dancer"), args.mp_source))
    for scenario in SCENARIOS:
        if scenario == "mediapipe" and detected is None:
            continue
        runs: dict[str, list[dict]] = {row: [] for row in ROWS}
        for rep in range(args.repeats if scenario in ("noisy", "depth") else 1):
            rng = np.random.default_rng(args.seed + rep)
            tgt, src = target_gt, source_gt
            k_src = np.ones(len(src))
            if scenario == "depth":
                k_tgt = depth_factors(len(tgt), *DEPTH["target"])
                k_src = depth_factors(len(src), *DEPTH["source"])
                tgt = [about(p, k, size / 2, gt["hor"]) for p, k in zip(tgt, k_tgt)]
                src = [about(p, k, size / 2, gs["hor"]) for p, k in zip(src, k_src)]
            truth = src
            if scenario == "mediapipe":
                tgt, src = detected
                truth, k_src = source_gt[:len(src)], k_src[:len(src)]
            elif scenario != "clean":
                tgt = jitter(tgt, args.noise * gt["H"], rng)
                src = jitter(src, args.noise * gs["H"], rng)
            target = smooth_sequence(tgt, window=args.window)  # as the target's extraction stores it
            crop = Crop.around(target, (size, size), size)
            results.setdefault("target_crop", {})[scenario] = [round(v, 1) for v in (crop.x0, crop.y0, crop.side)]
            for row in ROWS:
                out = run_row(row, src, target, size, args.window)
                runs[row].append(evaluate(out, truth, k_src, target, crop, geo, scenario == "depth"))
        results[scenario] = {row: {k: round(float(np.mean([r[k] for r in rs])), 2) for k in rs[0]}
                             for row, rs in runs.items()}
    report("normalization", {"machine": machine(), **results})


if __name__ == "__main__":
    main()
