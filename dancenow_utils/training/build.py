"""What a stage's :class:`~dancenow_utils.training.trainer.Trainer` is handed, built in one place: the process it
runs in (device, rank), the training data, and the model (pix2pixHD, or the face GAN on a trained main run).

The order matters for exact resume and for distributed runs: the process joins its group first, the data is
checked before anything is built, the RNG is seeded before the networks are initialised, and every rank takes the
decisions rank 0 takes (precision, whether the VGG loss is on) in the same collective order.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from dancenow_utils.checkpoint import inference_weights, load_checkpoint, load_generator_file
from dancenow_utils.config import TrainConfig, mirror_kinds
from dancenow_utils.data.balance import describe, kind_weights, pose_kinds, sampled_shares
from dancenow_utils.data.datasets import AlignedDataset
from dancenow_utils.data.hands import hand_maps, hand_share
from dancenow_utils.data.mirror import MirroredPoses
from dancenow_utils.layout import DatasetLayout, RunLayout
from dancenow_utils.models.base import BaseModel
from dancenow_utils.models.face import FaceModel
from dancenow_utils.models.losses import resolve_vgg_weights
from dancenow_utils.models.networks import build_generator
from dancenow_utils.models.pix2pixhd import Pix2PixHD
from dancenow_utils.params import check_bool
from dancenow_utils.pose.crop import people_in_image
from dancenow_utils.pose.face_box import face_box
from dancenow_utils.pose.keypoints import Person
from dancenow_utils.pose.kinds import POSE_KINDS
from dancenow_utils.pose.settings import PoseSettings
from dancenow_utils.runtime.device import local_cuda_index, prepare_device, resolve_device
from dancenow_utils.runtime.precision import resolve_precision
from dancenow_utils.training import distributed

MODELS = ("pix2pixhd", "face")


@dataclass(frozen=True)
class Process:
    """The process a stage trains in: its device and, under ``torchrun`` (or ``gpus`` in notebook 02), its rank."""

    device: torch.device
    rank: int = 0
    world: int = 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @classmethod
    def start(cls, cfg: TrainConfig) -> Process:
        """Resolve the device, join the process group of a distributed run, apply the device's speed settings."""
        world, rank = int(os.environ.get("WORLD_SIZE", "1")), int(os.environ.get("RANK", "0"))
        device = resolve_device(cfg.device)
        if world > 1:
            if device.type == "cuda":
                device = torch.device("cuda", local_cuda_index())
            distributed.init_process_group(device)
        prepare_device(device)
        if cfg.threads:
            torch.set_num_threads(cfg.threads)
        return cls(device, rank, world)

    def precision(self, cfg: TrainConfig) -> str:
        """The precision every rank trains in: rank 0 decides (it may measure this CPU) and tells the others."""
        if self.world == 1:
            return resolve_precision(cfg.amp, self.device)
        return distributed.from_rank0(resolve_precision(cfg.amp, self.device) if self.is_main else None)

    def model_config(self, cfg: TrainConfig) -> TrainConfig:
        """The config the model is built with: in a distributed run rank 0 finds (or fetches) the VGG19 weights and
        every rank trains with the loss as rank 0 has it (a rank missing weights rank 0 uses is an error)."""
        if self.world == 1:
            return cfg
        found = resolve_vgg_weights(cfg.vgg_loss, cfg.vgg_weights) is not None if self.is_main else None
        return cfg.with_overrides({"vgg_loss": "on" if distributed.from_rank0(found) else "off"})

    def loader_workers(self, cfg: TrainConfig) -> int:
        """Data-loader worker processes: ``num_workers``, or on a GPU a few per GPU (none on a CPU, where they
        would take cores from the training step itself)."""
        if cfg.num_workers >= 0:
            return cfg.num_workers
        if self.device.type != "cuda":
            return 0
        return min(4, max(1, (os.cpu_count() or 2) // (2 * max(1, torch.cuda.device_count()))))


def dataset_fingerprint(names: list[str]) -> str:
    """A short hash of a dataset's frame names: the same data under the same folder gives the same value."""
    return hashlib.sha1("\n".join(names).encode()).hexdigest()[:16]


class FaceCrops(Dataset):
    """Training items of the face stage: the frames (pairs for a temporal main generator) that have a face box,
    with the box of the (first) frame (``A``, ``B``, ``box``), which EDN also uses for both frames of a pair."""

    def __init__(self, base: AlignedDataset, side: int, people: list[Person]) -> None:
        """``people``: each frame's person in ``base``'s image pixels (:meth:`TrainingData.people`)."""
        boxes = [face_box(p, base.width, base.height, side) for p in people[:len(base)]]
        self.base = base
        self.items = [(i, b) for i, b in enumerate(boxes) if b is not None]
        if not self.items:
            raise ValueError(f"{base.layout.keypoints}: no frame has face or head keypoints; the face stage "
                             "needs them (extract with draw_face=True, or skip the face stage)")

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, key: int | tuple[int, bool]) -> dict[str, torch.Tensor]:
        k = key[0] if isinstance(key, tuple) else key
        i, box = self.items[k]
        return {**self.base[i], "box": torch.tensor(box)}


@dataclass
class TrainingData:
    """What a stage trains on: the aligned frames, the items an epoch goes through (the frames, consecutive pairs
    or face crops), where they are and how their poses were drawn."""

    layout: DatasetLayout
    frames: AlignedDataset
    items: Dataset
    pose_settings: PoseSettings | None
    num_workers: int = 0
    _people: list[Person] | None = field(default=None, init=False, repr=False, compare=False)  # see people()

    @classmethod
    def open(cls, cfg: TrainConfig, dataroot: str | Path, phase: str, process: Process,
             hands: bool = True) -> TrainingData:
        """The pairs under ``dataroot``, checked against ``cfg`` first (aspect ratio, temporal needs a sequence);
        with ``cfg.hand_weight`` and ``hands`` (a model whose L1 term weighs them), each frame's hand map."""
        layout = DatasetLayout(dataroot, phase)
        settings = PoseSettings.load(layout.settings)
        if settings is not None and abs(settings.width / settings.height - cfg.width / cfg.height) > 0.01:
            raise ValueError(
                f"{layout.root} was drawn at {settings.width}x{settings.height}, but preset {cfg.preset!r} trains at "
                f"{cfg.width}x{cfg.height}: the images would be squashed. Extract with image_size=[{cfg.width}, "
                f"{cfg.height}] (notebook 01), or choose a preset with this aspect ratio.")
        if cfg.temporal and settings is not None and not settings.sequence:
            raise ValueError(f"temporal=True learns from consecutive frames, but {layout.root} holds "
                             "independent images (extracted with sequence=False). Use temporal=False, or extract "
                             "the frames of a video (or pass sequence=True for consecutive frames).")
        workers = process.loader_workers(cfg)
        frames = AlignedDataset(dataroot, phase, cfg.width, cfg.height, cfg.max_dataset_size,
                                cfg.cache_images and workers == 0, temporal=cfg.temporal, label_nc=cfg.label_nc,
                                instance_maps=cfg.instance_maps)
        if cfg.flip and cfg.temporal:
            raise ValueError("flip=True is not supported with the temporal model; set flip=False")
        if cfg.mirror and cfg.label_nc:
            if process.is_main:
                print(f"mirror={cfg.mirror:g} draws stick figures again from mirrored keypoints; label maps are "
                      "trained as filmed")
        elif cfg.mirror:
            frames.mirrored = MirroredPoses(layout, frames.names(), frames.width, frames.height,
                                            keep=frames.keeps_images)
        data = cls(layout, frames, frames, settings, workers)
        if cfg.hand_weight and hands:
            if not layout.keypoints.is_dir():
                raise ValueError(f"hand_weight={cfg.hand_weight} weighs the hands by their keypoints, but "
                                 f"{layout.keypoints} does not exist: extract the poses with notebook 01 (which "
                                 "writes it), or set hand_weight=0")
            frames.hand_maps = hand_maps(data.people(), frames.width, frames.height)
            if process.is_main:
                print(f"hand_weight={cfg.hand_weight}: hands and forearms cover "
                      f"{100 * hand_share(frames.hand_maps):.1f}% of the training frames' pixels")
        return data

    def people(self) -> list[Person]:
        """Each frame's person in the training images' pixels, read from the keypoints once (the hand maps, the
        pose kinds and the face boxes all start from them)."""
        if self._people is None:
            self._people = people_in_image(self.layout, self.frames.names(), self.frames.width, self.frames.height)
        return self._people

    def sampling_weights(self, balance: float) -> tuple[list[float] | None, str]:
        """Per training item, how often an epoch draws it (:mod:`dancenow_utils.data.balance`), and a line saying
        what each pose kind gets; ``(None, "")`` for a plain shuffle (``balance=0``, or face crops, which are drawn
        evenly)."""
        if balance == 0 or self.items is not self.frames:
            return None, ""
        kinds = self.pose_kinds()[:len(self.items)]  # a temporal pair has the kind of its first frame
        weights = kind_weights(kinds, balance)
        return weights, describe(sampled_shares(kinds, weights))

    def flip_chances(self, cfg: TrainConfig) -> bool | list[float]:
        """How the sampler flips the items: pix2pixHD's ``flip`` (True: each with chance 0.5), or ``mirror``'s chance
        for the items of ``mirror_kinds`` (a temporal pair has the kind of its first frame); False for neither, for
        face crops and for label maps."""
        if self.items is not self.frames:
            return False
        if self.frames.mirrored is None:  # no mirror, or label maps
            return cfg.flip
        kinds = mirror_kinds(cfg.mirror_kinds)
        if set(kinds) == set(POSE_KINDS):
            return [cfg.mirror] * len(self.items)
        return [cfg.mirror if k in kinds else 0.0 for k in self.pose_kinds()[:len(self.items)]]

    def pose_kinds(self) -> list[str]:
        """Each frame's pose kind, from its keypoints (``others`` for a frame without them)."""
        if not self.layout.keypoints.is_dir():
            return ["others"] * self.frames.n_frames
        return pose_kinds(self.people())

    def face_crops(self, side: int) -> TrainingData:
        """The same data with the face stage's items: frames that have a face box of ``side`` pixels."""
        return replace(self, items=FaceCrops(self.frames, side, self.people()))

    def record(self) -> dict:
        """What ``dataset.json`` records: where the data is, how many frames, their fingerprint, the drawing."""
        return {"dataroot": str(self.layout.root.resolve()), "phase": self.layout.phase,
                "frames": self.frames.n_frames, "fingerprint": dataset_fingerprint(self.frames.names()),
                "pose_settings": self.pose_settings.to_dict() if self.pose_settings else None}


def seed_everything(seed: int) -> None:
    """Seed torch and NumPy before the networks are initialised (the same weights for the same seed)."""
    torch.manual_seed(seed)
    np.random.seed(seed % 2**32)


def check_face_stage(cfg: TrainConfig) -> None:
    """The face stage works on pose images and their keypoints: a label-map run is refused by name."""
    if cfg.label_nc:
        raise ValueError(f"the face stage sharpens faces drawn from pose images and their keypoints; this run "
                         f"reads label maps (label_nc={cfg.label_nc}). Train the face stage on a pose run only.")


def build_model(kind: str, cfg: TrainConfig, process: Process, main_run: RunLayout | None = None,
                resuming: bool = False) -> BaseModel:
    """The model a stage trains: ``"pix2pixhd"``, or ``"face"``, the face GAN on ``main_run``'s frozen generator
    whose full-frame losses go through that run's discriminator (as EDN loads it with the generator)."""
    if kind not in MODELS:
        raise ValueError(f"unknown model {kind!r}; choose one of {MODELS}")
    precision = process.precision(cfg)
    model_cfg = process.model_config(cfg)
    if kind == "pix2pixhd":
        return Pix2PixHD(model_cfg, process.device, precision=precision)
    check_face_stage(cfg)
    if main_run is None:
        raise ValueError("the face stage needs the main run it corrects (main_run)")
    # a resumed face stage has its own copy of the main D in its latest.pth: one read of the main run either way
    if resuming:
        main_ckpt = load_generator_file(main_run)
    elif main_run.latest.exists():
        main_ckpt = load_checkpoint(main_run.latest)
    else:
        raise FileNotFoundError(f"{main_run.latest}: the face stage trains against the main run's discriminator, "
                                "which only its full checkpoint holds; train (or resume) the main stage to "
                                "write it, then run the face stage")
    main_cfg = TrainConfig.from_dict(main_ckpt["config"])
    if main_cfg.temporal != cfg.temporal:
        raise ValueError(f"{main_run.dir} was trained with temporal={main_cfg.temporal}: train its face stage with "
                         f"the same setting (overrides={{'temporal': {main_cfg.temporal}}})")
    main_G = build_generator(main_cfg)
    main_G.load_state_dict(inference_weights(main_ckpt))  # the main generator as inference runs it
    return FaceModel(model_cfg, process.device, main_G, main_cfg, main_ckpt.get("D"), precision)


@dataclass
class StageParts:
    """A trainer's arguments: the model, the data, the run folder and the process."""

    model: BaseModel
    data: TrainingData
    run: RunLayout
    process: Process


def stage_parts(cfg: TrainConfig, dataroot: str | Path = "dataset", name: str = "demo",
                checkpoints_dir: str | Path = "checkpoints", resume: bool = True, phase: str = "train",
                model: str = "pix2pixhd", main_name: str | None = None) -> StageParts:
    """Build what one stage trains into ``{checkpoints_dir}/{name}`` from ``{dataroot}/{phase}_A|B``: for
    ``model="face"`` on the generator of ``{checkpoints_dir}/{main_name}`` (default: ``name``'s parent)."""
    if model not in MODELS:
        raise ValueError(f"unknown model {model!r}; choose one of {MODELS}")
    run = RunLayout(checkpoints_dir, name)  # the name is checked before any work
    resume = check_bool("resume", resume)
    if model == "face":
        check_face_stage(cfg)  # before anything is built
    process = Process.start(cfg)
    data = TrainingData.open(cfg, dataroot, phase, process, hands=model != "face")  # the face stage's L1 is plain
    seed_everything(cfg.seed)
    main_run = RunLayout(checkpoints_dir, main_name or name.rsplit("/", 1)[0]) if model == "face" else None
    built = build_model(model, cfg, process, main_run, resuming=resume and run.latest.exists())
    if model == "face":
        data = data.face_crops(built.side)
    return StageParts(built, data, run, process)
