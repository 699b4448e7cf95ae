"""The pix2pixHD model: generator, discriminator, losses, optimisers, and one obvious training step."""

from __future__ import annotations

import contextlib

import torch

from dancenow_utils.config import TrainConfig
from dancenow_utils.models.losses import VGGLoss, feature_matching_loss, gan_loss, resolve_vgg_weights
from dancenow_utils.models.networks import build_discriminator, build_generator

LOSS_NAMES = ("G_GAN", "G_GAN_Feat", "G_VGG", "D_real", "D_fake")


def resolve_device(name: str = "auto") -> torch.device:
    """``"auto"`` picks CUDA when present, else CPU."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dev = torch.device(name)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise RuntimeError(f"device {name!r} asked for, but CUDA is not available here; use device='auto' or 'cpu'")
    return dev


class Pix2PixHD:
    """Holds G, D, their Adam optimisers and the losses; :meth:`train_step` does a G step then a D step."""

    def __init__(self, cfg: TrainConfig, device: torch.device, train: bool = True) -> None:
        self.cfg, self.device = cfg, device
        self.G = build_generator(cfg).to(device)
        self.use_amp = cfg.amp == "auto" and device.type == "cuda"
        if not train:
            self.G.eval()
            return
        self.D = build_discriminator(cfg).to(device)
        fused = device.type in ("cuda", "cpu")
        betas = (cfg.beta1, 0.999)
        self.opt_G = torch.optim.Adam(self.G.parameters(), lr=cfg.lr, betas=betas, fused=fused)
        self.opt_D = torch.optim.Adam(self.D.parameters(), lr=cfg.lr, betas=betas, fused=fused)
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.use_amp)
        weights = resolve_vgg_weights(cfg.vgg_loss, cfg.vgg_weights)
        self.vgg = VGGLoss(weights).to(device) if weights is not None else None
        self.G_ddp, self.D_ddp = self.G, self.D  # replaced by DDP wrappers in distributed runs

    def autocast(self):
        return torch.autocast("cuda", dtype=torch.float16) if self.use_amp else contextlib.nullcontext()

    def set_lr(self, lr: float) -> None:
        for opt in (self.opt_G, self.opt_D):
            for group in opt.param_groups:
                group["lr"] = lr

    def train_step(self, A: torch.Tensor, B: torch.Tensor) -> tuple[dict[str, float], torch.Tensor]:
        """One iteration on a batch of poses ``A`` and frames ``B``; returns named losses and the fakes."""
        cfg = self.cfg
        with self.autocast():
            fake = self.G_ddp(A)
            real_pair = torch.cat([A, B], 1)
            fake_pair = torch.cat([A, fake], 1)
            # generator: fool D, match D's features on real frames, match VGG features
            pred_fake = self.D_ddp(fake_pair)
            with torch.no_grad():
                pred_real_ref = self.D_ddp(real_pair)
            loss_g_gan = gan_loss(pred_fake, True)
            loss_g_feat = (feature_matching_loss(pred_fake, pred_real_ref, cfg.n_layers_D, cfg.lambda_feat)
                           if cfg.use_feat_loss else torch.zeros((), device=A.device))
            loss_g_vgg = (self.vgg(fake.float(), B.float()) * cfg.lambda_feat if self.vgg is not None
                          else torch.zeros((), device=A.device))
            loss_g = loss_g_gan + loss_g_feat + loss_g_vgg
        self._check_finite(loss_g, "generator")
        self.opt_G.zero_grad(set_to_none=True)
        self.scaler.scale(loss_g).backward()
        self.scaler.step(self.opt_G)
        # discriminator: real pairs -> 1, fake pairs -> 0
        with self.autocast():
            loss_d_real = gan_loss(self.D_ddp(real_pair), True)
            loss_d_fake = gan_loss(self.D_ddp(fake_pair.detach()), False)
            loss_d = (loss_d_real + loss_d_fake) * 0.5
        self._check_finite(loss_d, "discriminator")
        self.opt_D.zero_grad(set_to_none=True)
        self.scaler.scale(loss_d).backward()
        self.scaler.step(self.opt_D)
        self.scaler.update()
        values = (loss_g_gan, loss_g_feat, loss_g_vgg, loss_d_real, loss_d_fake)
        return {k: float(v.detach()) for k, v in zip(LOSS_NAMES, values)}, fake.detach()

    @staticmethod
    def _check_finite(loss: torch.Tensor, which: str) -> None:
        if not torch.isfinite(loss):
            raise FloatingPointError(f"the {which} loss is {float(loss)}")

    @torch.no_grad()
    def generate(self, A: torch.Tensor) -> torch.Tensor:
        was_training = self.G.training
        self.G.eval()
        with self.autocast():
            out = self.G(A.to(self.device)).float()
        self.G.train(was_training)
        return out
