"""The crops that map frames to training images, and keypoints read back in training-image pixels.

A video (or any sequence) has one crop for all its frames (``crop.json``): the character keeps its place and size
from frame to frame. Independent images each have their own (``crops.json``, frame id -> crop), since they may
differ in size and framing; :class:`Crops` reads either.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

import cv2
import numpy as np

from dancenow_utils.io_utils import atomic_write_text
from dancenow_utils.layout import DatasetLayout
from dancenow_utils.pose.keypoints import Person, read_openpose_json

_NAMES = DatasetLayout(".")  # the file names of a keypoint folder (saved into staging folders too)


@dataclass
class Crop:
    """A region of the original frame, ``width/scale`` x ``height/scale`` pixels from ``(x0, y0)``, resized to
    ``width`` x ``height`` for training (the preset's aspect ratio: square, or EDN's 2:1)."""

    x0: float
    y0: float
    scale: float
    width: int
    height: int

    @property
    def size(self) -> tuple[int, int]:
        return self.width, self.height

    def _warp(self, img: np.ndarray, interp: int) -> np.ndarray:
        s = self.scale
        m = np.array([[s, 0, -self.x0 * s], [0, s, -self.y0 * s]], np.float32)
        return cv2.warpAffine(img, m, (self.width, self.height), flags=interp, borderMode=cv2.BORDER_CONSTANT,
                              borderValue=0)

    def apply_image(self, rgb: np.ndarray) -> np.ndarray:
        return self._warp(rgb, cv2.INTER_AREA if self.scale < 1 else cv2.INTER_LINEAR)

    def apply_labels(self, labels: np.ndarray) -> np.ndarray:
        """The crop of an index map (label or instance map): nearest-neighbour sampling, 0 outside the frame."""
        return self._warp(labels, cv2.INTER_NEAREST)

    def apply_person(self, p: Person) -> Person:
        return p.transformed(self.scale, (-self.x0 * self.scale, -self.y0 * self.scale))

    def resized(self, width: int, height: int) -> Crop:
        """The same region drawn at another size of the same aspect (the region's centre is kept)."""
        if (width, height) == self.size:
            return self
        s = self.scale * width / self.width
        cx, cy = self.x0 + self.width / self.scale / 2, self.y0 + self.height / self.scale / 2
        return Crop(cx - width / s / 2, cy - height / s / 2, s, width, height)

    def save(self, path: Path) -> None:
        atomic_write_text(path, json.dumps(asdict(self), indent=2) + "\n")

    @classmethod
    def load(cls, path: Path) -> Crop:
        path = Path(path)
        if not path.exists():
            raise FileNotFoundError(f"{path}: no crop file; run pose extraction (notebook 01) on the target first")
        try:
            data = json.loads(path.read_text())
            if "side" in data:  # written before crops had an aspect ratio: a square
                size = int(data["image_size"])
                return cls(float(data["x0"]), float(data["y0"]), size / float(data["side"]), size, size)
            return cls(**data)
        except (json.JSONDecodeError, TypeError, KeyError) as exc:
            raise ValueError(f"{path}: not a valid crop file ({exc}); re-run pose extraction") from None

    @classmethod
    def around(cls, people: list[Person], frame_size: tuple[int, int], width: int, height: int,
               margin: float = 0.12) -> Crop:
        """One region of aspect ``width:height`` covering every keypoint of the video (robust percentiles), with a
        margin, inside the frame where it fits."""
        pts = np.concatenate([p.all_points() for p in people if p is not None] or [np.zeros((0, 2))])
        w, h = frame_size
        aspect = width / height
        if len(pts) == 0:
            region_h = min(h, w / aspect)
            return cls((w - region_h * aspect) / 2, (h - region_h) / 2, height / region_h, width, height)
        lo = np.percentile(pts, 0.5, axis=0)
        hi = np.percentile(pts, 99.5, axis=0)
        center = (lo + hi) / 2
        extent = (hi - lo) * (1 + 2 * margin)
        region_h = max(float(extent[1]), float(extent[0]) / aspect, 16.0)
        region_w = region_h * aspect
        if region_w <= w and region_h <= h:  # keep the region inside the frame when it fits (no black borders)
            x0 = float(np.clip(center[0] - region_w / 2, 0, w - region_w))
            y0 = float(np.clip(center[1] - region_h / 2, 0, h - region_h))
        else:
            x0, y0 = float(center[0] - region_w / 2), float(center[1] - region_h / 2)
        return cls(x0, y0, height / region_h, width, height)


@dataclass
class Crops:
    """The crops of one dataset phase: one for every frame (``single``) or one per frame id (``per_frame``)."""

    single: Crop | None = None
    per_frame: dict[str, Crop] | None = None

    def of(self, frame_id: str) -> Crop:
        if self.per_frame is None:
            assert self.single is not None
            return self.single
        try:
            return self.per_frame[frame_id]
        except KeyError:
            raise KeyError(f"no crop for {frame_id!r} in crops.json; re-run pose extraction") from None

    @property
    def size(self) -> tuple[int, int]:
        """(width, height) of the training images the crops make."""
        crop = self.single if self.single is not None else next(iter(self.per_frame.values()))
        return crop.size

    def save(self, keypoints_dir: Path) -> None:
        """``crop.json`` (one crop) or ``crops.json`` (one per frame) in ``keypoints_dir``."""
        if self.single is not None:
            self.single.save(Path(keypoints_dir) / _NAMES.crop.name)
        else:
            data = {k: asdict(c) for k, c in sorted(self.per_frame.items())}
            atomic_write_text(Path(keypoints_dir) / _NAMES.crops.name, json.dumps(data, indent=1) + "\n")

    @staticmethod
    def exist(layout: DatasetLayout) -> bool:
        return layout.crop.exists() or layout.crops.exists()

    @classmethod
    def load(cls, layout: DatasetLayout) -> Crops:
        if layout.crops.exists():
            try:
                data = json.loads(layout.crops.read_text())
                return cls(per_frame={k: Crop(**v) for k, v in data.items()})
            except (json.JSONDecodeError, TypeError, AttributeError) as exc:
                raise ValueError(f"{layout.crops}: not a valid crops file ({exc}); re-run pose extraction") from None
        return cls(single=Crop.load(layout.crop))


def people_in_image(layout: DatasetLayout, names: list[str], width: int, height: int) -> list[Person]:
    """Each frame's person, mapped from original-frame pixels into the training images' pixels (``width`` x
    ``height``) with the crop(s) saved by extraction; an empty :class:`Person` where the JSON has nobody."""
    crops = Crops.load(layout)
    out = []
    for name in names:
        crop = crops.of(name)
        sx, sy = width / crop.width, height / crop.height
        people = read_openpose_json(layout.keypoint_file(name))
        p = crop.apply_person(people[0]) if people else Person()
        out.append(p.transformed(np.array([sx, sy], np.float32), (0.0, 0.0)))
    return out


def keypoint_files(folder: str | Path) -> list[Path]:
    """Every ``*_keypoints.json`` of a folder, sorted; errors name the folder and the fix."""
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder}: no such keypoint folder; run pose extraction on that video first")
    files = sorted(folder.glob("*_keypoints.json"))
    if not files:
        raise ValueError(f"{folder}: no *_keypoints.json files; run pose extraction on that video first")
    return files


