"""Run a trained generator: load it once (generator-only file + config) and turn pose sequences into frames.

:meth:`Generator.frames` is the one way to run the generator over a sequence: per-frame models in batches, the
temporal model frame by frame with each output fed back (zeros before the first), the config's precision, and the
face stage's correction when the run has one and the poses' keypoints are known. Label-map runs take
:class:`~dancenow_utils.data.labels.LabelInput` items instead of pose images; with pix2pixHD's feature encoder each
region's features come from a reference frame, from per-class vectors the user picks, or by default from the
per-class means tracked in training (:mod:`dancenow_utils.models.features`).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from dancenow_utils.checkpoint import describe_stages, load_generator_file
from dancenow_utils.config import TrainConfig
from dancenow_utils.data.datasets import (
    input_tensors,
    instance_files,
    load_input,
    load_resized,
    resized,
    to_image,
    to_tensor,
)
from dancenow_utils.data.labels import LabelInput
from dancenow_utils.layout import DatasetLayout, RunLayout
from dancenow_utils.models.encoder import FeatureEncoder, build_encoder, feature_regions
from dancenow_utils.models.face import build_face_generator, correct_faces, crop, paste_batch
from dancenow_utils.models.features import ClassFeatures, RegionFeature, feature_maps, region_features
from dancenow_utils.models.generate import condition, generate_batch
from dancenow_utils.models.networks import build_generator
from dancenow_utils.pose.face_box import face_box, face_box_side
from dancenow_utils.pose.keypoints import Person
from dancenow_utils.pose.settings import PoseSettings, check_same_drawing
from dancenow_utils.runtime.device import prepare_device, resolve_device
from dancenow_utils.runtime.precision import autocast, resolve_precision


@dataclass
class Generator:
    """A trained generator ready for inference, with its config, the poses' drawing settings and face stage."""

    G: nn.Module
    cfg: TrainConfig
    device: torch.device
    precision: str
    path: Path
    pose_settings: PoseSettings | None = None
    face: FaceCorrector | None = None
    stages: str = ""
    E: FeatureEncoder | None = None
    runtime_choice: dict | None = None  # which runtime runs it and why (dancenow_utils.transfer.onnx_runtime)

    @property
    def size(self) -> tuple[int, int]:
        """(width, height) of the frames it draws."""
        return self.cfg.width, self.cfg.height

    @property
    def label_maps(self) -> bool:
        """Whether it translates label maps (``label_nc > 0``) rather than pose images."""
        return bool(self.cfg.label_nc)

    def check_poses(self, layout: DatasetLayout) -> None:
        """Error when the poses in ``layout`` are drawn differently from the training poses (names both)."""
        check_same_drawing(self.pose_settings, PoseSettings.load(layout.settings), str(self.path),
                           str(layout.settings))

    def read_inputs(self, files: list[Path], layout: DatasetLayout | None = None) -> Iterator[np.ndarray | LabelInput]:
        """The generator's inputs from image files, at its size: pose images, or label maps (with their instance
        maps from ``layout``'s ``{phase}_inst`` when the run uses them; default: beside the files' folder)."""
        w, h = self.size
        inst: list[Path | None] = [None] * len(files)
        if self.cfg.instance_maps and files:
            layout = layout or DatasetLayout.of_pose_dir(files[0].parent)
            inst = instance_files(layout, [f.stem for f in files])
        for f, i in zip(files, inst):
            yield load_input(f, w, h, self.cfg.label_nc, i)

    def read_poses(self, pose_images: Iterable[np.ndarray | str | Path]) -> list[np.ndarray]:
        """Pose images (RGB arrays or image files) at the generator's size, resized as training resizes them."""
        w, h = self.size
        return [load_resized(Path(p), w, h) if isinstance(p, (str, Path)) else resized(p, w, h) for p in pose_images]

    def region_features(self, frame: np.ndarray, item: LabelInput) -> list[RegionFeature]:
        """The feature encoder's vector for every region of ``frame`` (an RGB frame of ``item``'s layout)."""
        if self.E is None:
            raise ValueError(f"{self.path}: this run has no feature encoder (instance_feat / label_feat)")
        return region_features(self.E, self.cfg.instance_feat, frame, item, self.device)

    @torch.no_grad()
    def batch(self, poses: torch.Tensor, previous: torch.Tensor | None = None) -> torch.Tensor:
        """Frames (float, [-1, 1]) for a batch of generator inputs (pose tensors, or conditions with features);
        ``previous`` feeds the temporal model."""
        return generate_batch(self.G, poses.to(self.device), previous, self.cfg.temporal, self.precision,
                              self.cfg.output_nc)

    @torch.no_grad()
    def frames(self, poses: Iterable[np.ndarray | LabelInput], people: Iterable[Person | None] | None = None,
               batch_size: int = 8, features: ClassFeatures | None = None,
               references: Iterable[np.ndarray] | None = None) -> Iterator[np.ndarray]:
        """Yield one RGB uint8 frame per input (a pose image, or a :class:`LabelInput` for label-map runs, already
        at the generator's size), streaming.

        With a face stage and ``people`` (the poses' keypoints in image pixels) each face box is corrected; the
        temporal model is fed its corrected previous frame, as Everybody Dance Now does. A run with the feature
        encoder draws each region with ``features`` (class -> vector; classes not given keep the means tracked in
        training), or with the features the encoder finds in ``references`` (one RGB frame per input, of the same
        layout: pix2pixHD's ``use_encoded_image``).
        """
        if (features is not None or references is not None) and self.E is None:
            raise ValueError(f"{self.path}: features and references choose the feature encoder's input, but this "
                             "run has no encoder (train with instance_feat=True or label_feat=True)")
        step = 1 if self.cfg.temporal else batch_size
        people_it = iter(people) if people is not None else None
        refs_it = iter(references) if references is not None else None
        previous = None
        chunk: list[np.ndarray | LabelInput] = []
        for pose in poses:
            chunk.append(pose)
            if len(chunk) == step:
                out, previous = self._chunk(chunk, people_it, previous, features, refs_it)
                yield from out
                chunk = []
        if chunk:
            out, _ = self._chunk(chunk, people_it, previous, features, refs_it)
            yield from out

    @torch.no_grad()
    def generator_input(self, chunk: list[np.ndarray | LabelInput], features: ClassFeatures | None = None,
                        references: list[np.ndarray] | None = None) -> torch.Tensor:
        """The generator's input for a list of inputs: pose tensors, or encoded label maps (plus features)."""
        if not self.label_maps:
            if any(isinstance(p, LabelInput) for p in chunk):
                raise ValueError(f"{self.path} was trained on pose images (label_nc=0), not on label maps")
            return torch.stack([to_tensor(p) for p in chunk]).to(self.device)
        if not all(isinstance(p, LabelInput) for p in chunk):
            raise ValueError(f"{self.path} translates label maps (label_nc={self.cfg.label_nc}): give LabelInput "
                             "items (read them with Generator.read_inputs)")
        items = [input_tensors(p) for p in chunk]
        labels = torch.stack([it["A"] for it in items]).to(self.device)
        inst = torch.stack([it["inst"] for it in items]).to(self.device) if "inst" in items[0] else None
        cond = condition(self.cfg, labels, inst)
        if self.E is None:
            return cond
        if references is not None:
            if len(references) != len(chunk) or any(r is None for r in references):
                raise ValueError("references: give one reference frame per input (they ran out before the inputs)")
            w, h = self.size
            if any(r.shape[:2] != (h, w) for r in references):
                raise ValueError(f"references: the frames must be {w}x{h} (the generator's size), like the inputs")
            frames = torch.stack([to_tensor(r) for r in references]).to(self.device)
            feat = self.E(frames, feature_regions(self.cfg, labels, inst))
        else:
            feat = feature_maps(self.E, chunk, features, self.cfg.instance_feat).to(self.device)
        return torch.cat([cond, feat], 1)

    def _chunk(self, chunk: list[np.ndarray | LabelInput], people_it: Iterator | None,
               previous: torch.Tensor | None, features: ClassFeatures | None = None,
               refs_it: Iterator | None = None) -> tuple[list[np.ndarray], torch.Tensor]:
        refs = [next(refs_it, None) for _ in chunk] if refs_it is not None else None
        A = self.generator_input(chunk, features, refs)
        out = self.batch(A, previous)
        if self.face is not None and people_it is not None:
            chunk_people = [next(people_it, None) for _ in chunk]
            out = self.face(A, out, self.face.boxes(chunk_people, A.shape[3], A.shape[2]))
        return [to_image(t) for t in out], out


