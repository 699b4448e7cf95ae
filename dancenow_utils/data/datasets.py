"""Aligned pose/frame pairs: ``{dataroot}/{phase}_A/<id>.png`` (stick figure) with ``{phase}_B/<id>.png`` (frame).

Names must pair one-to-one; images of any size, grayscale or RGBA, are read as RGB and resized to the config's
size; decoded images stay in memory when they fit (``cache``). The temporal model's items are consecutive pairs.
With ``label_nc > 0`` the inputs are label maps instead (:mod:`dancenow_utils.data.labels`: class indices, resized with
nearest-neighbour sampling), with their instance maps ``{phase}_inst/<id>.png`` when ``instance_maps``; items then
hold ``A`` as ``(1, H, W)`` integer classes and ``inst`` as ``(1, H, W)`` instance ids.
Batches come from :class:`EpochBatchSampler`: the same shuffled order for a given (seed, epoch) on every run,
sharded across ranks like ``DistributedSampler`` (padded so every rank runs the same number of batches), with
horizontal flips decided per item by the sampler, so a pose and its frame are always flipped together; optionally
drawn by weight (rare pose kinds more often) and jittered (one random move, scale and turn per drawn item).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from pathlib import Path

import cv2
import numpy as np
import torch
from PIL import Image
from torch import nn
from torch.utils.data import Dataset

from dancenow_utils.config import JITTER_KINDS
from dancenow_utils.data.labels import LabelInput, load_instance_map, load_label_map
from dancenow_utils.io_utils import list_images, read_image
from dancenow_utils.layout import DatasetLayout

CACHE_LIMIT_BYTES = 4 * 1024**3


def pair_files(dataroot: str | Path, phase: str = "train", need_b: bool = True) -> list[tuple[Path, Path | None]]:
    """Sorted ``(A, B)`` paths; errors list missing folders and the first unpaired names."""
    layout = DatasetLayout(dataroot, phase)
    missing = [str(d) for d in ((layout.A, layout.B) if need_b else (layout.A,)) if not d.is_dir()]
    if missing:
        raise FileNotFoundError(f"missing folder(s) {', '.join(missing)}: run pose extraction (notebook 01) "
                                f"with dataroot={str(layout.root)!r} and phase={phase!r} first (label maps: put "
                                f"them in {layout.A.name} and the frames in {layout.B.name})")
    files_a = {p.stem: p for p in list_images(layout.A)}
    if not files_a:
        raise ValueError(f"{layout.A}: no images; run pose extraction (notebook 01) first")
    if not need_b:
        return [(files_a[k], None) for k in sorted(files_a)]
    files_b = {p.stem: p for p in list_images(layout.B)}
    only_a, only_b = sorted(set(files_a) - set(files_b)), sorted(set(files_b) - set(files_a))
    if only_a or only_b:
        raise ValueError(
            f"{layout.root}: {phase}_A and {phase}_B must hold the same names. Only in {phase}_A: {only_a[:5]}"
            f"{' ...' if len(only_a) > 5 else ''}; only in {phase}_B: {only_b[:5]}{' ...' if len(only_b) > 5 else ''}."
            " Delete the strays or re-run pose extraction.")
    return [(files_a[k], files_b[k]) for k in sorted(files_a)]


def instance_files(layout: DatasetLayout, names: list[str]) -> list[Path]:
    """The instance map of each label map (same name in ``{phase}_inst``); errors name what is missing and the fix."""
    if not layout.inst.is_dir():
        raise FileNotFoundError(f"{layout.inst}: no instance-map folder. instance_maps=True reads one instance map "
                                f"per label map ({layout.inst.name}/<name>.png beside {layout.A.name}); add them, or "
                                "train with instance_maps=False")
    files = {p.stem: p for p in list_images(layout.inst)}
    missing = [n for n in names if n not in files]
    if missing:
        raise FileNotFoundError(
            f"{layout.inst}: missing instance map(s) for {', '.join(missing[:5])}{' ...' if len(missing) > 5 else ''}"
            f" ({len(missing)} of {len(names)} label maps have none). Write {layout.inst.name}/<name>.png for each "
            f"label map in {layout.A.name}, or train with instance_maps=False.")
    return [files[n] for n in names]


def load_input(path: Path, width: int, height: int, label_nc: int = 0,
               instance_path: Path | None = None) -> np.ndarray | LabelInput:
    """One generator input at the config's size: an RGB pose image, or (``label_nc > 0``) a label map with its
    instance map."""
    if not label_nc:
        return load_resized(path, width, height)
    instances = load_instance_map(instance_path, width, height) if instance_path is not None else None
    return LabelInput(load_label_map(path, width, height, label_nc), instances)


def input_tensors(item: np.ndarray | LabelInput, suffix: str = "") -> dict[str, torch.Tensor]:
    """A batch item's input tensors: ``A`` (a pose in [-1, 1], or ``(1, H, W)`` classes) and ``inst`` (ids)."""
    if not isinstance(item, LabelInput):
        return {"A" + suffix: to_tensor(item)}
    out = {"A" + suffix: torch.from_numpy(item.labels.astype(np.int64))[None]}
    if item.instances is not None:
        out["inst" + suffix] = torch.from_numpy(item.instances.astype(np.int64))[None]
    return out


