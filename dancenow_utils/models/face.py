"""The face GAN stage (Everybody Dance Now, section 3.4): sharpen the generated face with a residual.

As in EDN's code: a square box (128 px on 1024x512 frames: 128 px per 512 px of frame height) is centred on the
nose, or between the ears when the nose is not seen. The face generator (a global generator, ngf 64, 3
downsamplings, 5 residual blocks: 26,724,291 parameters) takes the face crops of the pose and of the frozen main
generator's frame and predicts a residual added to the generated face (not clamped). Its losses: the face
discriminator's GAN loss (an n-layer PatchGAN with batch norm, ndf 64: 2,769,601 parameters, no feature matching),
the face crop's VGG loss at half weight, and the full-frame losses of the corrected frame through the main run's
discriminator (GAN, feature matching, VGG). The face D trains alone for ``face_niter_fix_main`` epochs, then the
full-frame D trains too. With a temporal main generator both frames of a pair are corrected, and the corrected
first frame is what the second is generated from. The main generator itself stays frozen.

At inference the corrected face is pasted back: pixels outside the box are untouched.

:class:`FaceModel` implements the same model protocol as :class:`~dancenow_utils.models.pix2pixhd.Pix2PixHD`, so
the one :class:`~dancenow_utils.training.trainer.Trainer` trains it with exact resume, mixed precision and the same
logs;
its sizes are the ``face_*`` fields of :class:`~dancenow_utils.config.TrainConfig`.
"""

from __future__ import annotations

import contextlib

import numpy as np
import torch
from torch import nn

from dancenow_utils.config import TrainConfig
from dancenow_utils.models.base import BaseModel, frozen
from dancenow_utils.models.generate import generator_input
from dancenow_utils.models.losses import VGGLoss, resolve_vgg_weights
from dancenow_utils.models.networks import (
    GlobalGenerator,
    MultiscaleDiscriminator,
    build_discriminator,
    init_weights,
)
from dancenow_utils.models.pix2pixhd import l1_term, vgg_term
from dancenow_utils.pose.formats import joint
from dancenow_utils.pose.keypoints import MIN_CONF, Person
from dancenow_utils.runtime.precision import autocast

NOSE, R_EAR, L_EAR = joint("Nose"), joint("REar"), joint("LEar")
HEAD_JOINTS = [joint(n) for n in ("Nose", "REye", "LEye", "REar", "LEar")]
FACE_LOSS_NAMES = ("G_GAN", "G_GAN_Feat", "G_VGG", "G_GANface", "D_real", "D_fake", "D_realface", "D_fakeface")


def face_box_side(height: int) -> int:
    """EDN's 128 px box on 1024x512 frames, scaled with the frame height (even, at least 16)."""
    side = max(16, int(round(128 * height / 512)))
    return side + side % 2


def face_centre(person: Person, min_conf: float = MIN_CONF) -> tuple[float, float] | None:
    """EDN's face centre: the nose; else the middle of both ears; else the one ear seen. Where EDN would read
    an unseen ear, the mean of the face points (or of the other head joints) is used; None without any."""
    body = person.body
    seen = body[:, 2] > min_conf
    if seen[NOSE]:
        return float(body[NOSE, 0]), float(body[NOSE, 1])
    ears = [j for j in (R_EAR, L_EAR) if seen[j]]
    if ears:
        x, y = body[ears, :2].mean(axis=0)
        return float(x), float(y)
    pts = np.zeros((0, 2), np.float32)
    if person.face is not None:
        pts = person.face[person.face[:, 2] > min_conf, :2]
    if len(pts) == 0:
        pts = body[[j for j in HEAD_JOINTS if seen[j]], :2]
    if len(pts) == 0:
        return None
    x, y = pts.mean(axis=0)
    return float(x), float(y)