def load_generator(name: str, which_epoch: str | int = "latest", checkpoints_dir: str | Path = "checkpoints",
                   device: str = "auto", face: bool = True) -> Generator:
    """The generator of ``checkpoints/<name>`` at ``which_epoch`` (and its face stage), read once.

    A checkpoint whose networks differ from the config saved beside it is an error naming the file.
    """
    run = RunLayout(checkpoints_dir, name)
    payload = load_generator_file(run, which_epoch)
    cfg = TrainConfig.from_dict(payload["config"])
    dev = resolve_device(device)
    prepare_device(dev)
    precision = resolve_precision(cfg.amp, dev)
    G = build_generator(cfg)
    try:
        G.load_state_dict(payload["G"])
    except RuntimeError as exc:
        raise ValueError(f"{run.generator(which_epoch)}: its weights do not fit the networks of its config "
                         f"({str(exc).splitlines()[0]}); retrain, or use the checkpoint's own run folder") from None
    pose = payload.get("pose_settings")
    gen = Generator(G.to(dev).eval(), cfg, dev, precision, run.generator(which_epoch),
                    PoseSettings.from_dict(pose) if pose else None, stages=describe_stages(name, checkpoints_dir))
    encoder = build_encoder(cfg)
    if encoder is not None:
        if "E" not in payload:
            raise ValueError(f"{run.generator(which_epoch)}: the config uses the feature encoder, but the file holds "
                             "no encoder weights; retrain, or use the checkpoint's own run folder")
        encoder.load_state_dict(payload["E"])
        gen.E = encoder.to(dev).eval()
    face_run = run.stage("face")
    if face and face_run.has_generator():
        face_payload = load_generator_file(face_run)
        face_cfg = TrainConfig.from_dict(face_payload["config"])
        face_G = build_face_generator(face_cfg)
        face_G.load_state_dict(face_payload["G"])
        gen.face = FaceCorrector(face_G, face_cfg, dev, precision)
    return gen


