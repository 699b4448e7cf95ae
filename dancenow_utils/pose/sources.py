"""Frame sources for pose extraction: a video file, or a folder of images (``frame_step``, ``max_frames``).

A video's frames are a sequence; a folder's images are independent pictures unless the user says they are frames
of one video (``sequence``). Bad parameters are refused here, before any work, naming the parameter.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

from dancenow_utils.io_utils import IMAGE_EXTENSIONS, read_image
from dancenow_utils.params import check_int
from dancenow_utils.video import VIDEO_EXTENSIONS, read_frames


@dataclass(frozen=True)
class FrameSource:
    """A video file or a folder of images, with the frames to use (``frame_step``, ``max_frames``)."""

    path: Path
    frame_step: int = 1
    max_frames: int = 0

    @classmethod
    def open(cls, source: str | Path, frame_step: int = 1, max_frames: int = 0) -> FrameSource:
        frame_step = check_int("frame_step", frame_step, 1, " (1 = every frame, 2 = every other frame...)")
        max_frames = check_int("max_frames", max_frames, 0, " (0 = all frames)")
        path = Path(source)
        if not str(source):
            raise ValueError("source is empty: give a video file or a folder of images")
        if not path.exists():
            raise FileNotFoundError(f"{path}: no such video or image folder; check the `source` path")
        if path.is_file() and path.suffix.lower() not in VIDEO_EXTENSIONS:
            raise ValueError(f"{path}: not a video ({', '.join(VIDEO_EXTENSIONS)}); or pass a folder of images")
        src = cls(path, frame_step, max_frames)
        if path.is_dir() and not src.image_files():
            raise ValueError(f"{path}: the folder has no images ({', '.join(IMAGE_EXTENSIONS)})")
        return src

    @property
    def is_video(self) -> bool:
        return self.path.is_file()

    def image_files(self) -> list[Path]:
        files = sorted(p for p in self.path.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS)
        files = files[:: self.frame_step]
        return files[: self.max_frames] if self.max_frames else files

    def image_sizes(self) -> dict[str, tuple[int, int]]:
        """``{image stem: (width, height)}`` of a folder's images, from their headers (nothing decoded)."""
        sizes = {}
        for f in self.image_files():
            try:
                with Image.open(f) as im:
                    sizes[f.stem] = im.size
            except Exception:  # unreadable: detection reports it by name
                continue
        return sizes

    def transparent_images(self) -> list[str]:
        """The folder's images with transparent pixels (read as composited on white, :func:`read_image`)."""
        found = []
        for f in [] if self.is_video else self.image_files():
            try:
                with Image.open(f) as im:
                    if (im.mode in ("RGBA", "LA", "PA") and im.getchannel("A").getextrema()[0] < 255) or \
                            (im.mode == "P" and "transparency" in im.info):
                        found.append(f.name)
            except Exception:  # unreadable: detection reports it by name
                continue
        return found

    def header_frames(self) -> int:
        """The frame count a video's header announces, after ``frame_step`` and ``max_frames`` (0 if unknown)."""
        cap = cv2.VideoCapture(str(self.path))
        n = int(cap.get(cv2.CAP_PROP_FRAME_COUNT))
        cap.release()
        if n <= 0:
            return 0
        n = math.ceil(n / self.frame_step)
        return min(n, self.max_frames) if self.max_frames else n

    def ignored_files(self) -> list[str]:
        if self.is_video:
            return []
        return sorted(p.name for p in self.path.iterdir()
                      if p.is_file() and p.suffix.lower() not in IMAGE_EXTENSIONS and not p.name.startswith("."))

    def frames(self, start: int = 0, stop: int | None = None) -> Iterator[tuple[int, str, np.ndarray | None]]:
        """Yield ``(position, frame_id, rgb or None if unreadable)`` for positions in ``[start, stop)``."""
        if self.is_video:
            limit = self.max_frames - start if self.max_frames else 0
            frames = read_frames(self.path, self.frame_step, limit, start=start * self.frame_step)
            for pos, (index, rgb) in enumerate(frames, start):
                if stop is not None and pos >= stop:
                    break
                yield pos, f"frame_{index:06d}", rgb
        else:
            files = self.image_files()[start:stop]
            for pos, f in enumerate(files, start):
                try:
                    rgb = read_image(f)
                except ValueError:
                    rgb = None
                yield pos, f.stem, rgb

    def __len__(self) -> int:
        if not self.is_video:
            return len(self.image_files())
        return self.header_frames() or sum(1 for _ in self.frames())
