"""Label maps and instance maps: pix2pixHD's semantic input, read from disk and encoded for the networks.

A **label map** is a single-channel image of class indices ``0 .. label_nc - 1`` (8- or 16-bit grey, or a palette
PNG, whose pixel values are the indices). The networks see it one-hot encoded, ``label_nc`` channels, on the
device. An **instance map** (``{phase}_inst/<name>.png``, same name as the label map) gives every object its own
id; its boundaries (:func:`instance_edges`) become one more input channel, so that two touching objects of one
class stay apart. Both are resized with nearest-neighbour sampling only: a class index is never interpolated.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image


@dataclass(frozen=True)
class LabelInput:
    """One input of a label-map run: class indices (H x W) and, with instance maps, instance ids (H x W)."""

    labels: np.ndarray
    instances: np.ndarray | None = None

    @property
    def shape(self) -> tuple[int, int]:
        return self.labels.shape[:2]


def read_index_image(path: str | Path, what: str = "label map") -> np.ndarray:
    """The integer values of a single-channel image (grey, 16-bit or palette indices) as an H x W array.

    An RGB image is accepted only when it is grey (all three channels equal); a colour image is an error naming
    the file and the fix."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such {what}")
    if path.stat().st_size == 0:
        raise ValueError(f"{path}: the file is empty (0 bytes); delete it or write the {what} again")
    try:
        with Image.open(path) as im:
            mode = im.mode
            arr = np.array(im)
    except Exception:
        raise ValueError(f"{path}: not a readable image (corrupt or unsupported format); delete or replace "
                         f"this {what}") from None
    if mode in ("RGB", "RGBA", "LA") or arr.ndim == 3:
        colour = arr[..., :3] if arr.ndim == 3 and arr.shape[2] >= 3 else arr[..., :1]
        if colour.shape[-1] == 3 and not (np.array_equal(colour[..., 0], colour[..., 1])
                                          and np.array_equal(colour[..., 0], colour[..., 2])):
            raise ValueError(
                f"{path}: a colour ({mode}) image where a {what} is expected. A {what} is a single-channel PNG "
                "whose pixel values are class indices (0, 1, 2, ...): convert colour-coded maps to indices first, "
                "or train on RGB images with label_nc=0.")
        arr = colour[..., 0]
    if arr.dtype == bool:
        arr = arr.astype(np.uint8)
    if arr.dtype.kind not in "ui":
        raise ValueError(f"{path}: {what} pixels must be integers, found {arr.dtype}; write it as an 8- or "
                         "16-bit grey PNG of indices")
    return arr


def resize_nearest(arr: np.ndarray, width: int, height: int) -> np.ndarray:
    """Nearest-neighbour resize of an H x W index map (every output pixel takes one input pixel's value)."""
    h, w = arr.shape[:2]
    if (h, w) == (height, width):
        return arr
    rows = np.minimum(((np.arange(height) + 0.5) * h / height).astype(np.int64), h - 1)
    cols = np.minimum(((np.arange(width) + 0.5) * w / width).astype(np.int64), w - 1)
    return arr[rows[:, None], cols[None, :]]


def load_label_map(path: str | Path, width: int, height: int, label_nc: int) -> np.ndarray:
    """A label map at ``width`` x ``height`` (uint8, or int32 for more than 256 classes); values must be below
    ``label_nc``."""
    labels = read_index_image(path, "label map")
    check_labels(labels, label_nc, str(path))
    labels = resize_nearest(labels, width, height)
    return labels.astype(np.uint8 if label_nc <= 256 else np.int32)


def check_labels(labels: np.ndarray, label_nc: int, source: str) -> None:
    """Error when a label is negative or at or above ``label_nc`` (naming ``source``, the value and the fix)."""
    lo, hi = int(labels.min()), int(labels.max())
    if lo < 0 or hi >= label_nc:
        bad = lo if lo < 0 else hi
        raise ValueError(f"{source}: label value {bad} is outside 0..{label_nc - 1} (label_nc={label_nc}). Set "
                         f"label_nc to at least {hi + 1} (overrides={{'label_nc': {hi + 1}}}), or fix the map.")


