"""A forensic detector: tell frames the generator made from real frames of the target.

Everybody Dance Now ships such a detector as a safeguard against misuse. This one is a small convolutional
classifier (five conv layers, global average pooling, one logit) trained on random 64 px windows of real target
frames (``dataset/train_B``) against the frames the trained generator draws for the same poses; optionally it
also sees the pose image (6 input channels), so it can check that the frame matches its skeleton. Half the
training windows of both classes are JPEG-compressed, so that compression is not what it learns (shared videos
are compressed). A frame is scored by averaging the logits of overlapping windows covering it. Evaluated on
frames it never saw (the held-out clip: its real frames against frames generated from its poses), it reports
accuracy and ROC AUC; any frame, image folder or video can be scored.

It runs on a CPU in seconds (a few hundred steps, Adam with a cosine-decaying rate) and is deterministic for a
seed. What it learns is specific to one generator and one target: retrain it for another model.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from dancenow_utils.checkpoint import load_weights_file
from dancenow_utils.data.datasets import load_resized, pair_files, resized
from dancenow_utils.evaluation.stats import roc_auc
from dancenow_utils.io_utils import IMAGE_EXTENSIONS, atomic_path, atomic_write_text, list_images, read_image
from dancenow_utils.layout import DatasetLayout, RunLayout
from dancenow_utils.models.inference import Generator, load_generator
from dancenow_utils.params import check_int
from dancenow_utils.pose.crop import Crops, people_in_image
from dancenow_utils.pose.keypoints import Person
from dancenow_utils.runtime.device import resolve_device
from dancenow_utils.video import read_frames
from dancenow_utils.visualize import save_figure

log = logging.getLogger("dancenow")
FORMAT = 1
KIND = "dancenow-forensic-detector"


# ---------------------------------------------------------------------------------------------------- network
class DetectorNet(nn.Module):
    """Conv layers (stride 1, then three stride-2) with LeakyReLU, global average pooling and one logit.

    No normalisation layers: scores do not depend on the batch, and frames of any size can be scored.
    """

    def __init__(self, in_channels: int = 3, width: int = 16) -> None:
        super().__init__()
        w = width
        chans = [(in_channels, w, 1), (w, w, 2), (w, 2 * w, 2), (2 * w, 4 * w, 2), (4 * w, 4 * w, 1)]
        layers: list[nn.Module] = []
        for cin, cout, stride in chans:
            layers += [nn.Conv2d(cin, cout, 3, stride, 1), nn.LeakyReLU(0.2)]
        self.features = nn.Sequential(*layers)
        self.head = nn.Linear(4 * w, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x).mean(dim=(2, 3))).squeeze(1)


def _to_input(frames: Sequence[np.ndarray], poses: Sequence[np.ndarray] | None) -> torch.Tensor:
    """uint8 HxWx3 frames (and pose images) -> float N x C x H x W in [-1, 1]."""
    arr = np.stack([np.ascontiguousarray(f) for f in frames])
    if poses is not None:
        arr = np.concatenate([arr, np.stack([np.ascontiguousarray(p) for p in poses])], axis=3)
    return torch.from_numpy(arr).permute(0, 3, 1, 2).float().div_(127.5).sub_(1.0)


def _check_frames(frames: Sequence[np.ndarray], poses: Sequence[np.ndarray] | None, what: str) -> None:
    if len(frames) == 0:
        raise ValueError(f"{what}: no frames")
    for k, f in enumerate(frames):
        if f.ndim != 3 or f.shape[2] != 3 or f.dtype != np.uint8:
            raise ValueError(f"{what}[{k}]: expected an RGB uint8 image (H, W, 3), got {f.dtype} {f.shape}")
    if poses is not None:
        if len(poses) != len(frames):
            raise ValueError(f"{what}: {len(frames)} frames but {len(poses)} pose images")
        for k, (f, p) in enumerate(zip(frames, poses)):
            if p.shape != f.shape:
                raise ValueError(f"{what}[{k}]: pose image {p.shape} and frame {f.shape} differ in size")


# --------------------------------------------------------------------------------------------------- detector
@dataclass
class Detector:
    """A trained detector: :meth:`score` gives each frame's probability of being generated."""

    net: DetectorNet
    meta: dict = field(default_factory=dict)  # in_channels, width, crop, frame_size, seed, steps, ...
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))

    @property
    def uses_pose(self) -> bool:
        return self.meta.get("in_channels", 3) == 6

    @torch.no_grad()
    def score(self, frames: Sequence[np.ndarray], poses: Sequence[np.ndarray] | None = None,
              batch_size: int = 16) -> np.ndarray:
        """Probability that each RGB uint8 frame was generated (pose images required for a pose+frame
        detector). Each frame is cut into windows of the training crop size (half overlapping, covering the
        frame) and the windows' logits are averaged: the network sees what it was trained on, so 0.5 stays
        a meaningful threshold."""
        frames = list(frames)
        if self.uses_pose and poses is None:
            raise ValueError("this detector was trained on pose + frame: pass the pose images too (poses=...)")
        poses = list(poses) if (poses is not None and self.uses_pose) else None
        _check_frames(frames, poses, "frames")
        self.net.eval()
        out = np.empty(len(frames), np.float64)
        k = 0
        while k < len(frames):  # batch consecutive frames of one size
            j = k + 1
            while j < len(frames) and j - k < batch_size and frames[j].shape == frames[k].shape:
                j += 1
            x = _to_input(frames[k:j], None if poses is None else poses[k:j]).to(self.device)
            out[k:j] = torch.sigmoid(self._window_logits(x)).double().cpu().numpy()
            k = j
        return out

    def _window_logits(self, x: torch.Tensor) -> torch.Tensor:
        crop = self.meta.get("crop", 0)
        h, w = x.shape[2:]
        if not crop or (h <= crop and w <= crop):
            return self.net(x)
        ys, xs = _window_starts(h, crop), _window_starts(w, crop)
        logits = [self.net(x[:, :, y: y + crop, x0: x0 + crop]) for y in ys for x0 in xs]
        return torch.stack(logits).mean(0)

    def save(self, path: str | Path) -> None:
        """``torch.save`` to a temp file, then rename (a crash keeps the previous file); tensors and plain types
        only, so :meth:`load` works with ``weights_only=True``."""
        state = {k: v.detach().cpu() for k, v in self.net.state_dict().items()}
        with atomic_path(path) as tmp:
            torch.save({"format": FORMAT, "kind": KIND, "meta": self.meta, "state": state}, tmp)

    @classmethod
    def load(cls, path: str | Path, device: str | torch.device = "cpu") -> Detector:
        path = Path(path)
        if not path.exists():
            raise FileNotFoundError(f"{path}: no such detector file; train one with train_detector or "
                                    "forensic_check first")
        ckpt = load_weights_file(path, "a dancenow forensic detector", "Delete it and train it again.")
        if not isinstance(ckpt, dict) or ckpt.get("kind") != KIND:
            raise ValueError(f"{path}: not a dancenow forensic detector (a generator checkpoint?)")
        meta = ckpt["meta"]
        net = DetectorNet(meta["in_channels"], meta["width"])
        net.load_state_dict(ckpt["state"])
        dev = torch.device(device)
        return cls(net.to(dev).eval(), meta, dev)