def image_size(path: Path) -> tuple[int, int] | None:
    """(width, height) from an image file's header (nothing decoded); None when unreadable."""
    try:
        with Image.open(path) as im:
            return im.size
    except Exception:  # unreadable: reading it later names the file
        return None


def check_pair_sizes(pairs: list[tuple[Path, Path | None]]) -> None:
    """Each pose must have its frame's aspect ratio: a pose drawn for another framing would not line up.

    Sizes may differ at the same aspect (both are resized to the config's size)."""
    bad = []
    for a, b in pairs:
        if b is None:
            continue
        sa, sb = image_size(a), image_size(b)
        if sa and sb and abs(sa[0] / sa[1] - sb[0] / sb[1]) > 0.01:
            bad.append(f"{a.name} (pose {sa[0]}x{sa[1]}, frame {sb[0]}x{sb[1]})")
    if bad:
        root = pairs[0][0].parent.parent
        raise ValueError(f"{root}: {len(bad)} pose(s) do not have their frame's shape, so the stick figure would not "
                         f"line up with the body: {', '.join(bad[:5])}{' ...' if len(bad) > 5 else ''}. Re-run pose "
                         "extraction (notebook 01) rather than replacing files in _A or _B by hand.")


def resized(img: np.ndarray, width: int, height: int) -> np.ndarray:
    """``img`` at ``width`` x ``height``: area-averaged when shrinking, bilinear when enlarging (unchanged when it
    has that size already), as training resizes its images."""
    if img.shape[:2] == (height, width):
        return img
    interp = cv2.INTER_AREA if img.shape[0] > height else cv2.INTER_LINEAR
    return cv2.resize(img, (width, height), interpolation=interp)


def load_resized(path: Path, width: int, height: int) -> np.ndarray:
    """The RGB image file at ``path``, at ``width`` x ``height`` (:func:`resized`)."""
    return resized(read_image(path), width, height)


def to_tensor(img: np.ndarray) -> torch.Tensor:
    """uint8 HxWx3 -> float CxHxW in [-1, 1]."""
    return torch.from_numpy(np.ascontiguousarray(img)).permute(2, 0, 1).float().div_(127.5).sub_(1.0)


def to_image(t: torch.Tensor) -> np.ndarray:
    """float CxHxW in [-1, 1] -> uint8 HxWx3."""
    t = t.detach().float().cpu().clamp(-1, 1).add(1).mul(127.5).round()
    return t.permute(1, 2, 0).to(torch.uint8).numpy()


