"""The face GAN stage (Everybody Dance Now, section 3.4): sharpen the generated face with a residual.

A square box around the face keypoints (128 px at 512 px output, scaled with the output size) is cut from the
pose image and from the main generator's frame. A small generator takes both crops and predicts a residual that
is added to the generated face; its own discriminator judges (face pose, face). The main generator stays frozen.
At inference the corrected face is pasted back: pixels outside the box are untouched.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from dancenow_utils.checkpoint import load_checkpoint, save_checkpoint
from dancenow_utils.data import AlignedDataset, to_image, to_tensor
from dancenow_utils.io_utils import write_image
from dancenow_utils.models.losses import feature_matching_loss, gan_loss
from dancenow_utils.models.networks import GlobalGenerator, MultiscaleDiscriminator, init_weights
from dancenow_utils.pose.formats import joint
from dancenow_utils.pose.keypoints import Person

HEAD_JOINTS = [joint(n) for n in ("Nose", "REye", "LEye", "REar", "LEar")]


def face_box_side(width: int) -> int:
    """128 px at 512 px output, scaled with the output width (even, at least 16)."""
    side = max(16, int(round(128 * width / 512)))
    return side + side % 2


def face_box(person: Person, width: int, height: int, side: int, min_conf: float = 0.05) -> tuple[int, int] | None:
    """Top-left corner of the face box: centred on the face keypoints (or the head joints when the face points are
    missing) and shifted to stay inside the image. None when no head point is visible."""
    pts = np.zeros((0, 2), np.float32)
    if person.face is not None:
        pts = person.face[person.face[:, 2] > min_conf, :2]
    if len(pts) < 5:
        head = person.body[HEAD_JOINTS]
        pts = head[head[:, 2] > min_conf, :2]
    if len(pts) == 0:
        return None
    cx, cy = pts.mean(axis=0)
    x0 = int(np.clip(round(cx - side / 2), 0, max(0, width - side)))
    y0 = int(np.clip(round(cy - side / 2), 0, max(0, height - side)))
    return x0, y0


def crop(t: torch.Tensor, boxes: list[tuple[int, int]], side: int) -> torch.Tensor:
    """Crop each image of a batch ``(N, C, H, W)`` at its box."""
    return torch.stack([img[:, y: y + side, x: x + side] for img, (x, y) in zip(t, boxes)])


def paste(frame: np.ndarray, face: np.ndarray, box: tuple[int, int]) -> np.ndarray:
    """A copy of ``frame`` with ``face`` pasted at ``box``; every pixel outside the box is unchanged."""
    out = frame.copy()
    x, y = box
    out[y: y + face.shape[0], x: x + face.shape[1]] = face
    return out


@dataclass
class FaceConfig:
    side: int
    ngf: int = 32
    n_downsampling: int = 2
    n_blocks: int = 3
    ndf: int = 32
    n_layers_D: int = 3
    lambda_feat: float = 10.0
    lr: float = 2e-4


class FaceGAN:
    """Residual face generator and face discriminator."""

    def __init__(self, cfg: FaceConfig, device: torch.device) -> None:
        self.cfg, self.device = cfg, device
        self.G = GlobalGenerator(6, 3, cfg.ngf, cfg.n_downsampling, cfg.n_blocks).to(device)
        self.D = MultiscaleDiscriminator(6, cfg.ndf, cfg.n_layers_D, num_D=1).to(device)
        init_weights(self.G)
        init_weights(self.D)
        self.opt_G = torch.optim.Adam(self.G.parameters(), lr=cfg.lr, betas=(0.5, 0.999))
        self.opt_D = torch.optim.Adam(self.D.parameters(), lr=cfg.lr, betas=(0.5, 0.999))

    def correct(self, pose: torch.Tensor, face: torch.Tensor) -> torch.Tensor:
        """The generated face plus the predicted residual."""
        return (face + self.G(torch.cat([pose, face], 1))).clamp(-1, 1)

    def train_step(self, pose: torch.Tensor, face: torch.Tensor, real: torch.Tensor) -> dict[str, float]:
        fixed = self.correct(pose, face)
        pred_fake = self.D(torch.cat([pose, fixed], 1))
        with torch.no_grad():
            pred_real = self.D(torch.cat([pose, real], 1))
        g_gan = gan_loss(pred_fake, True)
        g_feat = feature_matching_loss(pred_fake, pred_real, self.cfg.n_layers_D, self.cfg.lambda_feat)
        self.opt_G.zero_grad(set_to_none=True)
        (g_gan + g_feat).backward()
        self.opt_G.step()
        d_real = gan_loss(self.D(torch.cat([pose, real], 1)), True)
        d_fake = gan_loss(self.D(torch.cat([pose, fixed.detach()], 1)), False)
        self.opt_D.zero_grad(set_to_none=True)
        ((d_real + d_fake) * 0.5).backward()
        self.opt_D.step()
        values = {"F_GAN": g_gan, "F_GAN_Feat": g_feat, "F_D_real": d_real, "F_D_fake": d_fake}
        for k, v in values.items():
            if not torch.isfinite(v):
                raise FloatingPointError(
                    f"face stage: the {k} loss is {float(v.detach())}; lower the face lr and retry")
        return {k: float(v.detach()) for k, v in values.items()}

    def state(self) -> dict:
        return {"G": self.G.state_dict(), "D": self.D.state_dict(), "opt_G": self.opt_G.state_dict(),
                "opt_D": self.opt_D.state_dict(), "face_config": asdict(self.cfg)}


def face_dir(checkpoints_dir: str | Path, name: str) -> Path:
    return Path(checkpoints_dir) / name / "face"


class FaceTrainer:
    """Trains the face stage of ``checkpoints/<name>`` (whose generator stays frozen) into ``<name>/face/``."""

    def __init__(self, dataroot: str | Path, name: str, checkpoints_dir: str | Path = "checkpoints",
                 which_epoch: str = "latest", batch_size: int = 4, seed: int = 0, device: str = "auto",
                 progress: bool = True) -> None:
        from dancenow_utils.inference import load_generator
        from dancenow_utils.pose.extract import people_in_image

        self.main_G, self.main_cfg, self.device = load_generator(name, which_epoch, checkpoints_dir, device)
        for p in self.main_G.parameters():
            p.requires_grad_(False)
        cfg = self.main_cfg
        torch.manual_seed(seed)
        self.dataset = AlignedDataset(dataroot, "train", cfg.width, cfg.height, cfg.max_dataset_size)
        side = face_box_side(cfg.width)
        people = people_in_image(dataroot, "train", self.dataset.names(), cfg.width, cfg.height)
        boxes = [face_box(p, cfg.width, cfg.height, side) for p in people]
        self.items = [(i, b) for i, b in enumerate(boxes) if b is not None]
        if not self.items:
            raise ValueError(f"{dataroot}: no frame has face or head keypoints; the face stage needs them")
        self.face = FaceGAN(FaceConfig(side), self.device)
        self.dir = face_dir(checkpoints_dir, name)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.batch_size, self.seed, self.progress, self.name = batch_size, seed, progress, name
        self.iteration = 0

    @torch.no_grad()
    def _main_output(self, A: torch.Tensor) -> torch.Tensor:
        if self.main_cfg.temporal:  # each training frame generated as a first frame
            A = torch.cat([A, torch.zeros_like(A)], 1)
        return self.main_G(A)

    def batch(self, idx: list[int]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Face crops of the pose, the main generator's frame and the real frame."""
        items = [self.items[i] for i in idx]
        A = torch.stack([self.dataset[i]["A"] for i, _ in items]).to(self.device)
        B = torch.stack([self.dataset[i]["B"] for i, _ in items]).to(self.device)
        boxes = [b for _, b in items]
        side = self.face.cfg.side
        return crop(A, boxes, side), crop(self._main_output(A), boxes, side), crop(B, boxes, side)

    def train(self, epochs: int = 2, max_seconds: float | None = None) -> dict[str, float]:
        """Train for ``epochs`` over the face crops (or ``max_seconds``); writes ``face/latest.pth`` and samples."""
        from dancenow_utils.train import epoch_batches

        t0 = time.perf_counter()
        losses: dict[str, float] = {}
        n = len(self.items)
        with open(self.dir / "loss_log.jsonl", "a") as log:
            for epoch in range(epochs):
                batches = epoch_batches(n, self.batch_size, self.seed, epoch)
                for idx in tqdm(batches, desc=f"face stage, epoch {epoch + 1}", disable=not self.progress):
                    losses = self.face.train_step(*self.batch(idx))
                    self.iteration += 1
                    log.write(json.dumps({"epoch": epoch + 1, "iteration": self.iteration,
                                          **{k: round(v, 6) for k, v in losses.items()}}) + "\n")
                    if max_seconds is not None and time.perf_counter() - t0 > max_seconds:
                        break
                if max_seconds is not None and time.perf_counter() - t0 > max_seconds:
                    break
        save_checkpoint(self.dir / "latest.pth", {**self.face.state(), "config": self.main_cfg.to_dict(),
                                                  "stage": "face", "iteration": self.iteration})
        self.save_visuals()
        return losses

    def save_visuals(self, n: int = 4) -> None:
        idx = list(np.linspace(0, len(self.items) - 1, min(n, len(self.items))).round().astype(int))
        pose, face, real = self.batch(idx)
        with torch.no_grad():
            fixed = self.face.correct(pose, face)
        rows = [np.concatenate([to_image(t) for t in batch], axis=1) for batch in (pose, face, fixed, real)]
        write_image(self.dir / "face_samples.png", np.concatenate(rows, axis=0))