def face_box(person: Person, width: int, height: int, side: int, min_conf: float = MIN_CONF) -> tuple[int, int] | None:
    """Top-left corner of the face box, centred on :func:`face_centre` and shifted to stay inside the image
    (as EDN's boxes are). None when no head point is visible."""
    centre = face_centre(person, min_conf)
    if centre is None:
        return None
    cx, cy = centre
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


def paste_batch(frames: torch.Tensor, faces: torch.Tensor, boxes: list[tuple[int, int]]) -> torch.Tensor:
    """``frames`` with each item's face box replaced by ``faces`` (differentiable; the input is not changed)."""
    out = frames.clone()
    s = faces.shape[-1]
    for i, (x, y) in enumerate(boxes):
        out[i, :, int(y): int(y) + s, int(x): int(x) + s] = faces[i]
    return out


def build_face_generator(cfg: TrainConfig) -> nn.Module:
    """Residual generator on (face pose crop, generated face crop): EDN's 'global' face generator."""
    net = GlobalGenerator(cfg.input_nc + cfg.output_nc, cfg.output_nc, cfg.face_ngf, cfg.face_n_downsample,
                          cfg.face_n_blocks)
    init_weights(net)
    return net


def build_face_discriminator(cfg: TrainConfig) -> nn.Module:
    """EDN's face D: one n-layer PatchGAN with batch norm on (face pose crop, face crop)."""
    net = MultiscaleDiscriminator(cfg.input_nc + cfg.output_nc, cfg.face_ndf, cfg.face_n_layers_D, 1, norm="batch")
    init_weights(net)
    return net


def correct_faces(G: nn.Module, pose: torch.Tensor, face: torch.Tensor) -> torch.Tensor:
    """The generated face plus the predicted residual (not clamped, as in EDN)."""
    return face + G(torch.cat([pose, face], 1))


