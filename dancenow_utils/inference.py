"""Load a trained generator and turn pose images into frames, in batches."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch
from torch import nn

from dancenow_utils.checkpoint import check_architecture, load_checkpoint
from dancenow_utils.config import TrainConfig
from dancenow_utils.data import to_image, to_tensor
from dancenow_utils.models.networks import build_generator
from dancenow_utils.models.pix2pixhd import resolve_device


def checkpoint_path(name: str, which_epoch: str = "latest", checkpoints_dir: str | Path = "checkpoints") -> Path:
    which = which_epoch if which_epoch == "latest" or which_epoch.startswith("epoch_") else f"epoch_{which_epoch}"
    return Path(checkpoints_dir) / name / f"{which}.pth"


def load_generator(name: str, which_epoch: str = "latest", checkpoints_dir: str | Path = "checkpoints",
                   device: str = "auto") -> tuple[nn.Module, TrainConfig, torch.device]:
    """The generator of ``checkpoints/<name>/<which_epoch>.pth``, built from the config saved beside it.

    A checkpoint whose networks differ from that config (e.g. copied from another preset's run) is an error.
    """
    path = checkpoint_path(name, which_epoch, checkpoints_dir)
    if not path.exists():
        available = sorted(p.stem for p in path.parent.glob("*.pth")) if path.parent.is_dir() else []
        raise FileNotFoundError(f"{path}: no such checkpoint. Available for {name!r}: {available or 'none'}; "
                                "train first (notebook 02) or check `name` and `which_epoch`.")
    cfg = TrainConfig.load(path.parent / "config.json")
    ckpt = load_checkpoint(path)
    check_architecture(ckpt["config"], cfg, path)
    dev = resolve_device(device)
    G = build_generator(cfg)
    G.load_state_dict(ckpt["G"])
    return G.to(dev).eval(), cfg, dev


@torch.no_grad()
def generate_frames(G: nn.Module, poses: list[np.ndarray], device: torch.device, batch_size: int = 8,
                    temporal: bool = False) -> Iterator[np.ndarray]:
    """Yield one generated RGB frame per pose image (already at the generator's size).

    The temporal model runs frame by frame, feeding each output back as the next frame's previous frame (zeros
    before the first).
    """
    use_amp = device.type == "cuda"
    if temporal:
        prev = None
        for p in poses:
            A = to_tensor(p)[None].to(device)
            prev = torch.zeros_like(A) if prev is None else prev
            with torch.autocast("cuda", dtype=torch.float16, enabled=use_amp):
                prev = G(torch.cat([A, prev], 1)).float()
            yield to_image(prev[0])
        return
    for i in range(0, len(poses), batch_size):
        A = torch.stack([to_tensor(p) for p in poses[i: i + batch_size]]).to(device)
        with torch.autocast("cuda", dtype=torch.float16, enabled=use_amp):
            out = G(A).float()
        for t in out:
            yield to_image(t)