def load_face_stage(name: str, checkpoints_dir: str | Path = "checkpoints",
                    device: torch.device | None = None) -> FaceGAN | None:
    """The trained face stage of a run, or None when it has none."""
    path = face_dir(checkpoints_dir, name) / "latest.pth"
    if not path.exists():
        return None
    ckpt = load_checkpoint(path)
    face = FaceGAN(FaceConfig(**ckpt["face_config"]), device or torch.device("cpu"))
    face.G.load_state_dict(ckpt["G"])
    face.G.eval()
    return face


@torch.no_grad()
def apply_face_stage(face: FaceGAN, frames: list[np.ndarray], poses: list[np.ndarray],
                     people: list[Person]) -> list[np.ndarray]:
    """Correct the face of every frame that has a face box; frames without one are returned unchanged."""
    out = []
    side = face.cfg.side
    for frame, pose, person in zip(frames, poses, people):
        box = face_box(person, frame.shape[1], frame.shape[0], side)
        if box is None:
            out.append(frame)
            continue
        x, y = box
        p = to_tensor(pose[y: y + side, x: x + side])[None].to(face.device)
        f = to_tensor(frame[y: y + side, x: x + side])[None].to(face.device)
        out.append(paste(frame, to_image(face.correct(p, f)[0]), box))
    return out
