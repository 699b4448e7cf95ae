"""The pix2pixHD model: generator, multiscale discriminator, losses, optimisers, and one obvious training step.

One step follows pix2pixHD: a single forward pass computes every loss (the discriminator sees the real pair once,
the detached fake pair once, and the fake pair once more for the generator with its weights frozen), the losses are
checked to be finite, then the generator and the discriminator each take one Adam step.
"""

from __future__ import annotations

import torch

from dancenow_utils.config import TrainConfig
from dancenow_utils.models.base import BaseModel
from dancenow_utils.models.generate import generate_batch, generator_input
from dancenow_utils.models.losses import VGGLoss, resolve_vgg_weights
from dancenow_utils.models.networks import build_discriminator, build_generator

LOSS_NAMES = ("G_GAN", "G_GAN_Feat", "G_VGG", "D_real", "D_fake")


def vgg_term(vgg: VGGLoss, fakes: list[torch.Tensor], reals: list[torch.Tensor], cfg: TrainConfig) -> torch.Tensor:
    """VGG loss times ``lambda_feat``, summed over the generated frames; EDN halves the temporal pair's sum for the
    global generator only (its note: the local enhancer needs the full term against artifacts)."""
    total = sum(vgg(f.float(), r.float()) for f, r in zip(fakes, reals)) * cfg.lambda_feat
    return total * 0.5 if len(fakes) == 2 and cfg.netG == "global" else total


def l1_term(fakes: list[torch.Tensor], reals: list[torch.Tensor], cfg: TrainConfig) -> torch.Tensor:
    """EDN's ``--use_l1``: L1 between the last generated frame (the second of a temporal pair) and its real frame,
    times ``lambda_l1``."""
    return (fakes[-1].float() - reals[-1].float()).abs().mean() * cfg.lambda_l1


class Pix2PixHD(BaseModel):
    """Pose -> frame GAN; the temporal model generates pairs of consecutive frames (Everybody Dance Now)."""

    loss_names = LOSS_NAMES

    def __init__(self, cfg: TrainConfig, device: torch.device, vgg: bool = True, precision: str | None = None) -> None:
        super().__init__(cfg, device, precision)
        self.loss_names = LOSS_NAMES + (("G_L1",) if cfg.use_l1 else ())
        self.nets = {"G": build_generator(cfg).to(device), "D": build_discriminator(cfg).to(device)}
        self.optimizers = {k: self.make_optimizer(n, cfg.lr) for k, n in self.nets.items()}
        weights = resolve_vgg_weights(cfg.vgg_loss, cfg.vgg_weights) if vgg else None
        self.vgg = VGGLoss(weights, cfg.vgg_normalize_input).to(device) if weights is not None else None

    @property
    def G(self) -> torch.nn.Module:
        return self.nets["G"]

    @property
    def D(self) -> torch.nn.Module:
        return self.nets["D"]

    def set_epoch(self, epoch: int) -> None:
        """A local enhancer's global branch is held fixed for its first ``niter_fix_global`` epochs (pix2pixHD)."""
        fix = self.cfg.netG == "local" and epoch < self.cfg.niter_fix_global
        self.fixed = {"G": list(self.G.global_net.parameters())} if fix else {}

    def _frames(self, batch: dict[str, torch.Tensor]) -> tuple[list[torch.Tensor], list[torch.Tensor],
                                                               torch.Tensor, torch.Tensor]:
        """Generated and real frames, and the (pose, frame) stacks the discriminator judges.

        Per-frame model: D judges (pose, frame). Temporal model: frame t is generated from (pose_t, zeros), frame
        t+1 from (pose_t+1, generated frame t), and D judges (pose_t, pose_t+1, frame_t, frame_t+1).
        """
        A, B, G, cfg = batch["A"], batch["B"], self.net("G"), self.cfg
        if not cfg.temporal:
            fake = G(A)
            return [fake], [B], torch.cat([A, B], 1), torch.cat([A, fake], 1)
        if "A_next" not in batch or "B_next" not in batch:
            raise ValueError("the temporal model trains on consecutive pairs: the batch needs A_next and B_next")
        A2, B2 = batch["A_next"], batch["B_next"]
        first = G(generator_input(A, None, True, cfg.output_nc))
        second = G(generator_input(A2, first, True, cfg.output_nc))
        return [first, second], [B, B2], torch.cat([A, A2, B, B2], 1), torch.cat([A, A2, first, second], 1)

    def losses(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Every named loss of one step, from one forward pass."""
        cfg = self.cfg
        fakes, reals, real_pair, fake_pair = self._frames(batch)
        losses = self.adversarial_losses(real_pair, fake_pair, cfg.n_layers_D, cfg.lambda_feat, cfg.use_feat_loss)
        vgg = torch.zeros((), device=self.device)
        if self.vgg is not None:
            vgg = vgg_term(self.vgg, fakes, reals, cfg)
        out = {"G_GAN": losses["G_GAN"], "G_GAN_Feat": losses["G_GAN_Feat"], "G_VGG": vgg,
               "D_real": losses["D_real"], "D_fake": losses["D_fake"]}
        if cfg.use_l1:
            out["G_L1"] = l1_term(fakes, reals, cfg)
        return out

    def visuals(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Pose, generated frame (a first frame for the temporal model) and real frame."""
        fake = generate_batch(self.G, batch["A"], None, self.cfg.temporal, self.precision, self.cfg.output_nc)
        return {"input": batch["A"], "generated": fake, "real": batch["B"]}