class AlignedDataset(Dataset):
    """Pose/frame pairs as tensors in [-1, 1]: items ``{"A", "B", "index"}`` (plus ``A_next``/``B_next`` for the
    temporal model; ``inst`` for label maps with instance maps). An item is asked for by index, or by
    ``(index, flip)`` or ``(index, flip, transform)`` from :class:`EpochBatchSampler` (:func:`jittered`)."""

    def __init__(self, dataroot: str | Path, phase: str = "train", width: int = 256, height: int = 256,
                 max_size: int = 0, cache: bool = True, need_b: bool = True, temporal: bool = False,
                 label_nc: int = 0, instance_maps: bool = False) -> None:
        self.layout = DatasetLayout(dataroot, phase)
        self.pairs = pair_files(dataroot, phase, need_b)
        if max_size:
            self.pairs = self.pairs[:max_size]
        check_pair_sizes(self.pairs)
        self.label_nc = label_nc
        self.instances: list[Path] | None = (instance_files(self.layout, [a.stem for a, _ in self.pairs])
                                             if instance_maps else None)
        if temporal and len(self.pairs) < 2:
            raise ValueError(f"{self.layout.A}: the temporal model needs at least two consecutive frames")
        self.width, self.height, self.temporal = width, height, temporal
        per_item = width * height * 3 * (2 if need_b else 1)
        self._cache: list[tuple[np.ndarray | LabelInput, np.ndarray | None]] | None = None
        # per frame, where its hands and forearms are (data.hands; set for ``hand_weight``): items then hold ``H``
        self.hand_maps: list[np.ndarray] | None = None
        # per frame, its stick figure drawn from the mirrored keypoints (data.mirror.MirroredPoses; set for
        # ``mirror``): a flipped item then takes its pose from here instead of flipping the drawn one
        self.mirrored: Sequence[np.ndarray] | None = None
        if cache and per_item * len(self.pairs) <= CACHE_LIMIT_BYTES:
            self._cache = [self._load(i) for i in range(len(self.pairs))]

    @property
    def keeps_images(self) -> bool:
        """Whether decoded images stay in memory (``cache``, and they fit)."""
        return self._cache is not None

    def __len__(self) -> int:
        """Training items: frames, or consecutive pairs (frame t, frame t+1) for the temporal model."""
        return len(self.pairs) - 1 if self.temporal else len(self.pairs)

    @property
    def n_frames(self) -> int:
        return len(self.pairs)

    def names(self) -> list[str]:
        return [a.stem for a, _ in self.pairs]

    def _load(self, i: int) -> tuple[np.ndarray | LabelInput, np.ndarray | None]:
        a, b = self.pairs[i]
        inst = self.instances[i] if self.instances is not None else None
        return (load_input(a, self.width, self.height, self.label_nc, inst),
                None if b is None else load_resized(b, self.width, self.height))

    def images(self, i: int) -> tuple[np.ndarray | LabelInput, np.ndarray | None]:
        """The input (uint8 pose, or label map) and uint8 frame of frame ``i``."""
        return self._cache[i] if self._cache is not None else self._load(i)

    def tensors(self, i: int, suffix: str = "") -> dict[str, torch.Tensor]:
        """Frame ``i``'s input and frame tensors (keys ``A``, ``inst``, ``B``, and ``H`` with hand maps, each with
        ``suffix``)."""
        a, b = self.images(i)
        out = input_tensors(a, suffix)
        if b is not None:
            out["B" + suffix] = to_tensor(b)
        if self.hand_maps is not None:
            out["H" + suffix] = torch.from_numpy(self.hand_maps[i])[None]
        return out

    def __getitem__(self, key: int | tuple) -> dict[str, torch.Tensor]:
        i, flip, jitter = (key + (None,))[:3] if isinstance(key, tuple) else (key, False, None)
        item = self.tensors(i)
        if self.temporal:
            item.update(self.tensors(i + 1, "_next"))
        if flip:
            item = {k: v.flip(-1) for k, v in item.items()}
            if self.mirrored is not None:
                item["A"] = to_tensor(self.mirrored[i])
                if self.temporal:
                    item["A_next"] = to_tensor(self.mirrored[i + 1])
        if jitter is not None:
            item = jittered(item, jitter)
        item["index"] = torch.tensor(i)
        return item


# the largest geometric jitter, at ``jitter=1``: shift (fraction of the image), scale (fraction) and rotation (deg)
JITTER_SHIFT, JITTER_SCALE, JITTER_DEGREES = 0.1, 0.1, 10.0


def jitter_draws(n: int, strength: float, generator: torch.Generator, kind: str = "affine") -> list[tuple]:
    """``n`` random transforms ``(dx, dy, scale, degrees)`` of up to ``strength`` times the largest jitter (shifts
    as fractions of the image): ``"affine"`` moves, scales and turns; ``"shift"`` only moves (scale 1, 0 degrees);
    ``"sharp"`` is ``"affine"``'s transforms (the same draws) resampled by nearest neighbour, marked by a fifth
    element ``"nearest"`` (:func:`jittered`)."""
    if kind not in JITTER_KINDS:
        raise ValueError(f"jitter_kind must be one of {JITTER_KINDS}, got {kind!r}")
    u = (torch.rand(n, 4, generator=generator, dtype=torch.float64) * 2 - 1) * strength
    if kind == "shift":
        u[:, 2:] = 0
    out = [(float(a) * JITTER_SHIFT, float(b) * JITTER_SHIFT, 1.0 + float(c) * JITTER_SCALE, float(d) * JITTER_DEGREES)
           for a, b, c, d in u]
    return [(*t, "nearest") for t in out] if kind == "sharp" else out


