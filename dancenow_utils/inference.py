"""Run a trained generator: load it once (generator-only file + config) and turn pose sequences into frames.

:meth:`Generator.frames` is the one way to run the generator over a sequence: per-frame models in batches, the
temporal model frame by frame with each output fed back (zeros before the first), the config's precision, and the
face stage's correction when the run has one and the poses' keypoints are known.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from dancenow_utils.config import TrainConfig
from dancenow_utils.data import to_image, to_tensor
from dancenow_utils.device import prepare_device, resolve_device
from dancenow_utils.face import FaceCorrector, build_face_generator
from dancenow_utils.layout import DatasetLayout, RunLayout
from dancenow_utils.models.generate import generate_batch
from dancenow_utils.models.networks import build_generator
from dancenow_utils.pose.keypoints import Person
from dancenow_utils.pose.settings import PoseSettings, check_same_drawing
from dancenow_utils.precision import resolve_precision
from dancenow_utils.stages import describe_stages
from dancenow_utils.train import load_generator_file


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

    @property
    def size(self) -> tuple[int, int]:
        """(width, height) of the frames it draws."""
        return self.cfg.width, self.cfg.height

    def check_poses(self, layout: DatasetLayout) -> None:
        """Error when the poses in ``layout`` are drawn differently from the training poses (names both)."""
        check_same_drawing(self.pose_settings, PoseSettings.load(layout.settings), str(self.path),
                           str(layout.settings))

    @torch.no_grad()
    def batch(self, poses: torch.Tensor, previous: torch.Tensor | None = None) -> torch.Tensor:
        """Frames (float, [-1, 1]) for a batch of pose tensors; ``previous`` feeds the temporal model."""
        return generate_batch(self.G, poses.to(self.device), previous, self.cfg.temporal, self.precision,
                              self.cfg.output_nc)

    @torch.no_grad()
    def frames(self, poses: Iterable[np.ndarray], people: Iterable[Person | None] | None = None,
               batch_size: int = 8) -> Iterator[np.ndarray]:
        """Yield one RGB uint8 frame per pose image (already at the generator's size), streaming.

        With a face stage and ``people`` (the poses' keypoints in image pixels) each face box is corrected; the
        temporal model is fed its corrected previous frame, as Everybody Dance Now does.
        """
        step = 1 if self.cfg.temporal else batch_size
        people_it = iter(people) if people is not None else None
        previous = None
        chunk: list[np.ndarray] = []
        for pose in poses:
            chunk.append(pose)
            if len(chunk) == step:
                out, previous = self._chunk(chunk, people_it, previous)
                yield from out
                chunk = []
        if chunk:
            out, _ = self._chunk(chunk, people_it, previous)
            yield from out

    def _chunk(self, chunk: list[np.ndarray], people_it: Iterator | None,
               previous: torch.Tensor | None) -> tuple[list[np.ndarray], torch.Tensor]:
        A = torch.stack([to_tensor(p) for p in chunk]).to(self.device)
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
    face_run = run.stage("face")
    if face and (face_run.generator().exists() or face_run.latest.exists()):
        face_payload = load_generator_file(face_run)
        face_cfg = TrainConfig.from_dict(face_payload["config"])
        face_G = build_face_generator(face_cfg)
        face_G.load_state_dict(face_payload["G"])
        gen.face = FaceCorrector(face_G, face_cfg, dev, precision)
    return gen
