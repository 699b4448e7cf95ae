"""Training stages of the full method: global generator, then local enhancer, then face GAN.

- ``"global"``: the pix2pixHD global generator. For a config whose ``netG`` is ``"local"`` this trains the global
  generator that the local enhancer starts from: half the resolution (per enhancer), twice the filters, into
  ``checkpoints/<name>/global/``.
- ``"local"``: the local enhancer at full resolution into ``checkpoints/<name>/``, its global branch initialised
  from ``checkpoints/<name>/global/latest_G.pth`` (an error names that file if it is missing).
- ``"face"``: the residual face GAN on top of the frozen generator of ``checkpoints/<name>/``, into
  ``checkpoints/<name>/face/``, with the config's ``face_*`` settings.

Every stage is trained by the same :class:`~dancenow_utils.training.trainer.Trainer`. The temporal model
(``temporal=True``)
is orthogonal: any stage's generator can be temporal.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

import torch

from dancenow_utils.checkpoint import inference_weights, load_checkpoint, load_generator_file
from dancenow_utils.config import TrainConfig
from dancenow_utils.layout import RunLayout, check_name
from dancenow_utils.models.networks import count_parameters
from dancenow_utils.models.pix2pixhd import Pix2PixHD
from dancenow_utils.params import check_bool
from dancenow_utils.training.build import stage_parts
from dancenow_utils.training.trainer import Trainer, face_stage_config

STAGES = ("global", "local", "face")


def planned_stages(cfg: TrainConfig, stage: str = "all") -> list[str]:
    """The stages ``stage`` stands for, in training order: ``"all"`` is the full method for this config (global,
    then local for a local-enhancer config, then face for pose inputs when ``face_stage``); a stage name is
    itself."""
    if stage == "all":
        main = ["global", "local"] if cfg.netG == "local" else ["global"]
        return main + (["face"] if cfg.face_stage and not cfg.label_nc else [])
    if stage not in STAGES:
        raise ValueError(f"unknown stage {stage!r}; choose 'all' or one of {STAGES}")
    return [stage]


def global_stage_config(cfg: TrainConfig) -> TrainConfig:
    """The global generator a local-enhancer config starts from: half size per enhancer, twice the filters, and
    one discriminator scale fewer per enhancer (pix2pixHD and EDN: 2 scales, then 3 for the local enhancer)."""
    if cfg.netG != "local":
        return cfg
    k = 2**cfg.n_local_enhancers
    return dataclasses.replace(cfg, netG="global", ngf=cfg.ngf * k, width=cfg.width // k, height=cfg.height // k,
                               num_D=max(1, cfg.num_D - cfg.n_local_enhancers))


def stage_name(name: str, stage: str, cfg: TrainConfig) -> str:
    """The run folder (under checkpoints/) a stage trains into."""
    if stage == "face":
        return f"{name}/face"
    return f"{name}/global" if stage == "global" and cfg.netG == "local" else name


def require_global_stage(global_run: RunLayout) -> None:
    path = global_run.generator("latest")
    if not path.exists() and not global_run.latest.exists():
        raise FileNotFoundError(f"{path}: no global-stage checkpoint. The local stage starts from it: run "
                                "notebook 02 with stage='global' first (same name and preset).")


def _copy_matching(net: torch.nn.Module, state: dict[str, torch.Tensor], path: Path, what: str) -> int:
    target = net.state_dict()
    missing = [k for k in target if k not in state or state[k].shape != target[k].shape]
    if missing:
        raise ValueError(f"{path} does not fit this local enhancer's {what} (e.g. {missing[:2]}); train the global "
                         "stage with the same preset.")
    net.load_state_dict({k: state[k] for k in target})
    return len(target)


def init_local_from_global(model: Pix2PixHD, global_run: RunLayout) -> int:
    """Start a local enhancer (``model``) from the trained global stage; returns the tensors copied.

    The global generator becomes the local enhancer's global branch, and a feature encoder carries over as it is.
    The global stage's discriminator is carried over too, as pix2pixHD's ``--load_pretrain`` and EDN do: its
    scale k saw the half-size image, which is what scale k + ``n_local_enhancers`` of the local D sees, so it
    becomes that scale; the full-resolution scales start fresh (with ``num_D=1`` nothing of D fits). Without the
    global stage's full checkpoint (``latest.pth``, e.g. only ``latest_G.pth`` kept) the local D starts fresh, with
    a note."""
    require_global_stage(global_run)
    full = global_run.latest.exists()
    path = global_run.latest if full else global_run.generator("latest")
    state = load_checkpoint(path) if full else load_generator_file(global_run)  # one read of the global stage
    # the global generator as inference runs it (its moving average, where the stage kept one), from either file
    copied = _copy_matching(model.G.global_net, inference_weights(state), path, "global branch")
    if "E" in model.nets and "E" in state:
        copied += _copy_matching(model.nets["E"], inference_weights(state, "E"), path, "feature encoder")
    if not full:
        print(f"{global_run.latest} is missing: the local stage's discriminator starts from scratch")
        return copied
    D, shift = model.D, model.cfg.n_local_enhancers
    saved = len({k.split(".")[1] for k in state["D"] if k.startswith("nets.")})
    if saved != max(1, len(D.nets) - shift):
        raise ValueError(f"{path}: its discriminator has {saved} scale(s), but this local stage's {len(D.nets)} "
                         f"take {max(1, len(D.nets) - shift)} from the global stage (num_D - n_local_enhancers). "
                         "Train the global stage again with this preset.")
    for k in range(saved):
        if k + shift < len(D.nets):
            prefix = f"nets.{k}."
            copied += _copy_matching(D.nets[k + shift], {n[len(prefix):]: v for n, v in state["D"].items()
                                                         if n.startswith(prefix)}, path, f"discriminator scale {k}")
    return copied


def train_stage(stage: str, cfg: TrainConfig, dataroot: str | Path = "dataset", name: str = "demo",
                checkpoints_dir: str | Path = "checkpoints", resume: bool = True, progress: bool = True,
                max_iterations: int | None = None, max_seconds: float | None = None) -> Trainer:
    """Run one stage (module docstring); returns its trainer, whose ``dir`` holds the results."""
    trainer = stage_trainer(stage, cfg, dataroot, name, checkpoints_dir, resume, progress)
    trainer.train(max_iterations, max_seconds=max_seconds)
    return trainer


def build_trainer(cfg: TrainConfig, dataroot: str | Path = "dataset", name: str = "demo",
                  checkpoints_dir: str | Path = "checkpoints", resume: bool = True, phase: str = "train",
                  progress: bool = True, model: str = "pix2pixhd", main_name: str | None = None) -> Trainer:
    """A trainer for ``cfg`` as it is, into ``{checkpoints_dir}/{name}`` (``model="face"``: the face GAN on
    ``{checkpoints_dir}/{main_name}``); :func:`stage_trainer` is the same for a stage of the method."""
    parts = stage_parts(cfg, dataroot, name, checkpoints_dir, resume, phase, model, main_name)
    return Trainer(parts.model, parts.data, parts.run, cfg, parts.process, resume=resume, progress=progress)


def stage_trainer(stage: str, cfg: TrainConfig, dataroot: str | Path = "dataset", name: str = "demo",
                  checkpoints_dir: str | Path = "checkpoints", resume: bool = True, progress: bool = True) -> Trainer:
    """The trainer of one stage, its model built with the stage's config and starting weights: the global stage
    of a local preset at half size, the local enhancer from the trained global stage, the face GAN on the trained
    generator (module docstring)."""
    if stage not in STAGES:
        raise ValueError(f"unknown stage {stage!r}; choose one of {STAGES}")
    check_name(name)
    resume = check_bool("resume", resume)
    if stage == "local" and cfg.netG != "local":
        raise ValueError(f"stage='local' needs a local-enhancer config (netG='local', e.g. preset 'edn_local'); "
                         f"preset {cfg.preset!r} has netG={cfg.netG!r}")
    run_name = stage_name(name, stage, cfg)
    if stage == "face":
        return build_trainer(face_stage_config(cfg), dataroot, run_name, checkpoints_dir, resume, progress=progress,
                             model="face", main_name=name)
    global_run = RunLayout(checkpoints_dir, name).stage("global")
    if stage == "local":
        require_global_stage(global_run)
    run_cfg = global_stage_config(cfg) if stage == "global" else cfg
    parts = stage_parts(run_cfg, dataroot, run_name, checkpoints_dir, resume)
    if stage == "local" and not (resume and parts.run.latest.exists()):
        init_local_from_global(parts.model, global_run)  # a resumed local stage loads its own weights instead
    return Trainer(parts.model, parts.data, parts.run, run_cfg, parts.process, resume=resume, progress=progress)


@dataclass
class StageResult:
    """What a finished stage leaves behind: its run folder and a description (its trainer is freed)."""

    stage: str
    run: RunLayout
    iteration: int
    losses: dict[str, float]
    description: str

    @property
    def dir(self) -> Path:
        return self.run.dir

    def latest_visuals(self) -> list[Path]:
        return self.run.latest_visuals()


def train_stages(stage: str, cfg: TrainConfig, dataroot: str | Path = "dataset", name: str = "demo",
                 checkpoints_dir: str | Path = "checkpoints", resume: bool = True,
                 progress: bool = True) -> dict[str, StageResult]:
    """Run the stages ``stage`` stands for (:func:`planned_stages`) one after the other; what each left, by stage.

    Each stage resumes on its own, so an interrupted ``"all"`` run continues with the stage it was in. A stage's
    networks, optimisers and loader are freed before the next starts (and the GPU's cache emptied): a local or face
    stage does not share the GPU with the stage before it."""
    check_name(name)
    resume = check_bool("resume", resume)
    results = {}
    for st in planned_stages(cfg, stage):
        print(f"== stage {st!r}")
        trainer = train_stage(st, cfg, dataroot, name, checkpoints_dir, resume, progress)
        results[st] = StageResult(st, trainer.run, trainer.iteration, trainer.last_losses, describe_trainer(trainer))
        print(results[st].description)
        trainer.close()
        del trainer
    return results


def describe_trainer(trainer: Trainer) -> str:
    """Network sizes, data and device of a stage's trainer, for the notebook."""
    nets = ", ".join(f"{k} {count_parameters(n):,} parameters" for k, n in trainer.model.nets.items())
    kind = "face stage" if trainer.kind == "face" else f"generator ({trainer.cfg.netG})"
    return (f"{kind}: {nets}; {trainer.n_items} training items; device {trainer.device}, precision "
            f"{trainer.model.precision}; in {trainer.dir}")
