"""Cross-validation (step 3): how well the model draws the target in poses it never saw.

On a held-out set with ground-truth frames we measure what the Everybody Dance Now paper measured, plus what users
ask about (definitions in :mod:`dancenow_utils.evaluation.metrics`): full-frame, body and face SSIM, PSNR, the pose
error of
keypoints re-detected on the generated frames, flicker, and the same for a nearest-neighbour retrieval baseline
(the GAN should beat retrieval, or it has only memorised). Three parts: :func:`predict` (the generator's frames,
streamed), :func:`score_sequence` (per-frame rows and the summary) and :func:`write_reports` (files and figures).
"""

from __future__ import annotations

import csv
import dataclasses
import io
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np
import torch
from tqdm.auto import tqdm

from dancenow_utils.checkpoint import load_checkpoint
from dancenow_utils.data.datasets import AlignedDataset
from dancenow_utils.data.labels import input_picture
from dancenow_utils.evaluation.metrics import (
    METRIC_KEYS,
    Motion,
    NearestNeighbour,
    face_ssim,
    frame_scores,
    summarize,
)
from dancenow_utils.evaluation.per_sample import read_per_sample  # noqa: F401 (its old home: notebooks and bench import it here)
from dancenow_utils.io_utils import atomic_write_text, reporting_write_errors, write_image, write_json
from dancenow_utils.layout import DatasetLayout, EvaluationLayout, RunLayout, checkpoint_tag
from dancenow_utils.models.inference import Generator, load_generator
from dancenow_utils.models.pix2pixhd import Pix2PixHD
from dancenow_utils.params import check_int
from dancenow_utils.pose.crop import Crops, people_in_image
from dancenow_utils.pose.face_box import face_box, face_box_side
from dancenow_utils.pose.keypoints import Person
from dancenow_utils.pose.kinds import pose_kind
from dancenow_utils.visualize import image_table_page, save_figure


class PoseRedetector:
    """Re-detect the body on generated frames (MediaPipe, still images), upscaled for small frames."""

    def __init__(self, min_side: int = 256) -> None:
        from dancenow_utils.pose.mediapipe_backend import MediaPipeEstimator

        self.est = MediaPipeEstimator(face=False, hands=False, video=False, count_people=False)
        self.min_side = min_side
        self._cache: dict[int, np.ndarray | None] = {}

    def __call__(self, rgb: np.ndarray, key: int | None = None) -> np.ndarray | None:
        """Body keypoints found on ``rgb`` (None: nobody); ``key`` caches the answer for a repeated image."""
        if key is not None and key in self._cache:
            return self._cache[key]
        s = max(1.0, self.min_side / min(rgb.shape[:2]))
        img = cv2.resize(rgb, None, fx=s, fy=s, interpolation=cv2.INTER_CUBIC) if s > 1 else rgb
        people = self.est(img)
        body = None
        if people:
            body = people[0].body.copy()
            body[:, :2] /= s
        if key is not None:
            self._cache[key] = body
        return body

    def close(self) -> None:
        self.est.close()


@dataclasses.dataclass
class HeldOut:
    """The held-out frames, their keypoints in image pixels, and the training set for the retrieval baseline."""

    test: AlignedDataset
    people: list[Person]
    train: AlignedDataset
    train_people: list[Person]


def load_held_out(gen: Generator, dataroot: str | Path, train_dataroot: str | Path, max_samples: int = 0) -> HeldOut:
    cfg = gen.cfg
    layout = DatasetLayout(dataroot, "train")
    gen.check_poses(layout)
    kinds = {"label_nc": cfg.label_nc, "instance_maps": cfg.instance_maps}
    test = AlignedDataset(dataroot, "train", cfg.width, cfg.height, max_samples, cache=False, **kinds)
    train = AlignedDataset(train_dataroot, "train", cfg.width, cfg.height, cfg.max_dataset_size, cache=False, **kinds)
    for data in (test, train):
        if gen.label_maps and not Crops.exist(data.layout):
            raise FileNotFoundError(
                f"{data.layout.keypoints}: cross-validation measures body SSIM, the pose error and the nearest-"
                "neighbour baseline from the frames' body keypoints, and this label-map dataset has none. Write "
                "OpenPose JSON and crop.json there (the demo's part maps have them: make_parts_dataset).")
    return HeldOut(test, people_in_image(layout, test.names(), cfg.width, cfg.height), train,
                   people_in_image(train.layout, train.names(), cfg.width, cfg.height))


def predict(gen: Generator, data: HeldOut, batch_size: int = 8) -> Iterator[np.ndarray]:
    """The generator's frame for every held-out pose, in order (streamed; the face stage applied if trained)."""
    poses = (data.test.images(i)[0] for i in range(len(data.test)))
    return gen.frames(poses, data.people, batch_size)