def read_single_person(path: str | Path) -> Person | None:
    """The one person of an OpenPose JSON file; None when it holds nobody or several people."""
    people = read_openpose_json(path)
    return people[0] if len(people) == 1 else None


def load_keypoint_folder(folder: str | Path) -> list[Person | None]:
    """Every ``*_keypoints.json`` of a folder (sorted), one person or ``None`` per frame."""
    return [read_single_person(f) for f in keypoint_files(folder)]


def normalisation_target(keypoints_dir: str | Path) -> tuple[list[Person | None], Crop]:
    """A target's poses for normalisation and the crop to draw the normalised poses with.

    A video target: its poses in frame pixels and its one crop. A target of independent images (``crops.json``):
    each pose mapped into its training image's pixels with its own crop, and the identity crop of that size.
    """
    layout = DatasetLayout.of_keypoints_dir(keypoints_dir)
    if not layout.crops.exists():
        return load_keypoint_folder(keypoints_dir), Crop.load(layout.crop)
    crops = Crops.load(layout)
    people: list[Person | None] = []
    for f in keypoint_files(keypoints_dir):
        found = read_openpose_json(f)
        frame_id = f.name.removesuffix("_keypoints.json")
        people.append(crops.of(frame_id).apply_person(found[0]) if len(found) == 1 else None)
    width, height = crops.size
    return people, Crop(0.0, 0.0, 1.0, width, height)
