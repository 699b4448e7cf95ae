"""The face GAN stage (Everybody Dance Now, section 3.4): sharpen the generated face with a residual.

A square box around the face keypoints (128 px at 512 px output, scaled with the output size) is cut from the
pose image and from the main generator's frame. A small generator takes both crops and predicts a residual that
is added to the generated face; its own discriminator judges (face pose, face). The main generator stays frozen.
At inference the corrected face is pasted back: pixels outside the box are untouched.

:class:`FaceModel` implements the same model protocol as :class:`~dancenow_utils.models.pix2pixhd.Pix2PixHD`, so
the one :class:`~dancenow_utils.train.Trainer` trains it with exact resume, mixed precision and the same logs;
its sizes are the ``face_*`` fields of :class:`~dancenow_utils.config.TrainConfig`.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from dancenow_utils.config import TrainConfig
from dancenow_utils.models.base import BaseModel
from dancenow_utils.models.generate import generate_batch
from dancenow_utils.models.networks import GlobalGenerator, MultiscaleDiscriminator, init_weights
from dancenow_utils.pose.formats import joint
from dancenow_utils.pose.keypoints import Person
from dancenow_utils.precision import autocast

HEAD_JOINTS = [joint(n) for n in ("Nose", "REye", "LEye", "REar", "LEar")]
FACE_LOSS_NAMES = ("G_GAN", "G_GAN_Feat", "D_real", "D_fake")


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


def crop(t: torch.Tensor, boxes: torch.Tensor | list[tuple[int, int]], side: int) -> torch.Tensor:
    """Crop each image of a batch ``(N, C, H, W)`` at its box (top-left ``x, y``)."""
    return torch.stack([img[:, int(y): int(y) + side, int(x): int(x) + side] for img, (x, y) in zip(t, boxes)])


def paste(frame: np.ndarray, face: np.ndarray, box: tuple[int, int]) -> np.ndarray:
    """A copy of ``frame`` with ``face`` pasted at ``box``; every pixel outside the box is unchanged."""
    out = frame.copy()
    x, y = box
    out[y: y + face.shape[0], x: x + face.shape[1]] = face
    return out


def build_face_generator(cfg: TrainConfig) -> nn.Module:
    """Residual generator on (face pose crop, generated face crop)."""
    net = GlobalGenerator(cfg.input_nc + cfg.output_nc, cfg.output_nc, cfg.face_ngf, cfg.face_n_downsample,
                          cfg.face_n_blocks)
    init_weights(net)
    return net


def build_face_discriminator(cfg: TrainConfig) -> nn.Module:
    net = MultiscaleDiscriminator(cfg.input_nc + cfg.output_nc, cfg.face_ndf, cfg.face_n_layers_D, cfg.face_num_D)
    init_weights(net)
    return net


def correct_faces(G: nn.Module, pose: torch.Tensor, face: torch.Tensor) -> torch.Tensor:
    """The generated face plus the predicted residual, clamped to the image range."""
    return (face + G(torch.cat([pose, face], 1))).clamp(-1, 1)


class FaceModel(BaseModel):
    """Face generator and discriminator on top of a frozen main generator ``main_G`` (built from ``main_cfg``).

    Batches hold full-size ``A`` (pose), ``B`` (frame) and ``box`` (N x 2 top-left corners of the face boxes).
    """

    loss_names = FACE_LOSS_NAMES

    def __init__(self, cfg: TrainConfig, device: torch.device, main_G: nn.Module, main_cfg: TrainConfig,
                 precision: str | None = None) -> None:
        super().__init__(cfg, device, precision)
        self.side = face_box_side(cfg.width)
        self.main_G, self.main_cfg = main_G.to(device).eval(), main_cfg
        for p in self.main_G.parameters():
            p.requires_grad_(False)
        self.nets = {"G": build_face_generator(cfg).to(device), "D": build_face_discriminator(cfg).to(device)}
        self.optimizers = {k: self.make_optimizer(n.parameters(), cfg.lr) for k, n in self.nets.items()}

    def crops(self, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Face crops of the pose, the frozen main generator's frame (a first frame) and the real frame."""
        main = generate_batch(self.main_G, batch["A"], None, self.main_cfg.temporal, self.precision,
                              self.main_cfg.output_nc)
        boxes = batch["box"].tolist()
        return crop(batch["A"], boxes, self.side), crop(main, boxes, self.side), crop(batch["B"], boxes, self.side)

    def losses(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        pose, face, real = self.crops(batch)
        fixed = correct_faces(self.net("G"), pose, face)
        return self.adversarial_losses(torch.cat([pose, real], 1), torch.cat([pose, fixed], 1),
                                       self.cfg.face_n_layers_D, self.cfg.face_lambda_feat, True)

    @torch.no_grad()
    def visuals(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Rows: face pose, generated face, corrected face, real face."""
        pose, face, real = self.crops(batch)
        self.nets["G"].eval()
        with self.autocast():
            fixed = correct_faces(self.nets["G"], pose, face).float()
        self.nets["G"].train()
        return {"pose": pose, "generated": face, "corrected": fixed, "real": real}


class FaceCorrector:
    """A trained face generator applied at inference: corrects the face box of generated frames in place."""

    def __init__(self, G: nn.Module, cfg: TrainConfig, device: torch.device, precision: str) -> None:
        self.G, self.cfg, self.device, self.precision = G.to(device).eval(), cfg, device, precision
        self.side = face_box_side(cfg.width)

    def boxes(self, people: list[Person | None], width: int, height: int) -> list[tuple[int, int] | None]:
        return [None if p is None else face_box(p, width, height, self.side) for p in people]

    @torch.no_grad()
    def __call__(self, poses: torch.Tensor, frames: torch.Tensor,
                 boxes: list[tuple[int, int] | None]) -> torch.Tensor:
        """``frames`` with each face box replaced by its correction; frames without a box are unchanged."""
        have = [i for i, b in enumerate(boxes) if b is not None]
        if not have:
            return frames
        out = frames.clone()
        chosen = [boxes[i] for i in have]
        s = self.side
        with autocast(self.device, self.precision):
            fixed = correct_faces(self.G, crop(poses[have], chosen, s), crop(frames[have], chosen, s)).float()
        for k, i in enumerate(have):
            x, y = boxes[i]
            out[i, :, y: y + s, x: x + s] = fixed[k]
        return out
