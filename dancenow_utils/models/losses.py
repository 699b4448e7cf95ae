"""pix2pixHD losses: LSGAN, discriminator feature matching, VGG19 perceptual loss.

VGG19 weights come from a local file (``vgg_weights``), torchvision's cache, or a download where the network
allows it (Colab). With ``vgg_loss="auto"`` and none of these, the loss is switched off with one warning;
``"on"`` without weights is an error that says how to provide them. Set ``DANCENOW_OFFLINE=1`` to skip the
download attempt.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import torch
from torch import nn

from dancenow_utils.checkpoint import load_weights_file

log = logging.getLogger("dancenow")

VGG19_URL = "https://download.pytorch.org/models/vgg19-dcbb9e9d.pth"
VGG_FIX = (f"Give vgg_weights a torchvision VGG19 state dict ({VGG19_URL.rsplit('/', 1)[-1]} from {VGG19_URL}), "
           "or train with vgg_loss='off'.")
VGG_SLICES = (2, 7, 12, 21, 30)  # relu1_1, relu2_1, relu3_1, relu4_1, relu5_1 (exclusive ends in vgg19.features)
VGG_WEIGHTS = (1 / 32, 1 / 16, 1 / 8, 1 / 4, 1.0)


def gan_loss(preds: list[list[torch.Tensor]], target_is_real: bool) -> torch.Tensor:
    """LSGAN: mean squared error of each scale's final map against 1 (real) or 0 (fake), summed over scales."""
    loss = torch.zeros((), device=preds[0][-1].device)
    for scale in preds:
        out = scale[-1].float()
        loss = loss + torch.mean((out - (1.0 if target_is_real else 0.0)) ** 2)
    return loss


def feature_matching_loss(fake: list[list[torch.Tensor]], real: list[list[torch.Tensor]], n_layers: int,
                          lambda_feat: float) -> torch.Tensor:
    """L1 between the discriminator's features on fake and real, all layers but the last, pix2pixHD weights."""
    weight = lambda_feat * (4.0 / (n_layers + 1)) / len(fake)
    loss = torch.zeros((), device=fake[0][0].device)
    for f_scale, r_scale in zip(fake, real):
        for f, r in zip(f_scale[:-1], r_scale[:-1]):
            loss = loss + weight * nn.functional.l1_loss(f.float(), r.detach().float())
    return loss


def resolve_vgg_weights(mode: str, path: str = "") -> Path | None:
    """Find VGG19 weights for ``mode`` ("auto" | "on" | "off"); None means the loss is off."""
    if mode not in ("auto", "on", "off"):
        raise ValueError(f"vgg_loss must be 'auto', 'on' or 'off', got {mode!r}")
    if mode == "off":
        return None
    if path:
        p = Path(path).expanduser()
        if p.is_file():
            return p
        msg = f"{p}: VGG19 weights file not found"
        if mode == "on":
            raise FileNotFoundError(msg + "; download vgg19-dcbb9e9d.pth elsewhere and give its path as vgg_weights")
        log.warning("%s; VGG perceptual loss is off", msg)
        return None
    cached = Path(torch.hub.get_dir()) / "checkpoints" / Path(VGG19_URL).name
    if cached.is_file():
        return cached
    if not os.environ.get("DANCENOW_OFFLINE"):
        try:
            cached.parent.mkdir(parents=True, exist_ok=True)
            torch.hub.download_url_to_file(VGG19_URL, str(cached), progress=False)
            return cached
        except Exception as exc:  # no network, proxy, disk: all mean "no weights here"
            reason = f"{type(exc).__name__}: {exc}"
    else:
        reason = "DANCENOW_OFFLINE is set"
    if mode == "on":
        raise FileNotFoundError(
            f"VGG19 weights are needed (vgg_loss='on') but not in {cached} and could not be downloaded ({reason}). "
            f"Copy vgg19-dcbb9e9d.pth there, or set vgg_weights to its path, or use vgg_loss='auto'/'off'.")
    log.warning("VGG19 weights not found (%s); VGG perceptual loss is off. Set vgg_weights to a local "
                "vgg19-dcbb9e9d.pth to enable it.", reason)
    return None


class VGGLoss(nn.Module):
    """Perceptual L1 on VGG19 relu1_1..relu5_1 with weights 1/32 .. 1, inputs in [-1, 1].

    As in pix2pixHD the raw [-1, 1] images go into VGG19 (``normalize_input=False``): the features' scale, and so the
    weight of this term against the GAN and feature-matching terms, is the reference's. ``normalize_input=True``
    maps them to [0, 1] and applies ImageNet's mean and std first (what torchvision's weights were trained on; this
    project's behaviour before it followed pix2pixHD), for runs that must keep that loss scale.
    """

    def __init__(self, weights: Path | None, normalize_input: bool = False) -> None:
        """``weights=None`` keeps the random initialisation (shapes only: the memory estimate on ``meta``)."""
        super().__init__()
        import torchvision

        vgg = torchvision.models.vgg19()
        if weights is not None:
            state = load_weights_file(weights, "torchvision VGG19 weights", VGG_FIX)
            try:
                vgg.load_state_dict(state)
            except (RuntimeError, TypeError, AttributeError) as exc:
                raise ValueError(f"{weights}: not a torchvision VGG19 state dict "
                                 f"({str(exc).splitlines()[0] if str(exc) else type(exc).__name__}). "
                                 f"{VGG_FIX}") from None
        feats = vgg.features.eval()
        self.slices = nn.ModuleList()
        start = 0
        for end in VGG_SLICES:
            self.slices.append(nn.Sequential(*[feats[i] for i in range(start, end)]))
            start = end
        for p in self.parameters():
            p.requires_grad_(False)
        self.normalize_input = normalize_input
        self.register_buffer("mean", torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1))

    def prepare(self, x: torch.Tensor) -> torch.Tensor:
        """The network's input for an image in [-1, 1]: unchanged, or ImageNet-normalised with ``normalize_input``."""
        return ((x + 1) / 2 - self.mean) / self.std if self.normalize_input else x

    def forward(self, fake: torch.Tensor, real: torch.Tensor) -> torch.Tensor:
        x, y = self.prepare(fake), self.prepare(real)
        loss = torch.zeros((), device=fake.device)
        for w, s in zip(VGG_WEIGHTS, self.slices):
            x, y = s(x), s(y)
            loss = loss + w * nn.functional.l1_loss(x.float(), y.detach().float())
        return loss
