"""Write the built-in demo: a target character's training and held-out clips, a source dancer, ground truth.

Everything is deterministic from ``seed``: the same call writes byte-identical files.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from tqdm.auto import tqdm

from dancenow_utils.io_utils import atomic_write_text, write_image
from dancenow_utils.params import check_int
from dancenow_utils.pose.keypoints import Person, write_openpose_json
from dancenow_utils.pose.render import render_pose
from dancenow_utils.pose.settings import PoseSettings
from dancenow_utils.synthetic.character import SOURCE_STYLE, TARGET_STYLE, CharacterStyle, background, render_with_parts
from dancenow_utils.synthetic.dance import FPS, dance_trajectory
from dancenow_utils.video import write_video


@dataclass(frozen=True)
class DemoPaths:
    """Where :func:`make_demo` puts each clip and its ground truth."""

    root: Path

    def __post_init__(self) -> None:
        object.__setattr__(self, "root", Path(self.root))

    def video(self, clip: str) -> Path:
        return self.root / f"{clip}.mp4"

    def keypoints(self, clip: str) -> Path:
        return self.root / f"{clip}_keypoints"

    def masks(self, clip: str) -> Path:
        return self.root / f"{clip}_masks"

    def parts(self, clip: str) -> Path:
        """Body-part label maps (single-channel PNGs, classes of :data:`~dancenow_utils.synthetic.character.PARTS`)."""
        return self.root / f"{clip}_parts"

    def instances(self, clip: str) -> Path:
        """Per-person instance maps (0 background, 1 the character)."""
        return self.root / f"{clip}_instances"

    def frames(self, clip: str) -> Path:
        return self.root / f"{clip}_frames"

    @property
    def contact_sheet(self) -> Path:
        return self.root / "contact_sheet.png"

    @property
    def manifest(self) -> Path:
        return self.root / "demo.json"


CLIPS = ("target_train", "target_heldout", "source_dancer")
# what a demo written by this version holds; a demo of another version is written again. 2 (issue 25): the dances'
# clasp move, the held-out clip opening with the arms-in-front moves, depth sidecars beside the keypoints
DEMO_VERSION = 2


def frame_name(i: int) -> str:
    return f"frame_{i:06d}"


def _write_clip(paths: DemoPaths, clip: str, style: CharacterStyle, traj: np.ndarray, size: int,
                save_frames: bool, progress: bool) -> list[tuple[np.ndarray, Person]]:
    """Render a clip; write its video, keypoint JSON, masks, part and instance maps (and PNG frames); return a few
    samples."""
    bg = background(style, size, size)
    samples = []
    sample_every = max(1, len(traj) // 6)

    def frames():
        for i, params in enumerate(tqdm(traj, desc=clip, disable=not progress, leave=False)):
            img, mask, person, parts = render_with_parts(style, params, size, size, bg)
            name = frame_name(i)
            write_openpose_json(paths.keypoints(clip) / f"{name}_keypoints.json", [person])
            write_image(paths.masks(clip) / f"{name}.png", mask)
            write_image(paths.parts(clip) / f"{name}.png", parts)
            write_image(paths.instances(clip) / f"{name}.png", (parts > 0).astype(np.uint8))
            if save_frames:
                write_image(paths.frames(clip) / f"{name}.png", img)
            if i % sample_every == 0:
                samples.append((img, person))
            yield img

    write_video(paths.video(clip), frames(), FPS)
    return samples


def contact_sheet(rows: list[tuple[str, list[tuple[np.ndarray, Person]]]], cols: int = 6) -> np.ndarray:
    """A grid of sample frames with their ground-truth skeletons drawn on top, one labelled row per clip."""
    out_rows = []
    for label, samples in rows:
        tiles = []
        for img, person in samples[:cols]:
            h, w = img.shape[:2]
            tiles.append(render_pose([person], PoseSettings(draw_face=True, draw_hands=True), canvas=img))
        while len(tiles) < cols:
            tiles.append(np.zeros_like(tiles[0]))
        row = np.concatenate(tiles, axis=1)
        cv2.putText(row, label, (6, 18), cv2.FONT_HERSHEY_SIMPLEX, 0.55, (0, 0, 0), 3, cv2.LINE_AA)
        cv2.putText(row, label, (6, 18), cv2.FONT_HERSHEY_SIMPLEX, 0.55, (255, 255, 255), 1, cv2.LINE_AA)
        out_rows.append(row)
    return np.concatenate(out_rows, axis=0)


def make_demo(out_dir: str | Path, size: int = 256, n_train: int = 1000, n_heldout: int = 240,
              n_source: int = 300, seed: int = 0, progress: bool = True) -> DemoPaths:
    """Write the demo clips and ground truth under ``out_dir`` and return their paths.

    - ``target_train.mp4``: the target character dancing (training moves), with ``_keypoints/`` (OpenPose JSON,
      with the depth of the character's drawing order beside each file) and ``_masks/``;
      every clip also has ``_parts/`` (body-part label maps) and ``_instances/`` (per-person instance maps)
    - ``target_heldout.mp4`` plus ``_frames/``: the same character on move combinations training never uses
    - ``source_dancer.mp4``: a different dancer (height, limbs, clothes, place in frame) to transfer from
    - ``contact_sheet.png``: sample frames with their skeletons; ``demo.json``: what was made and how
    """
    for what, n in (("size", size), ("n_train", n_train), ("n_heldout", n_heldout), ("n_source", n_source)):
        check_int(what, n, 1, " (frames of a demo clip)" if what != "size" else " (pixels)")
    paths = DemoPaths(Path(out_dir))
    paths.root.mkdir(parents=True, exist_ok=True)
    plan = {
        "target_train": (TARGET_STYLE, dance_trajectory(n_train, seed, "train"), False),
        "target_heldout": (TARGET_STYLE, dance_trajectory(n_heldout, seed + 1, "heldout"), True),
        "source_dancer": (SOURCE_STYLE, dance_trajectory(n_source, seed + 2, "all"), False),
    }
    rows = []
    for clip, (style, traj, save_frames) in plan.items():
        rows.append((clip, _write_clip(paths, clip, style, traj, size, save_frames, progress)))
    write_image(paths.contact_sheet, contact_sheet(rows))
    manifest = {"version": DEMO_VERSION, "seed": seed, "size": size, "fps": FPS,
                "frames": {clip: len(traj) for clip, (_, traj, _) in plan.items()},
                "clips": {clip: paths.video(clip).name for clip in CLIPS}}
    atomic_write_text(paths.manifest, json.dumps(manifest, indent=2) + "\n")
    return paths
