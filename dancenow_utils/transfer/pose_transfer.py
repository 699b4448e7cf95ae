"""Pose transfer (step 4): make the target character dance like a source video.

The source's poses are extracted with step 1's code, normalised onto the target (global pose normalisation),
smoothed, drawn as stick figures in the target's crop **with the target dataset's drawing settings**, and turned
into frames by the trained generator. ``results/<name>/`` receives the frames, ``transfer.mp4``,
``side_by_side.mp4`` (source | skeleton | generated), a small ``transfer.gif`` and an ``index.html``. A folder that
already holds ``test_A`` pose images (the original project's flow) is used as it is. Frames are streamed: memory
stays flat however long the video. A label-map run translates a folder of label maps (``test_A``, with ``test_inst``
when it uses instance maps) as they are: pose extraction and normalisation do not apply to them.
"""

from __future__ import annotations

import dataclasses
import shutil
import warnings
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from tqdm.auto import tqdm

from dancenow_utils.data.datasets import load_resized
from dancenow_utils.data.labels import LabelInput, input_picture
from dancenow_utils.folders import clear_folder, folder_kind, mark, require_kind
from dancenow_utils.io_utils import (
    WriteError,
    list_images,
    read_image,
    reporting_write_errors,
    write_error,
    write_image,
    write_json,
)
from dancenow_utils.layout import DatasetLayout, ResultsLayout, checkpoint_tag
from dancenow_utils.models.inference import Generator
from dancenow_utils.params import check_bool, check_float, check_int
from dancenow_utils.pose.crop import Crops, people_in_image
from dancenow_utils.pose.extract import ExtractionSummary, ExtractionWarning, extract_poses, image_size_of
from dancenow_utils.pose.normalize import DEFAULT_METHOD
from dancenow_utils.pose.settings import PoseSettings
from dancenow_utils.transfer.onnx_runtime import describe_runtime, load_runtime
from dancenow_utils.video import VideoWriter, read_frames, write_gif
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
                  image_size: int | tuple[int, int] | list[int] = 256, max_frames: int = 0,
                  normalize_method: str = DEFAULT_METHOD, progress: bool = True, sequence: bool = True) -> Path:
    """Extract, normalise and draw the source's poses into ``{dataroot}/test_A``; returns that folder.

    The stick figures are drawn the way the target dataset's were (format, face, hands: its ``settings.json``),
    so the generator sees the same kind of input it was trained on. A transfer source is a dance, so a folder of
    images is taken as consecutive frames (``sequence=True``); pass ``sequence=False`` (and ``normalize=False``)
    for unrelated pictures. Normalised poses that mostly leave the target's crop are refused (see
    :func:`~dancenow_utils.pose.extract.extract`).
    """
    normalize = check_bool("normalize", normalize)
    target = DatasetLayout.of_keypoints_dir(target_keypoints)
    drawing = PoseSettings.load(target.settings) or PoseSettings()
    width, height = image_size_of(image_size)
    settings = dataclasses.replace(  # the target's drawing, at this size, smoothed this way, detected here
        drawing, width=width, height=height, backend="mediapipe", sequence=check_bool("sequence", sequence),
        smooth_window=check_int("smooth_window", smooth_window, 1, " (1 = no smoothing)"))
    summary: ExtractionSummary = extract_poses(
        source, settings, dataroot, "test", max_frames=max_frames,
        normalize_to=str(target_keypoints) if normalize else "", normalize_method=normalize_method,
        write_frames=False, progress=progress)
    print(summary)
    return DatasetLayout(dataroot, "test").A


