"""Aligned pose/frame pairs: ``{dataroot}/{phase}_A/<id>.png`` (stick figure) with ``{phase}_B/<id>.png`` (frame).

Names must pair one-to-one; images of any size, grayscale or RGBA, are read as RGB and resized to the config's
size; decoded images stay in memory when they fit (``cache_images``). No horizontal flip by default: flipping a
coloured skeleton would swap the meaning of its left and right colours.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import torch
from torch.utils.data import Dataset

from dancenow_utils.io_utils import list_images, read_image

CACHE_LIMIT_BYTES = 4 * 1024**3


def pair_files(dataroot: str | Path, phase: str = "train", need_b: bool = True) -> list[tuple[Path, Path | None]]:
    """Sorted ``(A, B)`` paths; errors list missing folders and the first unpaired names."""
    root = Path(dataroot)
    dir_a, dir_b = root / f"{phase}_A", root / f"{phase}_B"
    missing = [str(d) for d in ((dir_a, dir_b) if need_b else (dir_a,)) if not d.is_dir()]
    if missing:
        raise FileNotFoundError(f"missing folder(s) {', '.join(missing)}: run pose extraction (notebook 01) "
                                f"with dataroot={str(root)!r} and phase={phase!r} first")
    files_a = {p.stem: p for p in list_images(dir_a)}
    if not files_a:
        raise ValueError(f"{dir_a}: no images; run pose extraction (notebook 01) first")
    if not need_b:
        return [(files_a[k], None) for k in sorted(files_a)]
    files_b = {p.stem: p for p in list_images(dir_b)}
    only_a, only_b = sorted(set(files_a) - set(files_b)), sorted(set(files_b) - set(files_a))
    if only_a or only_b:
        raise ValueError(
            f"{root}: {phase}_A and {phase}_B must hold the same names. Only in {phase}_A: {only_a[:5]}"
            f"{' ...' if len(only_a) > 5 else ''}; only in {phase}_B: {only_b[:5]}{' ...' if len(only_b) > 5 else ''}."
            " Delete the strays or re-run pose extraction.")
    return [(files_a[k], files_b[k]) for k in sorted(files_a)]


def load_resized(path: Path, width: int, height: int) -> np.ndarray:
    img = read_image(path)
    if img.shape[:2] != (height, width):
        interp = cv2.INTER_AREA if img.shape[0] > height else cv2.INTER_LINEAR
        img = cv2.resize(img, (width, height), interpolation=interp)
    return img


def to_tensor(img: np.ndarray) -> torch.Tensor:
    """uint8 HxWx3 -> float CxHxW in [-1, 1]."""
    return torch.from_numpy(np.ascontiguousarray(img)).permute(2, 0, 1).float().div_(127.5).sub_(1.0)


def to_image(t: torch.Tensor) -> np.ndarray:
    """float CxHxW in [-1, 1] -> uint8 HxWx3."""
    t = t.detach().float().cpu().clamp(-1, 1).add(1).mul(127.5).round()
    return t.permute(1, 2, 0).to(torch.uint8).numpy()


class AlignedDataset(Dataset):
    """Pose/frame pairs as tensors in [-1, 1]: ``{"A", "B", "name", "index"}``."""

    def __init__(self, dataroot: str | Path, phase: str = "train", width: int = 256, height: int = 256,
                 max_size: int = 0, cache: bool = True, flip: bool = False, need_b: bool = True) -> None:
        self.pairs = pair_files(dataroot, phase, need_b)
        if max_size:
            self.pairs = self.pairs[:max_size]
        self.width, self.height, self.flip = width, height, flip
        per_item = width * height * 3 * (2 if need_b else 1)
        self._cache: list[tuple[np.ndarray, np.ndarray | None]] | None = None
        if cache and per_item * len(self.pairs) <= CACHE_LIMIT_BYTES:
            self._cache = [self._load(i) for i in range(len(self.pairs))]

    def __len__(self) -> int:
        return len(self.pairs)

    def names(self) -> list[str]:
        return [a.stem for a, _ in self.pairs]

    def _load(self, i: int) -> tuple[np.ndarray, np.ndarray | None]:
        a, b = self.pairs[i]
        return (load_resized(a, self.width, self.height),
                None if b is None else load_resized(b, self.width, self.height))

    def images(self, i: int) -> tuple[np.ndarray, np.ndarray | None]:
        """The uint8 pose and frame of item ``i``."""
        return self._cache[i] if self._cache is not None else self._load(i)

    def __getitem__(self, i: int) -> dict:
        a, b = self.images(i)
        item = {"A": to_tensor(a), "name": self.pairs[i][0].stem, "index": i}
        if b is not None:
            item["B"] = to_tensor(b)
        if self.flip and torch.rand(()) < 0.5:
            item["A"] = item["A"].flip(-1)
            if "B" in item:
                item["B"] = item["B"].flip(-1)
        return item
