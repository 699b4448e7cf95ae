"""Running a generator on a batch of poses: the one place that builds its input and applies mixed precision.

The temporal model (Everybody Dance Now's temporal smoothing) sees the pose and its own previous output; before
the first frame of a sequence that previous frame is all zeros. Training, visuals, evaluation, transfer and the
face stage all go through :func:`generator_input` / :func:`generate_batch`.
"""

from __future__ import annotations

import torch
from torch import nn

from dancenow_utils.precision import autocast


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