class FaceModel(BaseModel):
    """Face generator and discriminator on top of a frozen main generator ``main_G`` (built from ``main_cfg``),
    with the main run's discriminator (``main_D_state``; a fresh one without) for the full-frame losses.

    Batches hold full-size ``A`` (pose), ``B`` (frame), ``box`` (N x 2 top-left corners of the face boxes), and
    ``A_next``/``B_next`` when the main generator is temporal.
    """

    loss_names = FACE_LOSS_NAMES
    host_keys = ("box",)  # the boxes slice the crops: read on the CPU, no device sync per step

    def __init__(self, cfg: TrainConfig, device: torch.device, main_G: nn.Module, main_cfg: TrainConfig,
                 main_D_state: dict | None = None, precision: str | None = None, vgg: bool = True) -> None:
        super().__init__(cfg, device, precision)
        self.loss_names = FACE_LOSS_NAMES + (("G_L1",) if main_cfg.use_l1 else ())
        self.side = face_box_side(cfg.height)
        self.main_G, self.main_cfg = main_G.to(device).eval(), main_cfg
        for p in self.main_G.parameters():
            p.requires_grad_(False)
        main_D = build_discriminator(main_cfg)
        if main_D_state is not None:
            main_D.load_state_dict(main_D_state)
        self.nets = {"G": build_face_generator(cfg).to(device), "D": build_face_discriminator(cfg).to(device),
                     "main_D": main_D.to(device)}
        self.optimizers = {k: self.make_optimizer(n.parameters(), cfg.lr) for k, n in self.nets.items()}
        weights = resolve_vgg_weights(cfg.vgg_loss, cfg.vgg_weights) if vgg else None
        self.vgg = VGGLoss(weights, cfg.vgg_normalize_input).to(device) if weights is not None else None
        self.main_D_trains = cfg.face_niter_fix_main == 0

    def set_epoch(self, epoch: int) -> None:
        """EDN trains the face D alone for ``face_niter_fix_main`` epochs, then the full-frame D as well."""
        self.main_D_trains = epoch >= self.cfg.face_niter_fix_main

    def trained(self, side: str) -> tuple[str, ...]:
        return ("D", "main_D") if side == "D" and self.main_D_trains else (side,)

    def _corrected(self, batch: dict[str, torch.Tensor], G: nn.Module):
        """Per frame (two for a temporal main generator): pose, real frame, corrected frame, and the face crops of
        the pose, the generated frame, the corrected frame and the real frame."""
        mc, boxes, prev = self.main_cfg, batch["box"].cpu().tolist(), None  # the trainer keeps boxes on the CPU
        frames = [("A", "B"), ("A_next", "B_next")] if mc.temporal else [("A", "B")]
        out = []
        for a, b in frames:
            pose, real = batch[a], batch[b]
            raw = self.main_G(generator_input(pose, prev, mc.temporal, mc.output_nc))
            pose_face, raw_face = crop(pose, boxes, self.side), crop(raw, boxes, self.side)
            fixed_face = correct_faces(G, pose_face, raw_face)
            prev = paste_batch(raw, fixed_face, boxes)
            out.append((pose, real, prev, pose_face, raw_face, fixed_face, crop(real, boxes, self.side)))
        return out

    def losses(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        frames = self._corrected(batch, self.net("G"))
        n, cfg, mc = len(frames), self.cfg, self.main_cfg
        face = [self.adversarial_losses(torch.cat([f[3], f[6]], 1), torch.cat([f[3], f[5]], 1), cfg.face_n_layers_D,
                                        0.0, False) for f in frames]
        poses, reals, fakes = [f[0] for f in frames], [f[1] for f in frames], [f[2] for f in frames]
        # while the full-frame D is held fixed its passes compute no weight gradients (its losses are only logged)
        with contextlib.nullcontext() if self.main_D_trains else frozen(self.nets["main_D"]):
            full = self.adversarial_losses(torch.cat(poses + reals, 1), torch.cat(poses + fakes, 1), mc.n_layers_D,
                                           mc.lambda_feat, mc.use_feat_loss, key="main_D")
        vgg = torch.zeros((), device=self.device)
        if self.vgg is not None:
            vgg = vgg_term(self.vgg, fakes, reals, mc) + sum(
                0.5 * self.vgg(f[5].float(), f[6].float()) for f in frames) * mc.lambda_feat
        out = {"G_GAN": full["G_GAN"], "G_GAN_Feat": full["G_GAN_Feat"], "G_VGG": vgg,
               "G_GANface": sum(f["G_GAN"] for f in face) / n, "D_real": full["D_real"], "D_fake": full["D_fake"],
               "D_realface": sum(f["D_real"] for f in face) / n, "D_fakeface": sum(f["D_fake"] for f in face) / n}
        if mc.use_l1:  # the main run's L1 term, on the last corrected frame, as EDN's face stage keeps it
            out["G_L1"] = l1_term(fakes, reals, mc)
        return out

    @torch.no_grad()
    def visuals(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Rows: face pose, generated face, corrected face, real face (the first frame)."""
        self.nets["G"].eval()
        with self.autocast():
            pose, _, _, pose_face, raw_face, fixed_face, real_face = self._corrected(batch, self.nets["G"])[0]
        self.nets["G"].train()
        return {"pose": pose_face, "generated": raw_face.float(), "corrected": fixed_face.float(), "real": real_face}


class FaceCorrector:
    """A trained face generator applied at inference: corrects the face box of generated frames in place."""

    def __init__(self, G: nn.Module, cfg: TrainConfig, device: torch.device, precision: str) -> None:
        self.G, self.cfg, self.device, self.precision = G.to(device).eval(), cfg, device, precision
        self.side = face_box_side(cfg.height)

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
        with autocast(self.device, self.precision):
            fixed = correct_faces(self.G, crop(poses[have], chosen, self.side),
                                  crop(frames[have], chosen, self.side)).float()
        out[have] = paste_batch(frames[have], fixed, chosen)
        return out
