"""pix2pixHD's feature encoder: per-instance (or per-class) features of a real frame, fed to the generator.

The encoder is an encoder-decoder (7x7 conv, ``n_downsample_E`` stride-2 convs, as many transposed convs back,
7x7 conv to ``feat_num`` channels, tanh; instance norm without affine parameters) over the real frame. Its output
is averaged over every region (an instance, or a class with ``label_feat``), so each object is described by
``feat_num`` numbers; the generator sees them as extra input channels and learns to draw the object in that style.
It trains jointly with the generator (its weights are in the generator's optimiser), as in pix2pixHD.

At inference there is no real frame: the generator takes features from a reference frame of the same layout, from
the user (one vector per class), or, by default, the per-class means the encoder tracked over its training data
(``class_features``, a running mean saved with the weights).
"""

from __future__ import annotations

import torch
from torch import nn

from dancenow_utils.config import TrainConfig
from dancenow_utils.data.labels import instance_average
from dancenow_utils.models.networks import GlobalGenerator, init_weights

TRACK_MOMENTUM = 0.99  # running mean of the per-class features over training batches


class FeatureEncoder(nn.Module):
    """Frame ``(N, output_nc, H, W)`` and regions ``(N, 1, H, W)`` -> region-averaged features ``(N, feat_num, H, W)``.

    ``class_features`` (``label_nc`` x ``feat_num``) is the running mean, over training batches, of the pooled
    features at the pixels of each class; ``class_seen`` marks the classes met so far.
    """

    def __init__(self, input_nc: int, feat_num: int, nef: int, n_downsampling: int, label_nc: int) -> None:
        super().__init__()
        # pix2pixHD's Encoder is layer for layer the global generator's front, downsampling, upsampling and output
        # stages with no residual blocks in between
        self.net = GlobalGenerator(input_nc, feat_num, nef, n_downsampling, n_blocks=0)
        self.register_buffer("class_features", torch.zeros(label_nc, feat_num))
        self.register_buffer("class_seen", torch.zeros(label_nc, dtype=torch.bool))

    def forward(self, frame: torch.Tensor, regions: torch.Tensor) -> torch.Tensor:
        return instance_average(self.net(frame), regions)

    @torch.no_grad()
    def track(self, pooled: torch.Tensor, labels: torch.Tensor) -> None:
        """Update the running per-class means from a batch's pooled features and its label maps (no device sync)."""
        n_classes, feat_num = self.class_features.shape
        idx = labels.reshape(-1).long()
        values = pooled.detach().float().transpose(0, 1).reshape(feat_num, -1)
        sums = values.new_zeros(n_classes, feat_num).index_add_(0, idx, values.t())
        counts = values.new_zeros(n_classes).index_add_(0, idx, torch.ones_like(idx, dtype=values.dtype))
        present = counts > 0
        batch_mean = sums / counts.clamp(min=1)[:, None]
        blended = torch.where(self.class_seen[:, None],
                              TRACK_MOMENTUM * self.class_features + (1 - TRACK_MOMENTUM) * batch_mean, batch_mean)
        self.class_features.copy_(torch.where(present[:, None], blended, self.class_features))
        self.class_seen |= present


def build_encoder(cfg: TrainConfig) -> FeatureEncoder | None:
    """The feature encoder of a config that uses one (``instance_feat`` or ``label_feat``), else None."""
    if not cfg.use_features:
        return None
    net = FeatureEncoder(cfg.output_nc, cfg.feat_num, cfg.nef, cfg.n_downsample_E, cfg.label_nc)
    init_weights(net)
    return net


def feature_regions(cfg: TrainConfig, labels: torch.Tensor, instances: torch.Tensor | None) -> torch.Tensor:
    """The regions the encoder's features are averaged over: instances (``instance_feat``) or classes."""
    return instances if cfg.instance_feat else labels