def shifted(t: torch.Tensor, dx: int, dy: int, fill: float | None) -> torch.Tensor:
    """``t`` (C x H x W) moved by whole pixels, the uncovered side filled with ``fill`` (None: its edge pixels)."""
    h, w = t.shape[-2:]
    dx, dy = max(-w, min(w, dx)), max(-h, min(h, dy))
    pad = (max(dx, 0), max(-dx, 0), max(dy, 0), max(-dy, 0))
    if fill is None:
        padded = nn.functional.pad(t[None].float(), pad, mode="replicate")[0].to(t.dtype)
    else:
        padded = nn.functional.pad(t, pad, mode="constant", value=fill)
    top, left = max(-dy, 0), max(-dx, 0)
    return padded[..., top:top + h, left:left + w]


def jittered(item: dict[str, torch.Tensor], transform: tuple) -> dict[str, torch.Tensor]:
    """An item moved, scaled and turned by one transform ``(dx, dy, scale, degrees)``, the pose and the frame (and
    a temporal pair's next ones) alike, so they stay aligned. Poses are padded with their black background, frames
    with their edge pixels, label and instance maps with class 0. A pure move is done in whole pixels, so the frame
    keeps every detail; a scale or turn resamples: bilinear (which blurs small details such as the hands a
    little), or with a fifth element ``"nearest"`` by nearest neighbour (every pixel keeps a colour of the frame);
    label and instance maps always by nearest neighbour."""
    dx, dy, scale, degrees = transform[:4]
    mode = "nearest" if transform[4:] == ("nearest",) else "bilinear"
    if scale == 1 and degrees == 0:
        out = {}
        for key, t in item.items():
            px, py = round(dx * t.shape[-1]), round(dy * t.shape[-2])
            fill = 0 if not t.is_floating_point() else (-1.0 if key.startswith("A") else None)
            out[key] = shifted(t, px, py, fill)
        return out
    height, width = next(iter(item.values())).shape[-2:]
    rad = np.deg2rad(degrees)
    cos, sin = np.cos(rad) / scale, np.sin(rad) / scale
    # affine_grid maps output to input coordinates, each axis in [-1, 1] (so a turn of a wide image is scaled by
    # its aspect ratio to stay a turn in pixels): the inverse of the move
    theta = torch.tensor([[cos, -sin * height / width, -2 * dx], [sin * width / height, cos, -2 * dy]],
                         dtype=torch.float32)[None]
    out = {}
    for key, t in item.items():
        grid = nn.functional.affine_grid(theta, [1, *t.shape], align_corners=False)
        if not t.is_floating_point():  # label or instance ids
            moved = nn.functional.grid_sample(t[None].float(), grid, mode="nearest", padding_mode="zeros",
                                              align_corners=False)
            out[key] = moved[0].round().to(t.dtype)
        elif key.startswith("A"):  # a stick figure on black (-1)
            moved = nn.functional.grid_sample(t[None] + 1, grid, mode=mode, padding_mode="zeros",
                                              align_corners=False)
            out[key] = moved[0] - 1
        else:
            out[key] = nn.functional.grid_sample(t[None], grid, mode=mode, padding_mode="border",
                                                 align_corners=False)[0]
    return out


def epoch_order(n: int, seed: int, epoch: int, weights: list[float] | None = None) -> list[int]:
    """One epoch's ``n`` items in order, the same for a given (seed, epoch) on every run: a shuffle of every item,
    or with ``weights`` ``n`` draws with replacement, each item drawn in proportion to its weight (so items of rare
    kinds come up more often, and the epoch keeps its length)."""
    g = torch.Generator().manual_seed(seed * 100_003 + epoch)
    if weights is None:
        return torch.randperm(n, generator=g).tolist()
    if len(weights) != n:
        raise ValueError(f"{len(weights)} sampling weights for {n} items: give one weight per item")
    return torch.multinomial(torch.tensor(weights, dtype=torch.float64), n, replacement=True, generator=g).tolist()


def epoch_batches(n: int, batch_size: int, seed: int, epoch: int, rank: int = 0, world: int = 1,
                  weights: list[float] | None = None) -> list[list[int]]:
    """The batches of one epoch (:func:`epoch_order`), the same for a given (seed, epoch) on every run.

    With several ranks the order is padded (repeating its start) to a multiple of ``world`` and every global batch
    of ``batch_size * world`` items is split across ranks, so every rank runs the same number of batches.
    """
    perm = epoch_order(n, seed, epoch, weights)
    if world > 1:
        total = math.ceil(n / world) * world
        while len(perm) < total:
            perm += perm[: total - len(perm)]
    global_bs = batch_size * world
    batches = [perm[i: i + global_bs] for i in range(0, len(perm), global_bs)]
    return [b[rank::world] for b in batches if b[rank::world]]


