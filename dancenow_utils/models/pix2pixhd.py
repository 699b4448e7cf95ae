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

    def _forward_train(self, A: torch.Tensor, B: torch.Tensor, A_next: torch.Tensor | None,
                       B_next: torch.Tensor | None) -> tuple[list[torch.Tensor], list[torch.Tensor], torch.Tensor,
                                                             torch.Tensor]:
        """Generated and real frames, and what D sees for real and fake.

        Per-frame model: D judges (pose, frame). Temporal model: frame t is generated from (pose_t, zeros), frame
        t+1 from (pose_t+1, generated frame t), and D judges (pose_t, pose_t+1, frame_t, frame_t+1).
        """
        if not self.cfg.temporal:
            fake = self.G_ddp(A)
            return [fake], [B], torch.cat([A, B], 1), torch.cat([A, fake], 1)
        if A_next is None or B_next is None:
            raise ValueError("the temporal model trains on consecutive pairs: pass A_next and B_next")
        first = self.G_ddp(torch.cat([A, torch.zeros_like(B)], 1))
        second = self.G_ddp(torch.cat([A_next, first], 1))
        return ([first, second], [B, B_next], torch.cat([A, A_next, B, B_next], 1),
                torch.cat([A, A_next, first, second], 1))

    def generator_losses(self, A: torch.Tensor, B: torch.Tensor, A_next: torch.Tensor | None = None,
                         B_next: torch.Tensor | None = None) -> tuple[dict[str, torch.Tensor], dict]:
        """The generator's named losses (GAN, feature matching, VGG) and what the discriminator step needs."""
        cfg = self.cfg
        zero = torch.zeros((), device=A.device)
        fakes, reals, real_pair, fake_pair = self._forward_train(A, B, A_next, B_next)
        pred_fake = self.D_ddp(fake_pair)
        with torch.no_grad():
            pred_real_ref = self.D_ddp(real_pair)
        losses = {
            "G_GAN": gan_loss(pred_fake, True),
            "G_GAN_Feat": (feature_matching_loss(pred_fake, pred_real_ref, cfg.n_layers_D, cfg.lambda_feat)
                           if cfg.use_feat_loss else zero),
            "G_VGG": (sum(self.vgg(f.float(), r.float()) for f, r in zip(fakes, reals)) / len(fakes)
                      * cfg.lambda_feat if self.vgg is not None else zero),
        }
        return losses, {"fake": fakes[-1], "real_pair": real_pair, "fake_pair": fake_pair}

    def discriminator_losses(self, real_pair: torch.Tensor, fake_pair: torch.Tensor) -> dict[str, torch.Tensor]:
        """LSGAN: real pairs towards 1, (detached) fake pairs towards 0."""
        return {"D_real": gan_loss(self.D_ddp(real_pair), True),
                "D_fake": gan_loss(self.D_ddp(fake_pair.detach()), False)}

    def train_step(self, A: torch.Tensor, B: torch.Tensor, A_next: torch.Tensor | None = None,
                   B_next: torch.Tensor | None = None) -> tuple[dict[str, float], torch.Tensor]:
        """One iteration: a G step, then a D step. Takes poses ``A`` and frames ``B`` (plus the next ones for the
        temporal model); returns the named losses and the last generated frames."""
        with self.autocast():
            g_losses, out = self.generator_losses(A, B, A_next, B_next)
            loss_g = sum(g_losses.values())
        self._check_finite(loss_g, "generator")
        self.opt_G.zero_grad(set_to_none=True)
        self.scaler.scale(loss_g).backward()
        self.scaler.step(self.opt_G)
        with self.autocast():
            d_losses = self.discriminator_losses(out["real_pair"], out["fake_pair"])
            loss_d = (d_losses["D_real"] + d_losses["D_fake"]) * 0.5
        self._check_finite(loss_d, "discriminator")
        self.opt_D.zero_grad(set_to_none=True)
        self.scaler.scale(loss_d).backward()
        self.scaler.step(self.opt_D)
        self.scaler.update()
        values = {**g_losses, **d_losses}
        return {k: float(values[k].detach()) for k in LOSS_NAMES}, out["fake"].detach()

    @torch.no_grad()
    def evaluation_losses(self, A: torch.Tensor, B: torch.Tensor, A_next: torch.Tensor | None = None,
                          B_next: torch.Tensor | None = None) -> dict[str, float]:
        """The same named losses without any update (for held-out data)."""
        g_losses, out = self.generator_losses(A, B, A_next, B_next)
        d_losses = self.discriminator_losses(out["real_pair"], out["fake_pair"])
        return {k: float(v) for k, v in {**g_losses, **d_losses}.items()}

    @staticmethod
    def _check_finite(loss: torch.Tensor, which: str) -> None:
        if not torch.isfinite(loss):
            raise FloatingPointError(f"the {which} loss is {float(loss.detach())}")

    @torch.no_grad()
    def generate(self, A: torch.Tensor) -> torch.Tensor:
        """Frames for a batch of poses (the temporal model sees zeros as its previous frame: a first frame)."""
        was_training = self.G.training
        self.G.eval()
        A = A.to(self.device)
        if self.cfg.temporal:
            A = torch.cat([A, torch.zeros_like(A[:, : self.cfg.output_nc])], 1)
        with self.autocast():
            out = self.G(A).float()
        self.G.train(was_training)
        return out