class FaceCorrector:
    """A trained face generator applied at inference: corrects the face box of generated frames in place."""

    def __init__(self, G: nn.Module, cfg: TrainConfig, device: torch.device, precision: str) -> None:
        self.G, self.cfg, self.device, self.precision = G.to(device).eval(), cfg, device, precision
        self.side = face_box_side(cfg.height)

    def boxes(self, people: list[Person | None], width: int, height: int) -> list[tuple[int, int] | None]:
        return [None if p is None else face_box(p, width, height, self.side) for p in people]

    @torch.no_grad()
    def __call__(self, poses: torch.Tensor, frames: torch.Tensor,
                 boxes: list[tuple[int, int] | None]) -> torch.Tensor:
        """``frames`` with each face box replaced by its correction; frames without a box are unchanged."""
        have = [i for i, b in enumerate(boxes) if b is not None]
        if not have:
            return frames
        out = frames.clone()
        chosen = [boxes[i] for i in have]
        fixed = self.correct(crop(poses[have], chosen, self.side), crop(frames[have], chosen, self.side))
        out[have] = paste_batch(frames[have], fixed, chosen)
        return out

    def correct(self, pose_crops: torch.Tensor, face_crops: torch.Tensor) -> torch.Tensor:
        """The face generator's corrected crops (float) for the pose and frame crops of the boxed faces."""
        with autocast(self.device, self.precision):
            return correct_faces(self.G, pose_crops, face_crops).float()
