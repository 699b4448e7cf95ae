"""Running a generator on a batch of poses: the one place that builds its input and applies mixed precision.

The networks are conditioned on the pose image as it is, or, for label-map runs, on pix2pixHD's encoding of it
(:func:`condition`: one-hot classes plus instance boundaries). The temporal model (Everybody Dance Now's temporal
smoothing) also sees its own previous output; before the first frame of a sequence that previous frame is all
zeros. Training, visuals, evaluation, transfer and the face stage all go through :func:`condition`,
:func:`generator_input` and :func:`generate_batch`.
"""

from __future__ import annotations

import torch
from torch import nn

from dancenow_utils.config import TrainConfig
from dancenow_utils.data.labels import instance_edges, one_hot
from dancenow_utils.runtime.precision import autocast


def condition(cfg: TrainConfig, inputs: torch.Tensor, instances: torch.Tensor | None = None) -> torch.Tensor:
    """What the generator and the discriminator are conditioned on: a pose image batch unchanged, or a batch of
    label maps ``(N, 1, H, W)`` one-hot encoded with ``label_nc`` channels, plus the instance boundaries' channel
    when the run uses instance maps (pix2pixHD's ``encode_input``)."""
    if not cfg.label_nc:
        return inputs
    encoded = one_hot(inputs, cfg.label_nc)
    if cfg.instance_maps:
        if instances is None:
            raise ValueError("this generator was trained with instance maps (instance_maps=True): give each label "
                             "map its instance map")
        encoded = torch.cat([encoded, instance_edges(instances)], 1)
    return encoded


def generator_input(pose: torch.Tensor, previous: torch.Tensor | None, temporal: bool,
                    output_nc: int = 3) -> torch.Tensor:
    """The generator's input: the pose, plus for the temporal model the previous frame (zeros when ``None``)."""
    if not temporal:
        return pose
    if previous is None:
        previous = pose.new_zeros(pose.shape[0], output_nc, *pose.shape[2:])
    return torch.cat([pose, previous.to(pose.dtype)], 1)


@torch.no_grad()
def generate_batch(G: nn.Module, pose: torch.Tensor, previous: torch.Tensor | None = None, temporal: bool = False,
                   precision: str = "fp32", output_nc: int = 3) -> torch.Tensor:
    """Frames (float32 in [-1, 1]) for a batch of poses already on ``G``'s device, in eval mode."""
    was_training = G.training
    G.eval()
    try:
        with autocast(pose.device, precision):
            return G(generator_input(pose, previous, temporal, output_nc)).float()
    finally:
        G.train(was_training)


def input_names(cfg: TrainConfig) -> list[str]:
    """The generator's inputs by name, in order, as the ONNX export takes them: ``pose`` (or ``label`` and, with
    instance maps, ``instance``), then ``features`` (pix2pixHD's encoder), then ``previous`` (the temporal model)."""
    names = ["label"] + (["instance"] if cfg.instance_maps else []) if cfg.label_nc else ["pose"]
    if cfg.use_features:
        names.append("features")
    if cfg.temporal:
        names.append("previous")
    return names
