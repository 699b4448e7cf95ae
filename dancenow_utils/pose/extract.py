"""Step 1 of the pipeline: a video or image folder -> aligned training pairs and OpenPose JSON.

For every usable frame it writes ``{dataroot}/{phase}_A/<id>.png`` (the stick figure), ``{phase}_B/<id>.png``
(the frame) with identical names, and ``{phase}_keypoints/<id>_keypoints.json`` in original-frame pixels
(layout: :mod:`dancenow_utils.layout`). One crop per video, at the training images' aspect ratio, is computed from
all detected keypoints (no per-frame jitter) and saved as ``crop.json``, so that poses normalised onto this video
can be drawn the same way; how the stick figures were drawn is saved as ``settings.json``.

The stages live in their own modules: frame sources (:mod:`~dancenow_utils.pose.sources`), detection
(:mod:`~dancenow_utils.pose.detect`), temporal smoothing, global normalisation, the crop
(:mod:`~dancenow_utils.pose.crop`) and drawing. Frames with nobody or several people are skipped and counted.
Everything is written into a staging folder and swapped into place at the end: an error or Ctrl-C leaves the
earlier output as it was, never a half-written set.
"""

from __future__ import annotations

import os
import shutil
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from dancenow_utils.io_utils import write_image, write_json
from dancenow_utils.layout import DatasetLayout
from dancenow_utils.pose.crop import Crop, load_keypoint_folder
from dancenow_utils.pose.detect import detect
from dancenow_utils.pose.keypoints import Person, write_openpose_json
from dancenow_utils.pose.normalize import DEFAULT_METHOD, check_method, normalize_sequence
from dancenow_utils.pose.render import render_pose
from dancenow_utils.pose.settings import PoseSettings
from dancenow_utils.pose.smoothing import smooth_sequence
from dancenow_utils.pose.sources import FrameSource


def image_size_of(image_size: int | tuple[int, int] | list[int]) -> tuple[int, int]:
    """``256`` -> ``(256, 256)``; ``[512, 256]`` -> ``(512, 256)`` (width, height), validated."""
    if isinstance(image_size, (int, np.integer)) and not isinstance(image_size, bool):
        size = (int(image_size), int(image_size))
    elif isinstance(image_size, (tuple, list)) and len(image_size) == 2:
        size = (int(image_size[0]), int(image_size[1]))
    else:
        raise ValueError(f"image_size must be a number (square) or [width, height], got {image_size!r}")
    if min(size) < 16:
        raise ValueError(f"image_size must be at least 16 px on each side, got {image_size!r}")
    return size


@dataclass
class ExtractionSummary:
    source: str
    total: int = 0
    written: int = 0
    no_person: int = 0
    multiple: int = 0
    unreadable: int = 0
    bad_json: int = 0
    ignored_files: list[str] = field(default_factory=list)
    messages: list[str] = field(default_factory=list)

    @property
    def detection_rate(self) -> float:
        return self.written / self.total if self.total else 0.0

    def to_dict(self) -> dict:
        d = asdict(self)
        d["detection_rate"] = round(self.detection_rate, 4)
        return d

    def __str__(self) -> str:
        lines = [f"{self.source}: {self.written} of {self.total} frames written "
                 f"({100 * self.detection_rate:.1f} %)"]
        for key in ("no_person", "multiple", "unreadable", "bad_json"):
            if getattr(self, key):
                lines.append(f"  skipped, {key.replace('_', ' ')}: {getattr(self, key)}")
        if self.ignored_files:
            lines.append(f"  ignored non-image files: {', '.join(self.ignored_files[:5])}"
                         + (" ..." if len(self.ignored_files) > 5 else ""))
        lines += [f"  {m}" for m in self.messages[:5]]
        return "\n".join(lines)


# ---------------------------------------------------------------------------------------------------- pipeline
def _swap_into_place(staging: dict[str, Path], final: dict[str, Path]) -> None:
    """Replace the final folders by the staged ones; the old ones are removed only after all renames."""
    backups = {}
    for key, dst in final.items():
        if dst.exists():
            backups[key] = dst.with_name(f".{dst.name}.old")
            if backups[key].exists():
                shutil.rmtree(backups[key])
            os.replace(dst, backups[key])
    for key, src in staging.items():
        os.replace(src, final[key])
    for b in backups.values():
        shutil.rmtree(b, ignore_errors=True)


