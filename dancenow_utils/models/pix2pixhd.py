"""The pix2pixHD model: generator, multiscale discriminator, losses, optimisers, and one obvious training step.

One step follows pix2pixHD: a single forward pass computes every loss (the discriminator sees the real pair once
and the fake pair once; the generator's losses and the discriminator's fake loss share that pass), the losses are
checked to be finite, then the generator and the discriminator each take one Adam step, each backward computing
only its own network's gradients.

Label-map runs are conditioned on pix2pixHD's encoding of the label map (one-hot classes, instance boundaries);
with the feature encoder (``instance_feat`` / ``label_feat``) the generator also sees the real frame's features
averaged per region, and the encoder trains with the generator (one optimiser), as in pix2pixHD.
"""

from __future__ import annotations

import itertools

import torch

from dancenow_utils.config import TrainConfig
from dancenow_utils.data.labels import colorize
from dancenow_utils.models.base import BaseModel
from dancenow_utils.models.encoder import build_encoder, feature_regions
from dancenow_utils.models.generate import condition, generate_batch, generator_input
from dancenow_utils.models.losses import VGGLoss, resolve_vgg_weights
from dancenow_utils.models.networks import build_discriminator, build_generator

LOSS_NAMES = ("G_GAN", "G_GAN_Feat", "G_VGG", "D_real", "D_fake")


def vgg_term(vgg: VGGLoss, fakes: list[torch.Tensor], reals: list[torch.Tensor], cfg: TrainConfig) -> torch.Tensor:
    """VGG loss times ``lambda_feat``, summed over the generated frames; EDN halves the temporal pair's sum for the
    global generator only (its note: the local enhancer needs the full term against artifacts)."""
    total = sum(vgg(f.float(), r.float()) for f, r in zip(fakes, reals)) * cfg.lambda_feat
    return total * 0.5 if len(fakes) == 2 and cfg.netG == "global" else total


def l1_term(fakes: list[torch.Tensor], reals: list[torch.Tensor], cfg: TrainConfig,
            hands: torch.Tensor | None = None) -> torch.Tensor:
    """EDN's ``--use_l1``: L1 between the last generated frame (the second of a temporal pair) and its real frame,
    times ``lambda_l1``; with ``hands`` (that frame's hand maps, :mod:`dancenow_utils.data.hands`) the pixels of
    the hands and forearms count ``1 + hand_weight`` times."""
    diff = (fakes[-1].float() - reals[-1].float()).abs()
    if hands is not None and cfg.hand_weight:
        diff = diff * (1 + cfg.hand_weight * hands.float())
    return diff.mean() * cfg.lambda_l1


class Pix2PixHD(BaseModel):
    """Pose -> frame GAN; the temporal model generates pairs of consecutive frames (Everybody Dance Now)."""

    kind = "pix2pixhd"
    loss_names = LOSS_NAMES

    def __init__(self, cfg: TrainConfig, device: torch.device, vgg: bool = True, precision: str | None = None) -> None:
        super().__init__(cfg, device, precision)
        self.loss_names = LOSS_NAMES + (("G_L1",) if cfg.use_l1 else ())
        self.nets = {"G": build_generator(cfg).to(device), "D": build_discriminator(cfg).to(device)}
        encoder = build_encoder(cfg)
        if encoder is not None:  # pix2pixHD: the encoder's weights are in the generator's optimiser
            self.nets["E"] = encoder.to(device)
        g_params = itertools.chain(*(self.nets[k].parameters() for k in ("G", "E") if k in self.nets))
        self.optimizers = {"G": self.make_optimizer(g_params, cfg.lr), "D": self.make_optimizer(self.D.parameters(),
                                                                                                cfg.lr)}
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

    def inference_keys(self) -> tuple[str, ...]:
        return ("G", "E") if "E" in self.nets else ("G",)

    def _inputs(self, batch: dict[str, torch.Tensor], real: torch.Tensor, suffix: str = "",
                encoder: torch.nn.Module | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """``(condition, generator input)`` of one frame: the condition plus, with the feature encoder, the real
        frame's region-averaged features (tracked per class while training)."""
        cfg = self.cfg
        labels, instances = batch["A" + suffix], batch.get("inst" + suffix)
        cond = condition(cfg, labels, instances)
        if "E" not in self.nets:
            return cond, cond
        E = encoder if encoder is not None else self.net("E")
        feat = E(real, feature_regions(cfg, labels, instances))
        if self.nets["E"].training and torch.is_grad_enabled():
            self.nets["E"].track(feat, labels)
        return cond, torch.cat([cond, feat.to(cond.dtype)], 1)

    def _frames(self, batch: dict[str, torch.Tensor]) -> tuple[list[torch.Tensor], list[torch.Tensor],
                                                               torch.Tensor, torch.Tensor]:
        """Generated and real frames, and the (pose, frame) stacks the discriminator judges.

        Per-frame model: D judges (pose, frame). Temporal model: frame t is generated from (pose_t, zeros), frame
        t+1 from (pose_t+1, generated frame t), and D judges (pose_t, pose_t+1, frame_t, frame_t+1).
        """
        B, G, cfg = batch["B"], self.net("G"), self.cfg
        A, g_in = self._inputs(batch, B)
        if not cfg.temporal:
            fake = G(g_in)
            return [fake], [B], torch.cat([A, B], 1), torch.cat([A, fake], 1)
        if "A_next" not in batch or "B_next" not in batch:
            raise ValueError("the temporal model trains on consecutive pairs: the batch needs A_next and B_next")
        B2 = batch["B_next"]
        A2, g_in2 = self._inputs(batch, B2, "_next")
        first = G(generator_input(g_in, None, True, cfg.output_nc))
        second = G(generator_input(g_in2, first, True, cfg.output_nc))
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
            out["G_L1"] = l1_term(fakes, reals, cfg, batch.get("H_next" if cfg.temporal else "H"))
        return out

    @torch.no_grad()
    def visuals(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Input (a label map colour-coded), generated frame (a first frame for the temporal model; with the
        feature encoder, from the real frame's features) and real frame."""
        with self.autocast():  # no gradients here, so the encoder's class means are not tracked
            _, g_in = self._inputs(batch, batch["B"], encoder=self.nets.get("E"))
        fake = generate_batch(self.G, g_in, None, self.cfg.temporal, self.precision, self.cfg.output_nc)
        return {"input": input_pictures(batch, self.cfg.label_nc), "generated": fake, "real": batch["B"]}


def input_pictures(batch: dict[str, torch.Tensor], label_nc: int) -> torch.Tensor:
    """The batch's inputs as images in [-1, 1]: pose images as they are, label maps colour-coded."""
    if not label_nc:
        return batch["A"]
    inst = batch.get("inst")
    pictures = [colorize(a[0].cpu().numpy(), None if inst is None else inst[k, 0].cpu().numpy())
                for k, a in enumerate(batch["A"])]
    return torch.stack([torch.from_numpy(p).permute(2, 0, 1) for p in pictures]).float().div(127.5).sub(1.0)