def source_frames(source: str | Path | None, names: list[str], size: tuple[int, int]) -> Iterator[np.ndarray | None]:
    """The source frame for each pose name in order (``frame_000123`` -> frame 123 of a video, or the image file
    of the same name), streamed; None where there is none."""
    w, h = size
    src = Path(source) if source else None
    if src is None or not src.exists():
        yield from (None for _ in names)
        return
    if src.is_dir():
        files = {p.stem: p for p in list_images(src)}
        yield from (load_resized(files[n], w, h) if n in files else None for n in names)
        return
    frames = read_frames(src)
    current = next(frames, None)
    for n in names:
        index = int(n.rsplit("_", 1)[-1]) if n.startswith("frame_") and n.rsplit("_", 1)[-1].isdigit() else -1
        while current is not None and current[0] < index:
            current = next(frames, None)
        if current is not None and current[0] == index:
            yield cv2.resize(current[1], (w, h), interpolation=cv2.INTER_AREA)
        else:
            yield None


def _people(layout: DatasetLayout, names: list[str], gen: Generator) -> list | None:
    """The poses' keypoints in image pixels, for the face stage (None for ready pose images without them)."""
    if gen.face is None:
        return None
    if not Crops.exist(layout):
        print(f"face stage not applied: {layout.A} has no keypoints beside it (ready pose images)")
        return None
    return people_in_image(layout, names, *gen.size)


def blank_poses(files: list[Path], gen: Generator | None = None) -> list[Path]:
    """The pose images with nothing drawn on them (all black; for a label-map run, all background class 0): the
    generator would draw no character there."""
    if gen is not None and gen.label_maps:
        return [f for f, item in zip(files, gen.read_inputs(files)) if not item.labels.any()]
    return [f for f in files if not read_image(f).any()]


def _blank_hint(gen: Generator) -> str:
    if gen.label_maps:
        return "Check that the label maps hold the classes the run was trained on (0 is the background)."
    return ("Re-run prepare_poses (its summary says why), e.g. with normalize_method='project' or "
            "normalize=False.")


def run_transfer(name: str, poses_dir: str | Path, results_dir: str | Path = "results", source: str | Path = "",
                 which_epoch: str | int = "latest", checkpoints_dir: str | Path = "checkpoints", fps: float = 30.0,
                 batch_size: int = 8, device: str = "auto", progress: bool = True,
                 runtime: str = "torch") -> TransferResult:
    """Generate a frame for every pose image in ``poses_dir`` and write the videos and page. ``runtime``:
    ``"torch"`` (eager PyTorch), ``"onnxruntime"`` (the exported model on ONNX Runtime, fp32) or ``"auto"`` (the
    faster here, measured: :mod:`dancenow_utils.transfer.onnx_runtime`)."""
    fps = check_float("fps", fps, meaning=" of frames per second (e.g. 30)", positive=True, text=False)
    batch_size = check_int("batch_size", batch_size, 1)
    out = ResultsLayout(results_dir, name)  # the name is checked: one folder inside results_dir
    _check_replaceable(out)
    gen = load_runtime(name, which_epoch, checkpoints_dir, device, runtime, batch_size)
    print(gen.stages)
    print(describe_runtime(gen.runtime_choice))
    files = list_images(poses_dir)
    if not files:
        raise ValueError(f"{poses_dir}: no pose images to transfer; check the source or run prepare_poses")
    blank = blank_poses(files, gen)
    if len(blank) == len(files):
        raise ValueError(f"{poses_dir}: all {len(files)} pose images are entirely black (first: "
                         f"{', '.join(f.name for f in blank[:5])}); nothing to transfer. {_blank_hint(gen)}")
    if blank:
        message = (f"{poses_dir}: {len(blank)} of {len(files)} pose images are entirely black (first: "
                   f"{', '.join(f.name for f in blank[:5])}); those frames will show no character")
        warnings.warn(message, ExtractionWarning, stacklevel=2)
    layout = DatasetLayout.of_pose_dir(poses_dir)
    gen.check_poses(layout)
    people = _people(layout, [f.stem for f in files], gen)
    try:
        result = _generate(gen, name, files, layout, people, blank, out, source, which_epoch, fps, batch_size,
                           progress)
    except BaseException as exc:
        _remove_staging(out)  # a full disk or Ctrl-C leaves nothing filling the disk
        clear = write_error(exc, out.staging)
        if clear is not None:
            raise WriteError(clear.errno, f"{clear} The transfer's staging folder {out.staging} was removed; "
                                          f"{out.dir} is as it was.") from None
        raise
    _swap_into_place(out)
    return result