def extract(
    source: str | Path,
    dataroot: str | Path = "dataset",
    phase: str = "train",
    backend: str = "mediapipe",
    weights: str = "",
    keypoints_dir: str = "",
    image_size: int | tuple[int, int] | list[int] = 256,
    pose_format: str = "BODY_25",
    draw_face: bool = True,
    draw_hands: bool = True,
    smooth_window: int = 7,
    frame_step: int = 1,
    max_frames: int = 0,
    normalize_to: str = "",
    normalize_method: str = DEFAULT_METHOD,
    write_frames: bool = True,
    workers: int = 0,
    progress: bool = True,
) -> ExtractionSummary:
    """Run pose extraction on ``source`` and write aligned pairs under ``dataroot`` (see module docstring).

    ``image_size`` is a side (square) or ``[width, height]`` (e.g. ``[512, 256]`` for the EDN presets).
    ``normalize_to`` names a target's keypoint folder (e.g. ``dataset/train_keypoints``): poses are then mapped
    onto that target with global pose normalisation (``normalize_method``: ``"project"`` or EDN's ``"edn"``, see
    :mod:`~dancenow_utils.pose.normalize`) and drawn with the target's crop, ready for transfer.
    """
    width, height = image_size_of(image_size)
    settings = PoseSettings(pose_format, bool(draw_face), bool(draw_hands), width, height, int(smooth_window),
                            backend)
    src = FrameSource.open(source, frame_step, max_frames)
    target_people, target_crop = None, None
    if normalize_to:  # check the target before any work
        check_method(normalize_method)
        target_people = load_keypoint_folder(normalize_to)
        target_crop = Crop.load(Path(normalize_to) / "crop.json")
    summary = ExtractionSummary(str(source), ignored_files=src.ignored_files())

    results = detect(src, backend, weights, keypoints_dir, draw_face, draw_hands, workers, progress)
    summary.total = len(results)
    for r in results:
        if r.status != "ok":
            setattr(summary, r.status, getattr(summary, r.status) + 1)
            if r.message:
                summary.messages.append(r.message)
    if summary.total == 0:
        raise ValueError(f"{source}: no frames could be read")

    raw = [r.person for r in results]
    if target_people is not None:
        if sum(p is not None for p in raw) < 3:
            raise ValueError(f"{source}: too few frames with a person to normalise ({summary.no_person} had none)")
        frame_width = next((r.size[0] for r in results if r.status == "ok" and r.size[0]), None)
        seq = normalize_sequence(raw, target_people, normalize_method, smooth_window, frame_width)
    else:
        seq = smooth_sequence(raw, window=smooth_window)
    ok = [(r, p) for r, p in zip(results, seq) if r.status == "ok" and p is not None]
    if not ok:
        raise ValueError(f"{source}: nobody was found in any of its {summary.total} frames; "
                         "check that a whole person is visible, or try another backend")
    crop = (target_crop.resized(width, height) if target_crop is not None
            else Crop.around([p for _, p in ok], ok[0][0].size, width, height))

    layout = DatasetLayout(dataroot, phase)
    final = layout.folders()
    staging = {k: v.with_name(f".{v.name}.staging") for k, v in final.items()}
    if not write_frames:
        final.pop("B")
        staging.pop("B")
    for d in staging.values():
        shutil.rmtree(d, ignore_errors=True)
        d.mkdir(parents=True)

    def write_pair(frame_id: str, rgb: np.ndarray | None, person: Person) -> None:
        stick = render_pose([crop.apply_person(person)], width, height, pose_format, draw_face, draw_hands)
        if rgb is not None:
            write_image(staging["B"] / f"{frame_id}.png", crop.apply_image(rgb))
        write_image(staging["A"] / f"{frame_id}.png", stick)
        write_openpose_json(staging["keypoints"] / f"{frame_id}_keypoints.json", [person], pose_format)

    try:
        by_pos = {r.pos: p for r, p in ok}
        frames = src.frames() if write_frames else ((r.pos, r.frame_id, None) for r, _ in ok)
        # OpenCV's drawing and encoding and the file writes release the GIL: two threads write pairs
        with tqdm(total=len(ok), desc="writing pairs", disable=not progress) as bar, \
                ThreadPoolExecutor(2) as pool:
            in_flight: list = []
            for pos, frame_id, rgb in frames:
                person = by_pos.get(pos)
                if person is None:
                    continue
                in_flight.append(pool.submit(write_pair, frame_id, rgb if write_frames else None, person))
                if len(in_flight) >= 8:  # bounded: long high-resolution videos must not pile up in memory
                    in_flight.pop(0).result()
                    bar.update(1)
            for fut in in_flight:
                fut.result()
                bar.update(1)
        summary.written = len(ok)
        crop.save(staging["keypoints"] / "crop.json")
        settings.save(staging["keypoints"] / "settings.json")
        write_json(staging["keypoints"] / "summary.json", summary.to_dict())
        _swap_into_place(staging, final)
    finally:
        for d in staging.values():
            shutil.rmtree(d, ignore_errors=True)
    return summary