def _window_starts(length: int, crop: int) -> list[int]:
    """Start positions of ``crop``-long windows, half overlapping, the last one flush with the end."""
    if length <= crop:
        return [0]
    starts = list(range(0, length - crop, max(1, crop // 2)))
    return starts + [length - crop]


def _random_crops(frames: list[np.ndarray], poses: list[np.ndarray] | None, idx: np.ndarray, crop: int,
                  rng: np.random.Generator, compress: float = 0.0) -> tuple[list[np.ndarray], list[np.ndarray] | None]:
    """A random ``crop`` x ``crop`` window of each chosen frame (same window in its pose image), randomly
    mirrored; with probability ``compress`` the frame window is JPEG-compressed at a random quality (60-95)."""
    out_f, out_p = [], [] if poses is not None else None
    for i in idx:
        f = frames[i]
        y = int(rng.integers(0, f.shape[0] - crop + 1))
        x = int(rng.integers(0, f.shape[1] - crop + 1))
        flip = bool(rng.integers(0, 2))
        views = [f] if poses is None else [f, poses[i]]
        cut = [v[y: y + crop, x: x + crop] for v in views]
        if flip:
            cut = [c[:, ::-1] for c in cut]
        if compress and rng.random() < compress:
            q = int(rng.integers(60, 96))
            ok, buf = cv2.imencode(".jpg", np.ascontiguousarray(cut[0]), [cv2.IMWRITE_JPEG_QUALITY, q])
            if ok:  # OpenCV takes the array as BGR and decodes it back the same way: channels keep their order
                cut[0] = cv2.imdecode(buf, cv2.IMREAD_UNCHANGED)
        out_f.append(cut[0])
        if out_p is not None:
            out_p.append(cut[1])
    return out_f, out_p


def train_detector(real_frames: Sequence[np.ndarray], fake_frames: Sequence[np.ndarray],
                   real_poses: Sequence[np.ndarray] | None = None, fake_poses: Sequence[np.ndarray] | None = None,
                   crop: int = 64, steps: int = 300, batch_size: int = 32, lr: float = 1e-3, width: int = 16,
                   compress: float = 0.5, seed: int = 0, device: str | torch.device = "cpu",
                   progress: bool = True) -> Detector:
    """Train a detector on real frames (label 0) against generated frames (label 1).

    Each step sees ``batch_size`` random ``crop``-pixel windows, half real, half generated, a share ``compress``
    of them JPEG-compressed. With pose images for both sets the detector takes pose + frame (6 channels). The
    learning rate decays from ``lr`` to 0 along a cosine. The same ``seed`` gives the same detector.
    """
    real, fake = list(real_frames), list(fake_frames)
    with_pose = real_poses is not None or fake_poses is not None
    if with_pose and (real_poses is None or fake_poses is None):
        raise ValueError("give pose images for both real and generated frames, or for neither")
    rp, fp = (list(real_poses), list(fake_poses)) if with_pose else (None, None)
    _check_frames(real, rp, "real_frames")
    _check_frames(fake, fp, "fake_frames")
    crop = min([crop] + [min(f.shape[:2]) for f in real + fake])
    dev = torch.device(device)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        net = DetectorNet(6 if with_pose else 3, width).to(dev)
    opt = torch.optim.Adam(net.parameters(), lr=lr, betas=(0.5, 0.999))
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda i: 0.5 * (1 + math.cos(math.pi * i / max(steps, 1))))
    loss_fn = nn.BCEWithLogitsLoss()
    rng = np.random.default_rng(seed)
    half = max(1, batch_size // 2)
    labels = torch.cat([torch.zeros(half), torch.ones(half)]).to(dev)
    net.train()
    recent: list[float] = []
    bar = tqdm(range(steps), desc="training the forensic detector", disable=not progress)
    for _ in bar:
        r_f, r_p = _random_crops(real, rp, rng.integers(0, len(real), half), crop, rng, compress)
        f_f, f_p = _random_crops(fake, fp, rng.integers(0, len(fake), half), crop, rng, compress)
        x = _to_input(r_f + f_f, None if rp is None else r_p + f_p).to(dev)
        loss = loss_fn(net(x), labels)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        recent = (recent + [float(loss.detach())])[-20:]
        bar.set_postfix(loss=f"{np.mean(recent):.3f}")
    net.eval()
    meta = {"in_channels": 6 if with_pose else 3, "width": width, "crop": crop, "steps": steps, "compress": compress,
            "batch_size": batch_size, "lr": lr, "seed": seed, "n_real": len(real), "n_fake": len(fake),
            "frame_size": list(real[0].shape[:2]), "final_loss": round(float(np.mean(recent)), 4) if recent else None}
    log.info(json.dumps({"event": "forensic_detector_trained", **meta}))
    return Detector(net, meta, dev)


def evaluate_detector(detector: Detector, real: Sequence[np.ndarray], fake: Sequence[np.ndarray],
                      real_poses: Sequence[np.ndarray] | None = None, fake_poses: Sequence[np.ndarray] | None = None,
                      threshold: float = 0.5) -> dict:
    """Accuracy (at ``threshold``) and ROC AUC of ``detector`` on real (negative) and generated (positive)
    frames, with the mean score of each class; ``n`` is the number of frames scored."""
    return detection_metrics(detector.score(real, real_poses), detector.score(fake, fake_poses), threshold)


def detection_metrics(s_real: np.ndarray, s_fake: np.ndarray, threshold: float = 0.5) -> dict:
    """Accuracy, ROC AUC and mean scores from the scores of real (negative) and generated (positive) frames."""
    scores = np.concatenate([s_real, s_fake])
    labels = np.concatenate([np.zeros(len(s_real)), np.ones(len(s_fake))])
    auc = roc_auc(labels, scores)
    return {"accuracy": round(float(((scores > threshold) == labels).mean()), 4),
            "auc": None if math.isnan(auc) else round(auc, 4), "n": len(scores), "n_real": len(s_real),
            "n_fake": len(s_fake), "threshold": threshold, "mean_score_real": round(float(s_real.mean()), 4),
            "mean_score_fake": round(float(s_fake.mean()), 4)}


def score_video(detector: Detector, path: str | Path, frame_step: int = 1, max_frames: int = 0,
                batch_size: int = 16, progress: bool = True) -> np.ndarray:
    """Probability that each frame of a video (or each image of a folder) was generated.

    Frames of another size than the detector was trained on are resized to that size first: the detector
    learned the texture at one scale. Needs a frame-only detector (a video carries no pose images).
    """
    if detector.uses_pose:
        raise ValueError("this detector needs pose images beside each frame; use Detector.score(frames, poses)")
    path = Path(path)
    if path.is_dir():
        files = list_images(path)[::frame_step]
        files = files[:max_frames] if max_frames else files
        if not files:
            raise ValueError(f"{path}: no images ({', '.join(IMAGE_EXTENSIONS)})")
        frames = (read_image(f) for f in files)
    elif path.exists():
        frames = (rgb for _, rgb in read_frames(path, frame_step, max_frames))
    else:
        raise FileNotFoundError(f"{path}: no such video or image folder")
    h, w = detector.meta.get("frame_size", (0, 0))
    scores: list[np.ndarray] = []
    batch: list[np.ndarray] = []
    for rgb in tqdm(frames, desc="scoring frames", disable=not progress):
        batch.append(resized(rgb, w, h) if h else rgb)
        if len(batch) == batch_size:
            scores.append(detector.score(batch))
            batch = []
    if batch:
        scores.append(detector.score(batch))
    if not scores:
        raise ValueError(f"{path}: no frames could be read")
    return np.concatenate(scores)


# ------------------------------------------------------------------------------- generated frames, end to end
def generate_for_poses(name: str, pose_images: Sequence[np.ndarray | str | Path],
                       checkpoints_dir: str | Path = "checkpoints", device: str = "auto",
                       which_epoch: str | int = "latest", people: Sequence[Person | None] | None = None,
                       batch_size: int = 8) -> list[np.ndarray]:
    """The trained generator's frame for each pose image (arrays or files, resized to the generator's size), as
    the pipeline draws it: with ``people`` (the poses' keypoints in those images' pixels) the run's face stage, if
    it has one, corrects the faces."""
    return frames_for_poses(load_generator(name, which_epoch, checkpoints_dir, device), pose_images, people,
                            batch_size)


def frames_for_poses(gen: Generator, pose_images: Sequence[np.ndarray | str | Path],
                     people: Sequence[Person | None] | None = None, batch_size: int = 8) -> list[np.ndarray]:
    """:func:`generate_for_poses` with a generator already loaded: the one place this module runs it."""
    if gen.label_maps:  # label maps (and their instance maps) are read from files, at the generator's size
        return list(gen.frames(gen.read_inputs([Path(p) for p in pose_images]), people, batch_size))
    return list(gen.frames(gen.read_poses(pose_images), people, batch_size))


def _pairs(dataroot: str | Path, max_items: int) -> tuple[list[str], list[Path], list[Path]]:
    """Names, pose files and frame files of ``{dataroot}/train_A|B``, evenly subsampled to ``max_items``."""
    pairs = pair_files(dataroot, "train")
    if max_items and len(pairs) > max_items:
        pairs = [pairs[int(i)] for i in np.linspace(0, len(pairs) - 1, max_items).round()]
    return [a.stem for a, _ in pairs], [a for a, _ in pairs], [b for _, b in pairs]


@dataclass
class ForensicsResult:
    detector: Detector
    metrics: dict
    detector_path: Path
    metrics_path: Path
    figure_path: Path


def forensic_check(name: str, dataroot: str | Path = "dataset", test_dataroot: str | Path = "dataset_test",
                   checkpoints_dir: str | Path = "checkpoints", out_dir: str | Path | None = None,
                   with_pose: bool = False, max_train: int = 400, max_test: int = 0, steps: int = 300,
                   seed: int = 0, device: str = "auto", progress: bool = True) -> ForensicsResult:
    """Train a detector on ``dataroot``'s real frames against the generator's frames for the same poses, score
    it on ``test_dataroot`` (real held-out frames against frames generated from their poses), and write
    ``forensic_detector.pth``, ``forensics.json`` and ``forensics.png`` into ``out_dir``
    (default ``checkpoints/<name>_test``)."""
    steps = check_int("steps", steps, 1, " (training steps of the detector)")
    max_train, max_test = check_int("max_train", max_train, 0), check_int("max_test", max_test, 0)
    out = Path(out_dir) if out_dir else RunLayout(checkpoints_dir, name).test_dir
    gen = load_generator(name, "latest", checkpoints_dir, device)  # read once for both sets
    sets = {}
    for split, root, cap in (("train", dataroot, max_train), ("heldout", test_dataroot, max_test)):
        names, a_files, b_files = _pairs(root, cap)
        layout = DatasetLayout(root, "train")
        # keypoints in the generator's pixels, for the face stage
        people = people_in_image(layout, names, *gen.size) if Crops.exist(layout) else None
        fakes = frames_for_poses(gen, a_files, people)
        h, w = fakes[0].shape[:2]
        reals = [load_resized(f, w, h) for f in b_files]
        poses = [load_resized(f, w, h) for f in a_files] if with_pose else None
        sets[split] = (names, reals, fakes, poses)
    _, reals, fakes, poses = sets["train"]
    det = train_detector(reals, fakes, poses, poses, steps=steps, seed=seed,
                         device=resolve_device(device), progress=progress)
    metrics = {"checkpoint": name, "with_pose": with_pose,
               "train": evaluate_detector(det, reals, fakes, poses, poses)}
    _, t_reals, t_fakes, t_poses = sets["heldout"]
    s_real, s_fake = det.score(t_reals, t_poses), det.score(t_fakes, t_poses)
    metrics["heldout"] = detection_metrics(s_real, s_fake)
    metrics["detector"] = det.meta
    out.mkdir(parents=True, exist_ok=True)
    det.save(out / "forensic_detector.pth")
    atomic_write_text(out / "forensics.json", json.dumps(metrics, indent=2) + "\n")
    plot_scores(s_real, s_fake, out / "forensics.png",
                f"held-out frames: accuracy {metrics['heldout']['accuracy']:.3f}, "
                f"ROC AUC {metrics['heldout']['auc']}")
    return ForensicsResult(det, metrics, out / "forensic_detector.pth", out / "forensics.json", out / "forensics.png")


def plot_scores(real_scores: np.ndarray, fake_scores: np.ndarray, path: str | Path, title: str = "") -> None:
    """Histograms of the detector's scores on real and generated frames."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.5, 3.2))
    bins = np.linspace(0, 1, 26)
    ax.hist(real_scores, bins=bins, alpha=0.6, color="tab:green", label=f"real ({len(real_scores)})")
    ax.hist(fake_scores, bins=bins, alpha=0.6, color="tab:red", label=f"generated ({len(fake_scores)})")
    ax.set_xlabel("detector score: probability generated")
    ax.set_ylabel("frames")
    ax.set_title(title or "forensic detector on held-out frames", fontsize=10)
    ax.legend(fontsize=8)
    fig.tight_layout()
    save_figure(fig, path)
    plt.close(fig)
