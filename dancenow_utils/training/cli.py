"""The command line of training: ``python -m dancenow_utils.training`` (and ``torchrun ... -m
dancenow_utils.training``).

One stage per call (``--stage global|local|face``); notebook 02 runs every stage of a preset with
:func:`~dancenow_utils.training.stages.train_stages`.
"""

from __future__ import annotations

import argparse

import torch

from dancenow_utils.config import make_config, parse_key_values
from dancenow_utils.folders import FolderError, RunInUse, check_name
from dancenow_utils.training.stages import STAGES, train_stage


def main(argv: list[str] | None = None) -> None:
    """``python -m dancenow_utils.training --dataroot dataset --name demo --preset demo [--stage global]
    [--set key=value ...]`` (also the entry point for ``torchrun``)."""
    ap = argparse.ArgumentParser(description="Train the pose-to-appearance GAN (one stage).")
    ap.add_argument("--dataroot", default="dataset")
    ap.add_argument("--name", default="demo")
    ap.add_argument("--preset", default="demo")
    ap.add_argument("--stage", default="global", choices=STAGES,
                    help="global (or the global stage of a local preset), local, or face")
    ap.add_argument("--checkpoints_dir", default="checkpoints")
    ap.add_argument("--no-resume", action="store_true")
    ap.add_argument("--max-iterations", type=int, default=0)
    ap.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE", help="config overrides")
    a = ap.parse_args(argv)
    try:
        cfg = make_config(a.preset, parse_key_values(a.set))
        check_name(a.name, "--name")
    except (KeyError, ValueError) as exc:
        ap.error(str(exc))
    if a.max_iterations < 0:
        ap.error("--max-iterations must be 0 (no limit) or more")
    try:
        trainer = train_stage(a.stage, cfg, a.dataroot, a.name, a.checkpoints_dir, not a.no_resume,
                              max_iterations=a.max_iterations or None)
    except (RunInUse, FolderError) as exc:  # another process trains this run, or the folder is not a run
        ap.exit(1, f"{ap.prog}: error: {exc}\n")
    if trainer.world > 1:
        torch.distributed.barrier()  # rank 0 may still be saving: leave together, or gloo aborts the others
        torch.distributed.destroy_process_group()


if __name__ == "__main__":
    main()
