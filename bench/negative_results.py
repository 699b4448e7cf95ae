"""The original project's three negative results, measured on the demo model (issue 14).

The hobby project that seeded dancenow reported three failures: the **star** on the target's shirt went missing,
**overlapping hands** (crossed arms, hands in front of each other) were not registered and smeared, and a **hand**
went missing. On the demo's held-out frames (ground truth known) this measures each one for the GAN and for
nearest-neighbour retrieval, and draws the worst examples side by side (real | GAN | retrieval):

- star: the yellow star's pixels on the chest, real against generated: their overlap (intersection over union)
  and the share of frames where the star is kept (IoU at least 0.5);
- overlapping hands: body SSIM per pose kind (:mod:`dancenow_utils.pose.kinds`), from notebook 03's rows;
- missing hand: skin pixels around each hand of the real frame, found again in the generated one (a hand counts as
  missing when fewer than a third of its pixels are there).

    .venv/bin/python bench/negative_results.py [--name demo --checkpoints checkpoints --test dataset_test]

It reads the model `make demo` trained and its held-out metrics (`checkpoints/demo_test/per_sample.csv`); the
figure goes to ``bench/figures/negative_results.png``.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import cv2
import numpy as np
from common import ROOT, machine, report

from dancenow_utils.data.hands import hand_centre
from dancenow_utils.evaluation.crossval import load_held_out, predict, read_per_sample
from dancenow_utils.evaluation.metrics import NearestNeighbour, by_pose_kind
from dancenow_utils.io_utils import write_image
from dancenow_utils.layout import RunLayout
from dancenow_utils.models.inference import load_generator
from dancenow_utils.pose.formats import joint
from dancenow_utils.pose.keypoints import Person
from dancenow_utils.pose.kinds import POSE_KINDS, pose_kind
from dancenow_utils.synthetic.character import TARGET_STYLE

STAR_RGB, SKIN_RGB = np.array(TARGET_STYLE.star, np.float32), np.array(TARGET_STYLE.skin, np.float32)
COLOUR_TOLERANCE = 60.0  # RGB distance under which a pixel counts as the star's or the skin's colour


def colour_mask(img: np.ndarray, rgb: np.ndarray) -> np.ndarray:
    return np.linalg.norm(img.astype(np.float32) - rgb, axis=2) < COLOUR_TOLERANCE


def chest_box(p: Person, w: int, h: int) -> tuple[int, int, int, int] | None:
    """The torso's box (shoulders to mid-hip), where the star is drawn."""
    b = p.body
    idx = [joint(n) for n in ("Neck", "RShoulder", "LShoulder", "MidHip")]
    if (b[idx, 2] <= 0.1).any():
        return None
    x0, x1 = int(b[idx, 0].min()), int(np.ceil(b[idx, 0].max()))
    y0, y1 = int(b[idx, 1].min()), int(np.ceil(b[idx, 1].max()))
    return max(0, x0), max(0, y0), min(w, x1 + 1), min(h, y1 + 1)


def hand_centres(p: Person) -> list[tuple[float, float, float]]:
    """(x, y, radius) of each hand seen: its centre (:func:`~dancenow_utils.data.hands.hand_centre`, as the
    training's hand weight finds it), radius from its keypoints' spread (at least 3 px; 3 px at a bare wrist)."""
    out = []
    for side in ("right", "left"):
        found = hand_centre(p, side)
        if found is not None:
            (x, y), spread = found
            out.append((float(x), float(y), 3.0 if spread is None else max(3.0, spread)))
    return out


def in_box(mask: np.ndarray, box) -> np.ndarray:
    x0, y0, x1, y1 = box
    return mask[y0:y1, x0:x1]


def iou(a: np.ndarray, b: np.ndarray) -> float:
    union = (a | b).sum()
    return float((a & b).sum() / union) if union else 1.0


def count_in_disc(mask: np.ndarray, x: float, y: float, r: float) -> int:
    yy, xx = np.mgrid[: mask.shape[0], : mask.shape[1]]
    return int((mask & ((xx - x) ** 2 + (yy - y) ** 2 <= r * r)).sum())


def crop_around(img: np.ndarray, x: float, y: float, half: int, scale: int = 3) -> np.ndarray:
    padded = cv2.copyMakeBorder(img, half, half, half, half, cv2.BORDER_CONSTANT, value=(255, 255, 255))
    cx, cy = int(round(x)) + half, int(round(y)) + half
    c = padded[cy - half: cy + half, cx - half: cx + half]
    return cv2.resize(c, None, fx=scale, fy=scale, interpolation=cv2.INTER_NEAREST)


def _share(values: list[float], kinds: list[str], kind: str, test) -> dict:
    sel = [v for v, k in zip(values, kinds) if k == kind]
    return {"n": len(sel), "share": round(float(np.mean([test(v) for v in sel])), 3) if sel else None}


def _labelled(tile: np.ndarray, key: str) -> np.ndarray:
    """A tile (real | GAN | retrieval) with a caption strip above it."""
    strip = np.full((16, tile.shape[1], 3), 255, np.uint8)
    text = {"star": "star", "hand": "hand", "overlap": "overlapping hands"}[key] + ": real | GAN | retrieval"
    cv2.putText(strip, text, (2, 12), cv2.FONT_HERSHEY_SIMPLEX, 0.38, (0, 0, 0), 1, cv2.LINE_AA)
    return np.concatenate([strip, tile], axis=0)


