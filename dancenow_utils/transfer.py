"""Pose transfer (step 4): make the target character dance like a source video.

The source's poses are extracted with step 1's code, normalised onto the target (global pose normalisation),
smoothed, drawn as stick figures in the target's crop, and turned into frames by the trained generator.
``results/<name>/`` receives the frames, ``transfer.mp4``, ``side_by_side.mp4`` (source | skeleton | generated),
a small ``transfer.gif`` and an ``index.html``. A folder that already holds ``test_A`` pose images (the original
project's flow) is used as it is.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from tqdm.auto import tqdm

from dancenow_utils.data import load_resized
from dancenow_utils.io_utils import atomic_write_text, list_images, write_image
from dancenow_utils.video import write_gif, write_video
from dancenow_utils.visualize import image_table_page, label


@dataclass
class TransferResult:
    out_dir: Path
    n_frames: int
    video: Path
    side_by_side: Path
    gif: Path
    page: Path


def prepare_poses(source: str | Path, dataroot: str | Path = "dataset_transfer", normalize: bool = True,
                  target_keypoints: str | Path = "dataset/train_keypoints", smooth_window: int = 7,
                  image_size: int = 256, draw_face: bool = True, draw_hands: bool = True, max_frames: int = 0,
                  progress: bool = True) -> Path:
    """Extract, normalise and draw the source's poses into ``{dataroot}/test_A``; returns that folder."""
    from dancenow_utils.pose.extract import extract

    summary = extract(source, dataroot, "test", image_size=image_size, smooth_window=smooth_window,
                      draw_face=draw_face, draw_hands=draw_hands, max_frames=max_frames,
                      normalize_to=str(target_keypoints) if normalize else "", write_frames=False,
                      progress=progress)
    print(summary)
    return Path(dataroot) / "test_A"


def _source_frames(source: str | Path | None, names: list[str], size: tuple[int, int]) -> list[np.ndarray | None]:
    """The source frame for each pose name (``frame_000123`` -> frame 123 of a video, or the image file)."""
    w, h = size
    if not source or not Path(source).exists():
        return [None] * len(names)
    src = Path(source)
    if src.is_dir():
        files = {p.stem: p for p in list_images(src)}
        return [load_resized(files[n], w, h) if n in files else None for n in names]
    wanted = {int(n.split("_")[-1]): k for k, n in enumerate(names) if n.startswith("frame_")}
    out: list[np.ndarray | None] = [None] * len(names)
    from dancenow_utils.video import read_frames

    for index, rgb in read_frames(src):
        if index in wanted:
            out[wanted[index]] = cv2.resize(rgb, (w, h), interpolation=cv2.INTER_AREA)
        if index >= max(wanted, default=-1):
            break
    return out


def run_transfer(name: str, poses_dir: str | Path, results_dir: str | Path = "results", source: str | Path = "",
                 which_epoch: str = "latest", checkpoints_dir: str | Path = "checkpoints", fps: float = 30.0,
                 batch_size: int = 8, device: str = "auto", progress: bool = True) -> TransferResult:
    """Generate a frame for every pose image in ``poses_dir`` and write the videos and page."""
    from dancenow_utils.face import apply_face_stage, load_face_stage
    from dancenow_utils.inference import generate_frames, load_generator
    from dancenow_utils.stages import describe_stages

    G, cfg, dev = load_generator(name, which_epoch, checkpoints_dir, device)
    print(describe_stages(name, checkpoints_dir))
    files = list_images(poses_dir)
    if not files:
        raise ValueError(f"{poses_dir}: no pose images to transfer; check the source or run prepare_poses")
    names = [f.stem for f in files]
    poses = [load_resized(f, cfg.width, cfg.height) for f in files]
    sources = _source_frames(source, names, (cfg.width, cfg.height))
    out = Path(results_dir) / name
    staging = out.with_name(f".{out.name}.staging")
    shutil.rmtree(staging, ignore_errors=True)
    (staging / "frames").mkdir(parents=True)
    fakes = list(tqdm(generate_frames(G, poses, dev, batch_size, cfg.temporal), total=len(poses),
                      desc="generating frames", disable=not progress))
    face = load_face_stage(name, checkpoints_dir, dev)
    phase = Path(poses_dir).name.removesuffix("_A")  # dataset_transfer/test_A -> test_keypoints beside it
    if face is not None and (Path(poses_dir).parent / f"{phase}_keypoints" / "crop.json").exists():
        from dancenow_utils.pose.extract import people_in_image

        people = people_in_image(Path(poses_dir).parent, phase, names, cfg.width, cfg.height)
        fakes = apply_face_stage(face, fakes, poses, people)
    elif face is not None:
        print(f"face stage not applied: {poses_dir} has no keypoints beside it (ready pose images)")
    for n, fake in zip(names, fakes):
        write_image(staging / "frames" / f"{n}.png", fake)
    blank = np.zeros_like(fakes[0])
    side = [np.concatenate([label(s if s is not None else blank, "source"), label(p, "pose"),
                            label(f, "generated")], axis=1) for s, p, f in zip(sources, poses, fakes)]
    write_video(staging / "transfer.mp4", fakes, fps)
    write_video(staging / "side_by_side.mp4", side, fps)
    step = max(1, len(side) // 60)
    write_gif(staging / "transfer.gif", side[::step], fps=min(fps / step, 15), max_side=480)
    rows = [(f"frame {n}", [("side by side", f"frames/{n}.png")]) for n in names[:: max(1, len(names) // 12)]]
    image_table_page(staging / "index.html", f"Pose transfer: {name}", rows, width=cfg.width,
                     note='<video> files: transfer.mp4 and side_by_side.mp4 (source | pose | generated); '
                          'transfer.gif is a preview.')
    atomic_write_text(staging / "transfer.json", json.dumps(
        {"name": name, "checkpoint": which_epoch, "frames": len(fakes), "fps": fps, "source": str(source)},
        indent=2) + "\n")
    if out.exists():
        shutil.rmtree(out)
    staging.rename(out)
    return TransferResult(out, len(fakes), out / "transfer.mp4", out / "side_by_side.mp4", out / "transfer.gif",
                          out / "index.html")
