"""The steps the notebooks run, as plain functions (notebooks hold no logic a test cannot reach)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import cv2
import numpy as np

from dancenow_utils.config import TrainConfig, parse_overrides
from dancenow_utils.data.labels import colorize, read_index_image
from dancenow_utils.evaluation.per_sample import read_per_sample
from dancenow_utils.io_utils import list_images, read_image
from dancenow_utils.layout import DatasetLayout, RunLayout
from dancenow_utils.notebook.colab import keep_on_drive  # noqa: F401  (re-exported: pipeline.keep_on_drive)
from dancenow_utils.notebook.lessons import (
    ExtractionLesson,
    depth_lesson_image,
    hand_weight_image,
    jitter_image,
    mirror_image,
)
from dancenow_utils.pose.extract import ExtractionSummary, extract
from dancenow_utils.synthetic.demo import DEMO_VERSION, DemoPaths, make_demo
from dancenow_utils.synthetic.parts import PARTS_CONFIG, PARTS_DATASET, PARTS_DATASET_TEST, make_parts_datasets
from dancenow_utils.training.trainer import Trainer

if TYPE_CHECKING:
    from dancenow_utils.training.stages import StageResult
from dancenow_utils.visualize import grid, image_browser, label, overlay


def ensure_demo(demo_dir: str | Path = "demo_data", n_train: int = 1000, n_heldout: int = 240,
                n_source: int = 300, size: int = 256, seed: int = 0, progress: bool = True) -> DemoPaths:
    """Write the demo clips unless ``demo_dir`` already holds the same ones (same sizes and seed, and every
    clip's part and instance maps, and this version's dances: a demo written by an older version is written again)."""
    paths = DemoPaths(Path(demo_dir))
    want = {"target_train": n_train, "target_heldout": n_heldout, "source_dancer": n_source}
    if paths.manifest.exists():
        have = json.loads(paths.manifest.read_text())
        complete = all(paths.parts(c).is_dir() and paths.instances(c).is_dir() for c in want)
        same = have.get("version") == DEMO_VERSION and have.get("size") == size and have.get("seed") == seed
        if have.get("frames") == want and same and complete:
            return paths
    return make_demo(demo_dir, size, n_train, n_heldout, n_source, seed, progress)


def pose_step(source: str = "", dataroot: str = "dataset", phase: str = "train", heldout_dataroot: str = "dataset_test",
              demo_dir: str = "demo_data", demo_frames: tuple[int, int, int] = (1000, 240, 300),
              demo_depth: bool = True, **extract_kwargs) -> dict[str, ExtractionSummary]:
    """Notebook 01: extract ``source``; with no source, the demo's training clip and its held-out clip, whose
    keypoints take the character's own depth (its drawing order, ``demo_depth``) instead of MediaPipe's z."""
    if source:
        return {dataroot: extract(source, dataroot, phase, **extract_kwargs)}
    demo = ensure_demo(demo_dir, *demo_frames)

    def depth_from(clip: str) -> dict:
        return {"depth_from": str(demo.keypoints(clip))} if demo_depth else {}

    return {
        dataroot: extract(demo.video("target_train"), dataroot, phase, **depth_from("target_train"),
                          **extract_kwargs),
        heldout_dataroot: extract(demo.video("target_heldout"), heldout_dataroot, phase,
                                  **depth_from("target_heldout"), **extract_kwargs),
    }


def extraction_lesson(source: str = "", dataroot: str | Path = "dataset", phase: str = "train",
                      demo_dir: str | Path = "demo_data", n_frames: int = 40, frame_step: int = 1, weights: str = "",
                      keypoints_dir: str = "") -> ExtractionLesson:
    """Notebook 01's lesson: the first ``n_frames`` frames of what :func:`pose_step` extracted (``source``, or the
    demo's training clip with its ground truth) through each stage, with the crop and drawing settings that
    extraction saved in ``{dataroot}/{phase}_keypoints``."""
    truth: str | Path = ""
    if not source:
        demo = DemoPaths(Path(demo_dir))
        source, truth = str(demo.video("target_train")), demo.keypoints("target_train")
    return ExtractionLesson.run(source, DatasetLayout(dataroot, phase).keypoints, n_frames, frame_step, weights,
                                keypoints_dir, truth)


def _figure_or_reason(what: str, make: Callable[[], np.ndarray]) -> np.ndarray | None:
    """``make()``'s figure, or None after printing why not (the ValueError a lesson raises on data it cannot
    draw), so a notebook goes on without the figure."""
    try:
        return make()
    except ValueError as exc:
        print(f"no {what} figure: {exc}")
        return None


def depth_figure(dataroot: str | Path = "dataset", phase: str = "train") -> np.ndarray | None:
    """Notebook 01: one crossed-arms frame of the extracted data drawn without and with depth
    (:func:`~dancenow_utils.notebook.lessons.depth_lesson_image`); None, saying why, when no stored pose crosses
    its arms with a depth."""
    return _figure_or_reason("depth", lambda: depth_lesson_image(dataroot, phase))


def hand_weight_figure(cfg: TrainConfig, dataroot: str | Path = "dataset", phase: str = "train") -> np.ndarray | None:
    """Notebook 02: what the L1 term weighs ``1 + cfg.hand_weight`` times, one training frame per pose kind
    (:func:`~dancenow_utils.notebook.lessons.hand_weight_image`); None, saying why, when the config weighs every
    pixel alike or the dataset has no keypoints."""
    if not cfg.hand_weight:
        print("hand_weight=0: the L1 term weighs every pixel alike")
        return None
    return _figure_or_reason("hand-weight", lambda: hand_weight_image(dataroot, phase))


def jitter_figure(cfg: TrainConfig, dataroot: str | Path = "dataset", phase: str = "train") -> np.ndarray | None:
    """Notebook 02: one training pair as filmed and as three of ``cfg``'s jitter draws move it
    (:func:`~dancenow_utils.notebook.lessons.jitter_image`); None, saying why, without jitter or for label maps."""
    if not cfg.jitter:
        print("jitter=0: every training pair is used as filmed")
        return None
    if cfg.label_nc:
        print("no jitter figure for label maps (they are jittered too, by nearest neighbour)")
        return None
    return jitter_image(dataroot, (cfg.width, cfg.height), cfg.jitter, cfg.jitter_kind, phase=phase, seed=cfg.seed)


def mirror_figure(cfg: TrainConfig, dataroot: str | Path = "dataset", phase: str = "train") -> np.ndarray | None:
    """Notebook 02: one crossed-arms training pair as filmed, flipped and mirrored
    (:func:`~dancenow_utils.notebook.lessons.mirror_image`); None, saying why, without ``mirror``, for label maps
    or without keypoints."""
    if not cfg.mirror:
        print("mirror=0: every pose is trained the way round it was filmed")
        return None
    if cfg.label_nc:
        print("no mirror figure for label maps (they are trained as filmed)")
        return None
    return _figure_or_reason("mirror", lambda: mirror_image(dataroot, (cfg.width, cfg.height), phase))


INPUT_KINDS = ("pose", "parts")


def input_step(input_kind: str = "pose", dataroot: str = "dataset", overrides: dict | str | None = None,
               demo_dir: str | Path = "demo_data") -> tuple[str, dict]:
    """Notebook 02's data and config keys for ``input_kind``: ``"pose"`` keeps ``dataroot`` and ``overrides``;
    ``"parts"`` trains pix2pixHD on the demo's body-part label maps (``dataset_parts``, made from ``demo_dir`` once,
    with its held-out and transfer twins) with :data:`~dancenow_utils.synthetic.parts.PARTS_CONFIG` under the
    given overrides."""
    if input_kind not in INPUT_KINDS:
        raise ValueError(f"input_kind must be one of {INPUT_KINDS}, got {input_kind!r}")
    overrides = parse_overrides(overrides)
    if input_kind == "pose":
        return dataroot, overrides
    demo = DemoPaths(Path(demo_dir))
    if not demo.manifest.exists():
        ensure_demo(demo_dir)
    roots = make_parts_datasets(demo)
    return str(roots["train"]), {**PARTS_CONFIG, **overrides}


def cross_validation_data(input_kind: str = "pose", dataroot: str = "dataset_test",
                          train_dataroot: str = "dataset") -> tuple[str, str]:
    """Notebook 03's held-out and training data for ``input_kind`` (``"parts"``: the demo's part-map datasets)."""
    if input_kind not in INPUT_KINDS:
        raise ValueError(f"input_kind must be one of {INPUT_KINDS}, got {input_kind!r}")
    return (dataroot, train_dataroot) if input_kind == "pose" else (PARTS_DATASET_TEST, PARTS_DATASET)


def _pair(layout: DatasetLayout, pose_file: Path, label_maps: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """``(frame, stick figure)`` of a pose image (with ``label_maps``, of a label map, colour-coded); a black frame
    when there is no ``{phase}_B`` twin (transfer)."""
    stick = colorize(read_index_image(pose_file)) if label_maps else read_image(pose_file)
    b = layout.B / pose_file.name
    if not b.exists():
        return np.zeros_like(stick), stick
    frame = read_image(b)
    if frame.shape[:2] != stick.shape[:2]:  # same aspect, another size (the dataset checks the aspect)
        frame = cv2.resize(frame, (stick.shape[1], stick.shape[0]), interpolation=cv2.INTER_AREA)
    return frame, stick


def sample_pairs_figure(dataroot: str | Path, phase: str = "train", n: int = 6, label_maps: bool = False) -> np.ndarray:
    """A grid: frames with their stick figure on top, and the stick figures alone (what the GAN learns from);
    with ``label_maps`` the inputs are label maps, shown colour-coded."""
    layout = DatasetLayout(dataroot, phase)
    files_a = list_images(layout.A)
    if not files_a:
        raise ValueError(f"{layout.A} is empty; run pose extraction (notebook 01) first")
    pick = [files_a[int(i)] for i in np.linspace(0, len(files_a) - 1, min(n, len(files_a))).round()]
    top, bottom = [], []
    for a in pick:
        frame, stick = _pair(layout, a, label_maps)
        top.append(label(overlay(frame, stick), a.stem))
        bottom.append(stick)
    return grid([top, bottom])


def frame_browser(dataroot: str | Path, phase: str = "train"):
    """A slider over the extracted pairs: the frame with its stick figure on top, and the stick figure alone."""
    layout = DatasetLayout(dataroot, phase)
    files_a = list_images(layout.A)

    def render(i: int) -> np.ndarray:
        frame, stick = _pair(layout, files_a[i])
        return label(np.concatenate([overlay(frame, stick), stick], axis=1), files_a[i].stem)

    return image_browser(len(files_a), render, "frame")


def resolve_transfer_source(source: str, dataroot: str | Path, demo_dir: str | Path = "demo_data",
                            cfg: TrainConfig | None = None) -> tuple[str, bool]:
    """``(source, ready)``: the demo's source dancer when ``source`` is empty; ``ready`` when ``source`` (or
    ``dataroot``) already holds drawn pose images in ``test_A`` (the original project's flow).

    For a label-map run (``cfg.label_nc > 0``) the source must be a folder of label maps (``test_A``), used as it
    is; empty: the demo source dancer's part maps (``dataset_parts_transfer/test_A``). Pose extraction and
    normalisation do not apply to label maps, and a video is refused."""
    if cfg is not None and cfg.label_nc:
        if not source:
            demo = DemoPaths(Path(demo_dir))
            return str(DatasetLayout(make_parts_datasets(demo)["transfer"], "test").A), True
        p = Path(source)
        for folder in (p, p / "test_A"):
            if folder.is_dir() and folder.name == "test_A":
                return str(folder), True
        raise ValueError(f"{source}: this run translates label maps (label_nc={cfg.label_nc}), so the source must "
                         "be a folder of label maps named test_A (with test_inst beside it for instance maps), or "
                         "a folder holding test_A. Pose extraction and pose normalisation apply to pose runs only.")
    if not source:
        video = DemoPaths(Path(demo_dir)).video("source_dancer")
        if not video.exists():
            raise FileNotFoundError(f"{video}: the demo's source dancer is missing; run notebook 01 with an empty "
                                    "source first, or give `source` (a video or image folder)")
        return str(video), False
    p = Path(source)
    if p.is_dir() and p.name == "test_A":
        return str(p), True
    if p.is_dir() and (p / "test_A").is_dir():
        return str(p / "test_A"), True
    return source, False


def training_figures(trainer: Trainer | StageResult) -> list[Path]:
    """The images a stage produced (from its trainer or its :func:`~dancenow_utils.training.stages.train_stages`
    result),
    in the order to show them: loss curves, then the latest visuals (main stages:
    pose, generated, real; face stage: pose, generated, corrected and real face crops)."""
    return [p for p in [trainer.run.loss_curves, *trainer.latest_visuals()] if p.exists()]


def cross_validation_samples(name: str, checkpoints_dir: str | Path = "checkpoints", n: int = 4) -> np.ndarray:
    """A grid of evenly spaced held-out samples: input, generated, ground truth, nearest training neighbour."""
    test = RunLayout(checkpoints_dir, name).test
    rows = read_per_sample(test.dir)
    pick = rows[:: max(1, len(rows) // n)][:n]
    kinds = ("input", "generated", "real", "nn")
    return grid([[read_image(test.image(str(r["name"]), k)) for k in kinds] for r in pick])