def _check_replaceable(out: ResultsLayout) -> None:
    """Refuse to replace ``results/<name>`` (or its staging folder) unless it is a transfer's own output."""
    fix = ("Choose another name, or a results_dir of its own (not the checkpoints or a dataset folder); move the "
           "folder away yourself if it is yours to drop.")
    require_kind(out.dir, ("results",), "replace", fix)
    require_kind(out.staging, ("results",), "clear", fix)
    require_kind(out.backup, ("results",), "clear", fix)


def _remove_staging(out: ResultsLayout) -> None:
    if folder_kind(out.staging) == "results":
        shutil.rmtree(out.staging, ignore_errors=True)


def _swap_into_place(out: ResultsLayout) -> None:
    """Move the staging folder onto ``results/<name>``; the previous results are removed only once it is there."""
    _check_replaceable(out)  # again: the folder may have changed during generation
    with reporting_write_errors(out.dir):
        if out.backup.exists():
            shutil.rmtree(out.backup)
        if out.dir.exists():
            out.dir.rename(out.backup)
        out.staging.rename(out.dir)
        shutil.rmtree(out.backup, ignore_errors=True)


def _generate(gen: Generator, name: str, files: list[Path], layout: DatasetLayout, people: list | None,
              blank: list[Path], out: ResultsLayout, source: str | Path, which_epoch: str | int, fps: float,
              batch_size: int, progress: bool) -> TransferResult:
    """Write every frame, the videos, the GIF, the page and the record into the staging folder."""
    names = [f.stem for f in files]
    if out.staging.exists():
        clear_folder(out.staging, keep=())
    staging = out.staging_layout()
    with reporting_write_errors(staging.dir):
        staging.frames.mkdir(parents=True, exist_ok=True)
    mark(staging.dir, "results")
    step = max(1, len(names) // 60)  # the GIF keeps at most about 60 frames
    gif_frames: list[np.ndarray] = []
    pending: deque[np.ndarray | LabelInput] = deque()  # poses read for the generator, waiting for their frame

    def poses() -> Iterator[np.ndarray | LabelInput]:
        for item in gen.read_inputs(files, layout):
            pending.append(item)
            yield item

    sources = source_frames(source, names, gen.size)
    with VideoWriter(staging.video, fps) as video, VideoWriter(staging.side_by_side, fps) as side_video:
        rows = zip(names, gen.frames(poses(), people, batch_size), sources)
        for k, (n, fake, src) in enumerate(tqdm(rows, total=len(names), desc="generating frames",
                                                disable=not progress)):
            pose = pending.popleft()
            write_image(staging.frames / f"{n}.png", fake)
            video.write(fake)
            side = np.concatenate([label(src if src is not None else np.zeros_like(fake), "source"),
                                   label(input_picture(pose), "input" if gen.label_maps else "pose"),
                                   label(fake, "generated")], axis=1)
            side_video.write(side)
            if k % step == 0:
                gif_frames.append(side)
    write_gif(staging.gif, gif_frames, fps=min(fps / step, 15), max_side=480)
    page_rows = [(f"frame {n}", [("generated", f"frames/{n}.png")]) for n in names[:: max(1, len(names) // 12)]]
    image_table_page(staging.page, f"Pose transfer: {name}", page_rows, width=gen.cfg.width,
                     note='<video> files: transfer.mp4 and side_by_side.mp4 (source | pose | generated); '
                          'transfer.gif is a preview.')
    write_json(staging.record, {"name": name, "checkpoint": checkpoint_tag(which_epoch), "frames": len(names),
                                "blank_poses": len(blank), "fps": fps, "source": str(source), "stages": gen.stages,
                                "runtime": gen.runtime_choice})
    return TransferResult(out.dir, len(names), out.video, out.side_by_side, out.gif, out.page)