class EpochBatchSampler:
    """Batches of ``(index, flip)`` for the current epoch, from batch ``start`` on (exact resume mid-epoch).

    Flips are drawn per (seed, epoch) from their own generator: they never touch the global RNG and do not depend
    on data-loader workers. With ``weights`` (one per item) an epoch draws its items in proportion to them.
    """

    def __init__(self, n: int, batch_size: int, seed: int, rank: int = 0, world: int = 1,
                 flip: bool | list[float] = False, weights: list[float] | None = None, jitter: float = 0.0,
                 jitter_kind: str = "affine", jitter_epochs: int | None = None) -> None:
        """``flip``: True flips each item with chance 0.5 (pix2pixHD), or one chance per item (``mirror``)."""
        self.n, self.batch_size, self.seed, self.rank, self.world = n, batch_size, seed, rank, world
        if isinstance(flip, bool):
            self.flip_chances = [0.5] * n if flip else None
        else:
            if len(flip) != n:
                raise ValueError(f"one flip chance per item: got {len(flip)} for {n} items")
            self.flip_chances = [float(c) for c in flip] if any(flip) else None
        self.weights, self.jitter, self.jitter_kind, self.jitter_epochs = weights, jitter, jitter_kind, jitter_epochs
        self.epoch, self.start = 0, 0

    def set_epoch(self, epoch: int, start: int = 0) -> None:
        self.epoch, self.start = epoch, start

    def batches(self) -> list[list[int]]:
        return epoch_batches(self.n, self.batch_size, self.seed, self.epoch, self.rank, self.world, self.weights)

    @property
    def flip(self) -> bool:
        """Whether any item may be flipped."""
        return self.flip_chances is not None

    def flips(self) -> list[bool]:
        if self.flip_chances is None:
            return [False] * self.n
        g = torch.Generator().manual_seed(self.seed * 7_919 + self.epoch * 100_003 + 1)
        return [u < c for u, c in zip(torch.rand(self.n, generator=g).tolist(), self.flip_chances)]

    def _per_draw(self, batches: list[list[int]], draw: Callable[[int, torch.Generator], list],
                  salt: int) -> list[list]:
        """One value per drawn item of the epoch, ``draw(count, generator)`` from a generator of (seed, epoch, rank,
        ``salt``), drawn for every batch from the epoch's first: a resumed epoch gets the values the uninterrupted
        one did."""
        g = torch.Generator().manual_seed(self.seed * 7_919 + self.epoch * 100_003 + self.rank * 10_007 + salt)
        values = iter(draw(sum(len(b) for b in batches), g))
        return [[next(values) for _ in b] for b in batches]

    def jitters(self, batches: list[list[int]]) -> list[list[tuple]] | None:
        """One random transform per drawn item of the epoch (``jitter > 0``, and the epoch one of the first
        ``jitter_epochs`` where that is not None)."""
        if not self.jitter or (self.jitter_epochs is not None and self.epoch >= self.jitter_epochs):
            return None
        return self._per_draw(batches, lambda n, g: jitter_draws(n, self.jitter, g, self.jitter_kind), 2)

    def drawn_flips(self, batches: list[list[int]]) -> list[list[bool]]:
        """Whether each drawn item of the epoch is flipped: per item (:meth:`flips`), or with ``weights``, where an
        item may be drawn several times, per draw."""
        if self.weights is None or self.flip_chances is None:
            flips = self.flips()
            return [[flips[i] for i in b] for b in batches]
        draws = self._per_draw(batches, lambda n, g: torch.rand(n, generator=g).tolist(), 3)
        return [[u < self.flip_chances[i] for u, i in zip(us, b)] for us, b in zip(draws, batches)]

    def __iter__(self):
        batches = self.batches()
        flips, jitters = self.drawn_flips(batches), self.jitters(batches)
        for k in range(self.start, len(batches)):
            if jitters is None:
                yield list(zip(batches[k], flips[k]))
            else:
                yield list(zip(batches[k], flips[k], jitters[k]))

    def __len__(self) -> int:
        return max(0, len(self.batches()) - self.start)

    @property
    def batches_per_epoch(self) -> int:
        return len(self.batches())
