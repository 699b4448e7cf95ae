"""Training stages of the full method: global generator, then local enhancer, then face GAN.

- ``"global"``: the pix2pixHD global generator. For a config whose ``netG`` is ``"local"`` this trains the global
  generator that the local enhancer starts from: half the resolution (per enhancer), twice the filters, into
  ``checkpoints/<name>/global/``.
- ``"local"``: the local enhancer at full resolution into ``checkpoints/<name>/``, its global branch initialised
  from ``checkpoints/<name>/global/latest.pth`` (an error names that file if it is missing).
- ``"face"``: the residual face GAN on top of the frozen generator of ``checkpoints/<name>/``.

The temporal model (``temporal=True`` in the config) is orthogonal: any stage's generator can be temporal.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import torch

from dancenow_utils.checkpoint import load_checkpoint
from dancenow_utils.config import TrainConfig

STAGES = ("global", "local", "face")


def global_stage_config(cfg: TrainConfig) -> TrainConfig:
    """The global generator a local-enhancer config starts from (half size per enhancer, twice the filters)."""
    if cfg.netG != "local":
        return cfg
    k = 2**cfg.n_local_enhancers
    return dataclasses.replace(cfg, netG="global", ngf=cfg.ngf * k, width=cfg.width // k, height=cfg.height // k)


def stage_name(name: str, stage: str, cfg: TrainConfig) -> str:
    """The run folder (under checkpoints/) a stage trains into."""
    return f"{name}/global" if stage == "global" and cfg.netG == "local" else name


def init_local_from_global(G: torch.nn.Module, global_ckpt: Path) -> int:
    """Copy a trained global generator into a local enhancer's global branch; returns the tensors copied."""
    if not global_ckpt.exists():
        raise FileNotFoundError(f"{global_ckpt}: no global-stage checkpoint. The local stage starts from it: run "
                                "notebook 02 with stage='global' first (same name and preset).")
    state = load_checkpoint(global_ckpt)["G"]
    target = G.global_net.state_dict()
    missing = [k for k in target if k not in state or state[k].shape != target[k].shape]
    if missing:
        raise ValueError(f"{global_ckpt} does not fit this local enhancer's global branch (e.g. {missing[:2]}); "
                         "train the global stage with the same preset.")
    G.global_net.load_state_dict({k: state[k] for k in target})
    return len(target)


def train_stage(stage: str, cfg: TrainConfig, dataroot: str | Path = "dataset", name: str = "demo",
                checkpoints_dir: str | Path = "checkpoints", resume: bool = True, progress: bool = True,
                max_iterations: int | None = None, max_seconds: float | None = None, face_epochs: int = 2):
    """Run one stage (module docstring); returns its trainer, whose ``dir`` holds the results."""
    from dancenow_utils.train import Trainer

    if stage not in STAGES:
        raise ValueError(f"unknown stage {stage!r}; choose one of {STAGES}")
    if stage == "face":
        from dancenow_utils.face import FaceTrainer

        trainer = FaceTrainer(dataroot, name, checkpoints_dir, batch_size=cfg.batch_size, seed=cfg.seed,
                              device=cfg.device, progress=progress)
        trainer.train(face_epochs, max_seconds)
        return trainer
    if stage == "local" and cfg.netG != "local":
        raise ValueError(f"stage='local' needs a local-enhancer config (netG='local', e.g. preset 'edn_local'); "
                         f"preset {cfg.preset!r} has netG={cfg.netG!r}")
    run_cfg = global_stage_config(cfg) if stage == "global" else cfg
    trainer = Trainer(run_cfg, dataroot, stage_name(name, stage, cfg), checkpoints_dir, resume, progress=progress)
    if stage == "local" and trainer.iteration == 0:
        init_local_from_global(trainer.model.G, Path(checkpoints_dir) / name / "global" / "latest.pth")
    trainer.train(max_iterations, max_seconds=max_seconds)
    return trainer


def checkpoint_stages(name: str, checkpoints_dir: str | Path = "checkpoints") -> dict[str, bool | str]:
    """Which stages ``checkpoints/<name>`` has: generator kind, temporal or not, face stage, global stage."""
    root = Path(checkpoints_dir) / name
    info: dict[str, bool | str] = {"generator": "none", "temporal": False, "face": False, "global_stage": False}
    if (root / "config.json").exists() and (root / "latest.pth").exists():
        cfg = TrainConfig.load(root / "config.json")
        info.update(generator=cfg.netG, temporal=cfg.temporal)
    info["face"] = (root / "face" / "latest.pth").exists()
    info["global_stage"] = (root / "global" / "latest.pth").exists()
    return info


def describe_stages(name: str, checkpoints_dir: str | Path = "checkpoints") -> str:
    """One line saying which stages a checkpoint has and which it lacks (never silently ignored)."""
    s = checkpoint_stages(name, checkpoints_dir)
    if s["generator"] == "none":
        return f"{name}: no trained generator in {Path(checkpoints_dir) / name}; run notebook 02 first"
    parts = [f"generator: {s['generator']}" + (" (temporal)" if s["temporal"] else " (per frame)")]
    parts.append("face stage: yes" if s["face"] else "face stage: not trained (notebook 02 with stage='face')")
    if s["generator"] == "local":
        parts.append("started from the global stage" if s["global_stage"] else "global stage checkpoint missing")
    return f"{name}: " + "; ".join(parts)