def score_sequence(fakes: Iterator[np.ndarray], data: HeldOut, out_dir: Path | None = None,
                   progress: bool = True) -> tuple[list[dict], dict]:
    """Per-frame rows (GAN and retrieval) and the summary metrics; sample images go to ``out_dir/images``."""
    cfg_w, cfg_h = data.test.width, data.test.height
    side = face_box_side(cfg_h)
    nn = NearestNeighbour(np.stack([p.body for p in data.train_people]))
    names, train_names = data.test.names(), data.train.names()
    redetect = PoseRedetector()
    rows: list[dict] = []
    fake_motion, real_motion = Motion(), Motion()
    try:
        for i, fake in enumerate(tqdm(fakes, total=len(data.test), desc="scoring", disable=not progress)):
            pose, real = data.test.images(i)
            body = data.people[i].body
            nn_idx = nn.query(body)
            nn_img = data.train.images(nn_idx)[1]
            found = redetect(fake)
            gan = frame_scores(fake, real, body, found)
            ret = frame_scores(nn_img, real, body, redetect(nn_img, key=nn_idx))
            rows.append({"name": names[i], **gan, "detected": found is not None, "nn_name": train_names[nn_idx],
                         **{f"nn_{k}": v for k, v in ret.items()},
                         "face_ssim": face_ssim(fake, real, face_box(data.people[i], cfg_w, cfg_h, side), side),
                         "pose_kind": pose_kind(data.people[i])})
            fake_motion.add(fake)
            real_motion.add(real)
            if out_dir is not None:
                for kind, img in (("input", input_picture(pose)), ("generated", fake), ("real", real),
                                  ("nn", nn_img)):
                    write_image(EvaluationLayout(out_dir).image(names[i], kind), img)
    finally:
        redetect.close()
    return rows, summarize(rows, fake_motion.mean, real_motion.mean)


def gan_losses_on(model: Pix2PixHD, data: HeldOut, batch_size: int = 8) -> dict[str, float]:
    """The training losses (by name, VGG excluded) on the held-out pairs, for comparison with the training log."""
    temporal = model.cfg.temporal
    n_items = len(data.test) - 1 if temporal else len(data.test)
    totals: dict[str, float] = {}
    for start in range(0, n_items, batch_size):
        idx = list(range(start, min(start + batch_size, n_items)))

        items = [{**data.test.tensors(j), **(data.test.tensors(j + 1, "_next") if temporal else {})} for j in idx]
        batch = {k: torch.stack([it[k] for it in items]).to(model.device) for k in items[0]}
        for k, v in model.evaluation_losses(batch).items():
            totals[k] = totals.get(k, 0.0) + float(v) * len(idx)
    return {k: round(v / max(n_items, 1), 5) for k, v in totals.items() if k != "G_VGG"}


def discriminator_model(gen: Generator, run: RunLayout, which_epoch: str | int) -> Pix2PixHD | None:
    """G and D of the run's full ``latest`` checkpoint (numbered checkpoints keep only the generator). G is the
    generator inference uses: with ``ema_decay`` its moving average, which D was not trained against, so these GAN
    losses can differ from the training log's."""
    if checkpoint_tag(which_epoch) != "latest" or not run.latest.exists():
        return None
    ckpt = load_checkpoint(run.latest)
    model = Pix2PixHD(dataclasses.replace(gen.cfg, vgg_loss="off"), gen.device, vgg=False)
    model.G.load_state_dict(gen.G.state_dict())
    model.D.load_state_dict(ckpt["D"])
    if gen.E is not None:
        model.nets["E"].load_state_dict(gen.E.state_dict())
    return model


def evaluate(name: str, dataroot: str | Path = "dataset_test", which_epoch: str | int = "latest",
             checkpoints_dir: str | Path = "checkpoints", max_samples: int = 0,
             train_dataroot: str | Path = "dataset", device: str = "auto", batch_size: int = 8,
             progress: bool = True) -> dict:
    """Compute the metrics (module docstring) and write ``checkpoints/<name>_test/``; returns the metrics."""
    max_samples = check_int("max_samples", max_samples, 0, " (0 = all held-out pairs)")
    batch_size = check_int("batch_size", batch_size, 1)
    gen = load_generator(name, which_epoch, checkpoints_dir, device)
    print(gen.stages)
    run = RunLayout(checkpoints_dir, name)
    data = load_held_out(gen, dataroot, train_dataroot, max_samples)
    rows, metrics = score_sequence(predict(gen, data, batch_size), data, run.test_dir, progress)
    metrics = {**{k: metrics[k] for k in METRIC_KEYS}, "face_ssim": metrics["face_ssim"], "stages": gen.stages,
               "by_pose_kind": metrics["by_pose_kind"]}
    model = discriminator_model(gen, run, which_epoch)
    metrics["gan_losses"] = gan_losses_on(model, data, batch_size) if model is not None else {}
    metrics["checkpoint"] = f"{name}/{checkpoint_tag(which_epoch)}"
    write_reports(run.test_dir, name, metrics, rows)
    return metrics


def write_reports(out_dir: Path, name: str, metrics: dict, rows: list[dict]) -> None:
    """``metrics.json``, ``per_sample.csv``, an HTML page of samples and ``metrics.png``."""
    out = EvaluationLayout(out_dir)
    with reporting_write_errors(out_dir):
        out_dir.mkdir(parents=True, exist_ok=True)
    write_json(out.metrics, metrics)
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(rows[0]))
    writer.writeheader()
    writer.writerows(rows)
    atomic_write_text(out.per_sample, buf.getvalue())
    page_rows = [(f"{r['name']}  SSIM {r['ssim']:.3f} (NN {r['nn_ssim']:.3f})",
                  [(k, out.image(r["name"], k).relative_to(out.dir).as_posix())
                   for k in ("input", "generated", "real", "nn")])
                 for r in rows]
    summary = ", ".join(f"{k} {v}" for k, v in metrics.items() if k in METRIC_KEYS)
    image_table_page(out.page, f"Cross-validation: {name}", page_rows, width=192,
                     note=f"input | generated | ground truth | nearest training neighbour. {summary}")
    plot_metric_distributions(rows, out.metrics_plot)


def plot_metric_distributions(rows: list[dict], path: Path) -> None:
    """Histograms of the per-sample metrics, GAN against the nearest-neighbour baseline."""
    import matplotlib.pyplot as plt

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