def measure(name: str, checkpoints: str | Path, test: str | Path, train: str | Path, figure: str | Path) -> dict:
    """The three negative results of run ``name`` (module docstring); the figure goes to ``figure``."""
    a = argparse.Namespace(name=name, checkpoints=str(checkpoints), test=str(test), train=str(train),
                           figure=str(figure))
    gen = load_generator(a.name, checkpoints_dir=a.checkpoints)
    data = load_held_out(gen, a.test, a.train)
    nn = NearestNeighbour(np.stack([p.body for p in data.train_people]))
    w, h = data.test.width, data.test.height
    star = {"gan": [], "nn": []}
    hands = {"gan": [], "nn": []}
    star_kind: list[str] = []
    hand_kind: list[str] = []
    examples = {"star": [], "hand": []}
    rows = read_per_sample(RunLayout(a.checkpoints, a.name).test_dir)  # notebook 03's rows, with their pose kinds
    names = data.test.names()
    # the figure's third row: the 4 crossed-arms / overlapping-hands frames with the lowest body SSIM
    overlap = sorted((r for r in rows if r.get("pose_kind") in ("crossed arms", "hands overlapping")),
                     key=lambda r: r["body_ssim"])[:4]
    overlap_fakes: dict[str, np.ndarray] = {}
    for i, fake in enumerate(predict(gen, data)):
        if names[i] in {r["name"] for r in overlap}:
            overlap_fakes[names[i]] = fake
        real = data.test.images(i)[1]
        p = data.people[i]
        retrieved = data.train.images(nn.query(p.body))[1]
        box = chest_box(p, w, h)
        if box is not None:
            real_star = in_box(colour_mask(real, STAR_RGB), box)
            if real_star.sum() >= 3:
                ratios = {k: iou(real_star, in_box(colour_mask(img, STAR_RGB), box))
                          for k, img in (("gan", fake), ("nn", retrieved))}
                for k, r in ratios.items():
                    star[k].append(r)
                star_kind.append(pose_kind(p))
                cx, cy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
                examples["star"].append((ratios["gan"], real, fake, retrieved, cx, cy))
        for x, y, r in hand_centres(p):
            n_real = count_in_disc(colour_mask(real, SKIN_RGB), x, y, r)
            if n_real >= 3:
                ratios = {k: count_in_disc(colour_mask(img, SKIN_RGB), x, y, r) / n_real
                          for k, img in (("gan", fake), ("nn", retrieved))}
                for k, v in ratios.items():
                    hands[k].append(v)
                hand_kind.append(pose_kind(p))
                examples["hand"].append((ratios["gan"], real, fake, retrieved, x, y))
    kinds = by_pose_kind(rows) if rows and "pose_kind" in rows[0] else {}
    result = {
        "machine": machine(), "frames": len(data.test),
        "star": {k: {"frames": len(v), "kept_share": round(float(np.mean(np.array(v) >= 0.5)), 3),
                     "median_iou": round(float(np.median(v)), 3)} for k, v in star.items()},
        "hand": {k: {"hands": len(v), "missing_share": round(float(np.mean(np.array(v) < 1 / 3)), 3),
                     "pixel_ratio": round(float(np.median(v)), 3)} for k, v in hands.items()},
        "by_pose_kind": kinds,
        # where the GAN loses them: the share kept / missing per pose kind (frames or hands of that kind)
        "star_kept_by_kind": {kind: _share(star["gan"], star_kind, kind, lambda v: v >= 0.5) for kind in POSE_KINDS},
        "hand_missing_by_kind": {kind: _share(hands["gan"], hand_kind, kind, lambda v: v < 1 / 3)
                                 for kind in POSE_KINDS},
    }
    # the figure: for the star and the hands the 4 worst GAN frames, then the overlap frames chosen above
    lines = []
    for key in ("star", "hand"):
        for _score, real, fake, ret, x, y in sorted(examples[key], key=lambda e: e[0])[:4]:
            lines.append((key, [crop_around(im, x, y, 16) for im in (real, fake, ret)]))
    if overlap:
        for r in overlap:
            i = names.index(r["name"])
            p = data.people[i]
            real = data.test.images(i)[1]
            ret = data.train.images(nn.query(p.body))[1]
            x, y = p.body[[joint("RWrist"), joint("LWrist")], :2].mean(axis=0)
            lines.append(("overlap", [crop_around(im, x, y, 16) for im in (real, overlap_fakes[r["name"]], ret)]))
    tiles = [np.concatenate([*row, np.full((row[0].shape[0], 6, 3), 255, np.uint8)], axis=1) for _, row in lines]
    tiles = [_labelled(t, key) for t, (key, _) in zip(tiles, lines)]
    if tiles:
        sheet = np.concatenate([np.concatenate(tiles[k: k + 4], axis=1) for k in range(0, len(tiles) - 3, 4)], axis=0)
        write_image(Path(a.figure), sheet)
        result["figure"] = str(Path(a.figure).relative_to(ROOT)) if Path(a.figure).is_relative_to(ROOT) else a.figure
        result["figure_rows"] = [lines[k][0] for k in range(0, len(lines) - 3, 4)]
    return result


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--name", default="demo")
    ap.add_argument("--checkpoints", default=str(ROOT / "checkpoints"))
    ap.add_argument("--test", default=str(ROOT / "dataset_test"))
    ap.add_argument("--train", default=str(ROOT / "dataset"))
    ap.add_argument("--figure", default=str(ROOT / "bench" / "figures" / "negative_results.png"))
    a = ap.parse_args()
    report("negative_results", measure(a.name, a.checkpoints, a.test, a.train, a.figure))


if __name__ == "__main__":
    main()
