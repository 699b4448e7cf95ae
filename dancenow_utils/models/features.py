"""Choosing the feature encoder's features at inference (pix2pixHD's instance-wise features).

A run trained with ``instance_feat`` or ``label_feat`` draws each region (an instance, or a class) in the style its
``feat_num`` features describe. At inference there is no real frame to encode, so the features come from:

- a **reference frame** of the same layout (``Generator.frames(..., references=...)``: pix2pixHD's
  ``use_encoded_image``);
- **per-class vectors** the user picks (``features={class: vector}``), for example the features found in some
  other frame (:func:`region_features`, then :func:`features_by_class`); classes not given keep
- the **training means**: the per-class mean features the encoder tracked over its training batches, saved with its
  weights (the default).

With ``instance_feat`` every instance takes the vector of its class (the class most of its pixels have).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from dancenow_utils.data.datasets import input_tensors, to_tensor
from dancenow_utils.data.labels import LabelInput
from dancenow_utils.models.encoder import FeatureEncoder

ClassFeatures = Mapping[int, Sequence[float] | np.ndarray]


@dataclass(frozen=True)
class RegionFeature:
    """The encoder's features of one region of a frame: its id, its class, its pixel count and its vector."""

    region: int
    label: int
    pixels: int
    vector: np.ndarray


def class_table(E: FeatureEncoder, features: ClassFeatures | None = None) -> np.ndarray:
    """``label_nc`` x ``feat_num`` features per class: the training means, with the classes in ``features``
    replaced (each a vector of ``feat_num`` numbers)."""
    table = E.class_features.detach().float().cpu().numpy().copy()
    n_classes, feat_num = table.shape
    for label, vector in (features or {}).items():
        if isinstance(label, bool) or not isinstance(label, (int, np.integer)) or not 0 <= label < n_classes:
            raise ValueError(f"features: class {label!r} is not a class of this run (0..{n_classes - 1})")
        v = np.asarray(vector, np.float32).reshape(-1)
        if v.shape != (feat_num,) or not np.isfinite(v).all():
            raise ValueError(f"features[{label}]: give {feat_num} finite numbers (feat_num), got {vector!r}")
        table[label] = v
    return table


def region_classes(labels: np.ndarray, regions: np.ndarray) -> dict[int, int]:
    """The class of each region: the class most of its pixels have (ties: the smaller class)."""
    out = {}
    for region in np.unique(regions):
        counts = np.bincount(labels[regions == region].astype(np.int64))
        out[int(region)] = int(np.argmax(counts))
    return out


def feature_map(table: np.ndarray, item: LabelInput, per_instance: bool) -> np.ndarray:
    """``feat_num`` x H x W features for one label map: each class's row of ``table``, or for ``per_instance`` each
    instance's class's row (one vector per instance, as the encoder's pooling gives)."""
    if not per_instance:
        return table[item.labels.astype(np.int64)].transpose(2, 0, 1)
    if item.instances is None:
        raise ValueError("this run pools features per instance (instance_feat=True): each label map needs its "
                         "instance map")
    classes = region_classes(item.labels, item.instances)
    out = np.zeros((table.shape[1], *item.labels.shape), np.float32)
    for region, label in classes.items():
        out[:, item.instances == region] = table[label][:, None]
    return out


def feature_maps(E: FeatureEncoder, items: Sequence[LabelInput], features: ClassFeatures | None,
                 per_instance: bool) -> torch.Tensor:
    """The features of a batch of label maps ``(N, feat_num, H, W)``, from per-class vectors (see the module)."""
    table = class_table(E, features)
    return torch.from_numpy(np.stack([feature_map(table, item, per_instance) for item in items])).float()


@torch.no_grad()
def region_features(E: FeatureEncoder, per_instance: bool, frame: np.ndarray, item: LabelInput,
                    device: torch.device | str = "cpu") -> list[RegionFeature]:
    """The encoder's features of every region of ``frame`` (RGB uint8, same size as ``item``): one vector per
    instance (``per_instance``) or per class, with its class and size (pix2pixHD's ``encode_features``)."""
    tensors = input_tensors(item)
    labels = tensors["A"][None].to(device)
    if per_instance and "inst" not in tensors:
        raise ValueError("this run pools features per instance (instance_feat=True): give the instance map too")
    regions = tensors["inst"][None].to(device) if per_instance else labels
    pooled = E(to_tensor(frame)[None].to(device), regions)[0].float().cpu().numpy()
    region_map = regions[0, 0].cpu().numpy()
    classes = region_classes(item.labels, region_map)
    out = []
    for region, label in classes.items():
        where = region_map == region
        y, x = np.argwhere(where)[0]
        out.append(RegionFeature(region, label, int(where.sum()), pooled[:, y, x].copy()))
    return out


def features_by_class(regions: Sequence[RegionFeature]) -> dict[int, np.ndarray]:
    """Per-class features from region features: each class's pixel-weighted mean (to pass as ``features``)."""
    sums: dict[int, np.ndarray] = {}
    counts: dict[int, int] = {}
    for r in regions:
        sums[r.label] = sums.get(r.label, 0) + r.vector * r.pixels
        counts[r.label] = counts.get(r.label, 0) + r.pixels
    return {label: (sums[label] / counts[label]).astype(np.float32) for label in sorted(sums)}


__all__ = ["ClassFeatures", "RegionFeature", "class_table", "feature_map", "feature_maps", "features_by_class",
           "region_classes", "region_features"]
