"""Cross-validation (step 3): how well the model draws the target in poses it never saw.

On a held-out set with ground-truth frames we measure what the Everybody Dance Now paper measured, plus two
things users ask about:

- ``ssim``, ``psnr``: full frame; ``body_ssim``: on a box around the body keypoints
- ``pose_error_px``: mean distance between the input keypoints and keypoints re-detected on the generated frame,
  with ``detection_rate`` (how often a person is found on it at all)
- ``flicker``: mean absolute change between consecutive generated frames over the same for the real frames
  (1 = as steady as the real video)
- ``nn_*``: the same metrics for a nearest-neighbour baseline that returns the training frame whose pose is closest:
  the GAN should beat retrieval, or it has only memorised
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from skimage.metrics import peak_signal_noise_ratio, structural_similarity
from tqdm.auto import tqdm

from dancenow_utils.data import AlignedDataset
from dancenow_utils.io_utils import atomic_write_text, write_image
from dancenow_utils.pose.extract import people_in_image

METRIC_KEYS = ("ssim", "psnr", "body_ssim", "pose_error_px", "detection_rate", "flicker", "nn_ssim", "nn_psnr",
               "nn_body_ssim", "nn_pose_error_px", "n_samples")
BODY_JOINTS = list(range(19))  # BODY_25 without the feet points, which MediaPipe only approximates
MIN_CONF = 0.3


def ssim(a: np.ndarray, b: np.ndarray) -> float:
    """SSIM of two RGB uint8 images (1 for identical images)."""
    win = min(7, a.shape[0], a.shape[1])
    win -= 1 - win % 2
    return float(structural_similarity(a, b, channel_axis=2, data_range=255, win_size=max(3, win)))


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    """PSNR in dB (capped at 100 for identical images)."""
    if np.array_equal(a, b):
        return 100.0
    return float(peak_signal_noise_ratio(a, b, data_range=255))


def body_box(body: np.ndarray, shape: tuple[int, int], margin: float = 0.1) -> tuple[int, int, int, int]:
    """``(x0, y0, x1, y1)`` around the confident body keypoints plus a margin, clipped to the image."""
    pts = body[body[:, 2] > 0.05, :2]
    h, w = shape
    if len(pts) == 0:
        return 0, 0, w, h
    lo, hi = pts.min(0), pts.max(0)
    pad = margin * max(hi - lo)
    x0, y0 = np.floor(np.maximum(lo - pad, 0)).astype(int)
    x1, y1 = np.ceil(np.minimum(hi + pad, [w, h])).astype(int)
    return int(x0), int(y0), max(int(x1), int(x0) + 8), max(int(y1), int(y0) + 8)


def body_ssim(a: np.ndarray, b: np.ndarray, body: np.ndarray) -> float:
    x0, y0, x1, y1 = body_box(body, a.shape[:2])
    return ssim(a[y0:y1, x0:x1], b[y0:y1, x0:x1])


def face_ssim(a: np.ndarray, b: np.ndarray, box: tuple[int, int] | None, side: int) -> float | None:
    """SSIM on the face box (the face stage's crop), None without a face box."""
    if box is None:
        return None
    x, y = box
    return ssim(a[y: y + side, x: x + side], b[y: y + side, x: x + side])


def pose_error(expected: np.ndarray, found: np.ndarray | None, joints: list[int] = BODY_JOINTS) -> float | None:
    """Mean pixel distance over the joints confident in both; None when nothing was found."""
    if found is None:
        return None
    ok = (expected[joints, 2] > MIN_CONF) & (found[joints, 2] > MIN_CONF)
    if not ok.any():
        return None
    d = np.linalg.norm(expected[joints][ok, :2] - found[joints][ok, :2], axis=1)
    return float(d.mean())


def flicker(generated: list[np.ndarray], real: list[np.ndarray]) -> float:
    """Mean |frame_t+1 - frame_t| of the generated sequence divided by the same for the real one."""
    def motion(frames: list[np.ndarray]) -> float:
        return float(np.mean([np.abs(b.astype(np.float32) - a.astype(np.float32)).mean()
                              for a, b in zip(frames[:-1], frames[1:])])) if len(frames) > 1 else 0.0

    real_motion = motion(real)
    return motion(generated) / real_motion if real_motion > 0 else float("nan")


class PoseRedetector:
    """Re-detect the body on generated frames (MediaPipe, still images), upscaled for small frames."""

    def __init__(self, min_side: int = 256) -> None:
        from dancenow_utils.pose.mediapipe_backend import MediaPipeEstimator

        self.est = MediaPipeEstimator(face=False, hands=False, video=False, count_people=False)
        self.min_side = min_side

    def __call__(self, rgb: np.ndarray) -> np.ndarray | None:
        import cv2

        s = max(1.0, self.min_side / min(rgb.shape[:2]))
        img = cv2.resize(rgb, None, fx=s, fy=s, interpolation=cv2.INTER_CUBIC) if s > 1 else rgb
        people = self.est(img)
        if not people:
            return None
        body = people[0].body.copy()
        body[:, :2] /= s
        return body

    def close(self) -> None:
        self.est.close()


@dataclass
class NearestNeighbour:
    """Retrieval baseline: the index of the training pose closest to the query pose (mean joint distance)."""

    poses: np.ndarray  # (N, J, 3) training body keypoints in image pixels

    def query(self, body: np.ndarray) -> int:
        xy, ok = body[BODY_JOINTS, :2], body[BODY_JOINTS, 2] > MIN_CONF
        train_xy, train_ok = self.poses[:, BODY_JOINTS, :2], self.poses[:, BODY_JOINTS, 2] > MIN_CONF
        both = train_ok & ok[None]
        d = np.linalg.norm(train_xy - xy[None], axis=2)
        d = np.where(both, d, np.nan)
        with np.errstate(all="ignore"):
            score = np.nanmean(d, axis=1) + 50.0 * (1 - both.mean(axis=1))  # penalise missing joints
        return int(np.nanargmin(score))


def evaluate(name: str, dataroot: str | Path = "dataset_test", which_epoch: str = "latest",
             checkpoints_dir: str | Path = "checkpoints", max_samples: int = 0,
             train_dataroot: str | Path = "dataset", device: str = "auto", batch_size: int = 8,
             progress: bool = True) -> dict:
    """Compute the metrics (module docstring) and write ``checkpoints/<name>_test/``; returns the metrics."""
    from dancenow_utils.face import apply_face_stage, face_box, face_box_side, load_face_stage
    from dancenow_utils.inference import generate_frames, load_generator
    from dancenow_utils.stages import describe_stages

    G, cfg, dev = load_generator(name, which_epoch, checkpoints_dir, device)
    stages = describe_stages(name, checkpoints_dir)
    print(stages)
    test = AlignedDataset(dataroot, "train", cfg.width, cfg.height, max_samples, cache=True)
    names = test.names()
    test_people = people_in_image(Path(dataroot), "train", names, cfg.width, cfg.height)
    test_bodies = [p.body for p in test_people]
    train = AlignedDataset(train_dataroot, "train", cfg.width, cfg.height, cfg.max_dataset_size, cache=False)
    train_names = train.names()
    nn = NearestNeighbour(np.stack([p.body for p in people_in_image(Path(train_dataroot), "train", train_names,
                                                                    cfg.width, cfg.height)]))
    poses = [test.images(i)[0] for i in range(len(test))]
    reals = [test.images(i)[1] for i in range(len(test))]
    fakes = list(tqdm(generate_frames(G, poses, dev, batch_size, cfg.temporal), total=len(poses), desc="generating",
                      disable=not progress))
    face = load_face_stage(name, checkpoints_dir, dev)
    if face is not None:
        fakes = apply_face_stage(face, fakes, poses, test_people)
    side = face_box_side(cfg.width)
    redetect = PoseRedetector()
    out_dir = Path(checkpoints_dir) / f"{name}_test"
    rows = []
    nn_found_cache: dict[int, np.ndarray | None] = {}  # neighbouring held-out frames often share a neighbour
    for i in tqdm(range(len(test)), desc="scoring", disable=not progress):
        body = test_bodies[i]
        nn_idx = nn.query(body)
        nn_img = train.images(nn_idx)[1]
        if nn_idx not in nn_found_cache:
            nn_found_cache[nn_idx] = redetect(nn_img)
        found, nn_found = redetect(fakes[i]), nn_found_cache[nn_idx]
        rows.append({
            "name": names[i], "ssim": ssim(fakes[i], reals[i]), "psnr": psnr(fakes[i], reals[i]),
            "body_ssim": body_ssim(fakes[i], reals[i], body), "pose_error_px": pose_error(body, found),
            "detected": found is not None, "nn_name": train_names[nn_idx], "nn_ssim": ssim(nn_img, reals[i]),
            "nn_psnr": psnr(nn_img, reals[i]), "nn_body_ssim": body_ssim(nn_img, reals[i], body),
            "nn_pose_error_px": pose_error(body, nn_found),
            "face_ssim": face_ssim(fakes[i], reals[i], face_box(test_people[i], cfg.width, cfg.height, side), side),
        })
        for kind, img in (("input", poses[i]), ("generated", fakes[i]), ("real", reals[i]), ("nn", nn_img)):
            write_image(out_dir / "images" / f"{names[i]}_{kind}.png", img)
    redetect.close()

    def mean(key: str) -> float | None:
        vals = [r[key] for r in rows if r[key] is not None]
        return round(float(np.mean(vals)), 4) if vals else None

    metrics = {k: mean(k) for k in ("ssim", "psnr", "body_ssim", "pose_error_px", "nn_ssim", "nn_psnr",
                                    "nn_body_ssim", "nn_pose_error_px")}
    metrics["detection_rate"] = round(float(np.mean([r["detected"] for r in rows])), 4)
    metrics["flicker"] = round(flicker(fakes, reals), 4)
    metrics["n_samples"] = len(rows)
    metrics = {k: metrics[k] for k in METRIC_KEYS}
    metrics["face_ssim"] = mean("face_ssim")
    metrics["stages"] = stages
    metrics["gan_losses"] = gan_losses_on(name, which_epoch, checkpoints_dir, poses, reals, cfg, dev)
    metrics["checkpoint"] = f"{name}/{which_epoch}"
    _write_reports(out_dir, name, metrics, rows)
    return metrics


def gan_losses_on(name: str, which_epoch: str, checkpoints_dir: str | Path, poses: list[np.ndarray],
                  reals: list[np.ndarray], cfg, dev) -> dict[str, float]:
    """The training losses (by name, VGG excluded) on the held-out pairs, for comparison with the training log."""
    import dataclasses

    import torch

    from dancenow_utils.checkpoint import load_checkpoint
    from dancenow_utils.data import to_tensor
    from dancenow_utils.inference import checkpoint_path
    from dancenow_utils.models.pix2pixhd import Pix2PixHD

    ckpt = load_checkpoint(checkpoint_path(name, which_epoch, checkpoints_dir))
    if "D" not in ckpt:
        return {}
    model = Pix2PixHD(dataclasses.replace(cfg, vgg_loss="off"), dev)
    model.G.load_state_dict(ckpt["G"])
    model.D.load_state_dict(ckpt["D"])
    model.G.eval()
    model.D.eval()
    n_items = len(poses) - 1 if cfg.temporal else len(poses)
    totals: dict[str, float] = {}
    for i in range(0, n_items, 8):
        idx = list(range(i, min(i + 8, n_items)))

        def stack(images: list[np.ndarray], offset: int = 0, idx: list[int] = idx) -> torch.Tensor:
            return torch.stack([to_tensor(images[j + offset]) for j in idx]).to(dev)

        nxt = (stack(poses, 1), stack(reals, 1)) if cfg.temporal else (None, None)
        for k, v in model.evaluation_losses(stack(poses), stack(reals), *nxt).items():
            totals[k] = totals.get(k, 0.0) + v * len(idx)
    return {k: round(v / max(n_items, 1), 5) for k, v in totals.items() if k != "G_VGG"}


def _write_reports(out_dir: Path, name: str, metrics: dict, rows: list[dict]) -> None:
    from dancenow_utils.visualize import image_table_page

    out_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out_dir / "metrics.json", json.dumps(metrics, indent=2) + "\n")
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(rows[0]))
    writer.writeheader()
    writer.writerows(rows)
    atomic_write_text(out_dir / "per_sample.csv", buf.getvalue())
    page_rows = [(f"{r['name']}  SSIM {r['ssim']:.3f} (NN {r['nn_ssim']:.3f})",
                  [(k, f"images/{r['name']}_{k}.png") for k in ("input", "generated", "real", "nn")])
                 for r in rows]
    summary = ", ".join(f"{k} {v}" for k, v in metrics.items() if k in METRIC_KEYS)
    image_table_page(out_dir / "index.html", f"Cross-validation: {name}", page_rows, width=192,
                     note=f"input | generated | ground truth | nearest training neighbour. {summary}")
    plot_metric_distributions(rows, out_dir / "metrics.png")


def plot_metric_distributions(rows: list[dict], path: Path) -> None:
    """Histograms of the per-sample metrics, GAN against the nearest-neighbour baseline."""
    import matplotlib.pyplot as plt

    from dancenow_utils.visualize import save_figure

    fig, axes = plt.subplots(1, 3, figsize=(12, 3.4))
    panels = (("ssim", "SSIM"), ("body_ssim", "body SSIM"), ("pose_error_px", "pose error (px)"))
    for ax, (key, label) in zip(axes, panels):
        for prefix, color, who in (("", "tab:blue", "GAN"), ("nn_", "tab:orange", "nearest neighbour")):
            vals = [r[prefix + key] for r in rows if r[prefix + key] is not None]
            if vals:
                ax.hist(vals, bins=20, alpha=0.6, color=color, label=f"{who} (mean {np.mean(vals):.3f})")
        ax.set_title(label)
        ax.legend(fontsize=8)
    fig.tight_layout()
    save_figure(fig, path)
    plt.close(fig)