def load_instance_map(path: str | Path, width: int, height: int) -> np.ndarray:
    """An instance map at ``width`` x ``height`` as int32 ids."""
    return resize_nearest(read_index_image(path, "instance map"), width, height).astype(np.int32)


# ---------------------------------------------------------------------------------------------- tensors
def one_hot(labels: torch.Tensor, label_nc: int) -> torch.Tensor:
    """``(N, 1, H, W)`` class indices -> ``(N, label_nc, H, W)`` float one-hot maps (on the indices' device)."""
    out = torch.zeros(labels.shape[0], label_nc, *labels.shape[2:], device=labels.device)
    return out.scatter_(1, labels.long(), 1.0)


def instance_edges(instances: torch.Tensor) -> torch.Tensor:
    """pix2pixHD's boundary map of ``(N, 1, H, W)`` instance ids: a pixel is an edge (1.0) where it differs from its
    left or right neighbour, or from the one above or below; otherwise 0.0."""
    edge = torch.zeros_like(instances, dtype=torch.bool)
    dx = instances[..., :, 1:] != instances[..., :, :-1]
    edge[..., :, 1:] |= dx
    edge[..., :, :-1] |= dx
    dy = instances[..., 1:, :] != instances[..., :-1, :]
    edge[..., 1:, :] |= dy
    edge[..., :-1, :] |= dy
    return edge.float()


def instance_average(features: torch.Tensor, regions: torch.Tensor) -> torch.Tensor:
    """pix2pixHD's instance-wise average pooling: every pixel of ``features`` ``(N, C, H, W)`` gets the mean of
    its region (same id in ``regions`` ``(N, 1, H, W)``, per image). Gradients flow to every pixel of a region."""
    n, c = features.shape[:2]
    flat = regions.reshape(n, -1).long()
    ids, inverse = torch.unique(flat, return_inverse=True)
    k = ids.numel()
    keys = (inverse + torch.arange(n, device=inverse.device)[:, None] * k).reshape(-1)
    values = features.float().transpose(0, 1).reshape(c, -1)
    sums = values.new_zeros(c, n * k).index_add_(1, keys, values)
    counts = values.new_zeros(n * k).index_add_(0, keys, torch.ones_like(keys, dtype=values.dtype))
    means = sums / counts.clamp(min=1)
    return means[:, keys].reshape(c, n, *features.shape[2:]).transpose(0, 1)


# ---------------------------------------------------------------------------------------------- display
def palette(n: int) -> np.ndarray:
    """``n`` distinct RGB colours, class 0 black (the bit-interleaved colour map of segmentation datasets)."""
    colours = np.zeros((n, 3), np.uint8)
    for i in range(n):
        c, r, g, b = i, 0, 0, 0
        for bit in range(8):
            r |= ((c >> 0) & 1) << (7 - bit)
            g |= ((c >> 1) & 1) << (7 - bit)
            b |= ((c >> 2) & 1) << (7 - bit)
            c >>= 3
        colours[i] = (r, g, b)
    return colours


def colorize(labels: np.ndarray, instances: np.ndarray | None = None) -> np.ndarray:
    """An RGB picture of a label map (one colour per class), with instance boundaries drawn white."""
    rgb = palette(int(labels.max()) + 1)[labels.astype(np.int64)]
    if instances is not None:
        edges = instance_edges(torch.from_numpy(instances.astype(np.int64))[None, None])[0, 0].numpy() > 0
        rgb[edges] = 255
    return rgb


def input_picture(item: np.ndarray | LabelInput) -> np.ndarray:
    """What a person sees of a generator input: a pose image as it is, a label map colour-coded."""
    if isinstance(item, LabelInput):
        return colorize(item.labels, item.instances)
    return item


__all__ = ["LabelInput", "check_labels", "colorize", "input_picture", "instance_average", "instance_edges",
           "load_instance_map", "load_label_map", "one_hot", "palette", "read_index_image", "resize_nearest"]
