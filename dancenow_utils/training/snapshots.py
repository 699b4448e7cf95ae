"""Epoch visualisation (step 5): watch a fresh model learn, as in the original project's "initial learning" figure.

A new model is trained for ``iterations`` steps; every ``snapshot_every`` steps its outputs for a fixed set of
inputs are saved. The result is a grid (rows = iterations, columns = samples) and an animated GIF. The snapshot run
never writes into a real run: a name that holds a trained model without snapshots is refused, and so is a snapshot
run that notebook 02 trained further (its marker says "run" then, or its loss log goes past the snapshots).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from dancenow_utils.config import TrainConfig
from dancenow_utils.data.datasets import to_image
from dancenow_utils.folders import FolderError, clear_folder, folder_kind, mark, marker, require_kind, run_lock
from dancenow_utils.io_utils import read_jsonl, write_image
from dancenow_utils.layout import RunLayout
from dancenow_utils.models.pix2pixhd import input_pictures
from dancenow_utils.params import check_int
from dancenow_utils.training.stages import build_trainer
from dancenow_utils.training.trainer import Trainer
from dancenow_utils.video import write_gif
from dancenow_utils.visualize import grid, image_browser, label


@dataclass
class LearningSnapshots:
    run: RunLayout
    iterations: list[int] = field(default_factory=list)
    rows: list[list[np.ndarray]] = field(default_factory=list)  # per snapshot: generated image per sample
    inputs: list[np.ndarray] = field(default_factory=list)
    reals: list[np.ndarray] = field(default_factory=list)

    @property
    def out_dir(self) -> Path:
        return self.run.learning

    @property
    def grid_path(self) -> Path:
        return self.run.learning_grid

    @property
    def gif_path(self) -> Path:
        return self.run.learning_gif

    def browser(self):
        """A slider over the snapshots (one row of samples per iteration)."""
        return image_browser(len(self.rows), lambda k: label(np.concatenate(self.rows[k], axis=1),
                                                             f"iteration {self.iterations[k]}"), "snapshot")

    def grid_image(self) -> np.ndarray:
        rows = [[label(x, "pose") for x in self.inputs]]
        rows += [[label(img, f"it {it}") if j == 0 else img for j, img in enumerate(row)]
                 for it, row in zip(self.iterations, self.rows)]
        rows.append([label(x, "real") for x in self.reals])
        return grid(rows)


def learn_with_snapshots(cfg: TrainConfig, dataroot: str | Path = "dataset", name: str = "Initial_epoch",
                         iterations: int = 100, snapshot_every: int = 5, n_samples: int = 4,
                         checkpoints_dir: str | Path = "checkpoints", progress: bool = True) -> LearningSnapshots:
    """Train a fresh model for ``iterations`` steps, saving outputs every ``snapshot_every`` steps."""
    iterations = check_int("iterations", iterations, 1)
    snapshot_every = check_int("snapshot_every", snapshot_every, 1, " (iterations between snapshots)")
    n_samples = check_int("n_samples", n_samples, 1)
    run = RunLayout(checkpoints_dir, name)
    with run_lock(run.dir, f"notebook 05's learning snapshots of {name}"):
        _clear_earlier_snapshots(run)
        trainer = build_trainer(cfg, dataroot, name, checkpoints_dir, resume=False, progress=progress)
        mark(run.dir, "snapshots")
        out = _train_with_snapshots(trainer, cfg, run, iterations, snapshot_every, n_samples)
        mark(run.dir, "snapshots", iteration=trainer.iteration)
    return out


def _clear_earlier_snapshots(run: RunLayout) -> None:
    """Empty an earlier snapshot run of this name (a fresh one replaces it); refuse anything else."""
    kind = folder_kind(run.dir)
    if kind == "empty":
        return
    if kind == "run":
        raise FolderError(f"{run.dir} holds a trained run, not learning snapshots: notebook 05 trains a fresh "
                          f"model and would replace it. Choose another name (e.g. name='Initial_epoch').")
    require_kind(run.dir, ("snapshots",), "replace", "Choose another name (e.g. name='Initial_epoch').")
    info = marker(run.dir)
    last = max((int(r.get("iteration", 0)) for r in read_jsonl(run.loss_log)), default=0)
    if "iteration" in info:
        further = last > int(info["iteration"])
    else:  # written before markers: notebook 02 resaving latest.pth after the grid was drawn trained it further
        grid = run.learning_grid
        further = run.latest.exists() and grid.exists() and run.latest.stat().st_mtime > grid.stat().st_mtime
    if further:
        raise FolderError(f"{run.dir} began as notebook 05's snapshots but was trained further (to iteration "
                          f"{last}, by notebook 02): it is a training run now and notebook 05 would replace it. "
                          "Choose another name (e.g. name='Initial_epoch2'), or move it away yourself.")
    clear_folder(run.dir)


def _train_with_snapshots(trainer: Trainer, cfg: TrainConfig, run: RunLayout, iterations: int,
                          snapshot_every: int, n_samples: int) -> LearningSnapshots:
    fixed = {k: v[:n_samples] for k, v in trainer.fixed.items()}
    out = LearningSnapshots(run)
    out.inputs = [to_image(t) for t in input_pictures(fixed, cfg.label_nc)]
    out.reals = [to_image(t) for t in fixed["B"]]

    def snapshot(tr: Trainer) -> None:
        if tr.iteration % snapshot_every == 0 or tr.iteration == 1:
            imgs = [to_image(t) for t in tr.model.visuals(tr.to_device(fixed))["generated"]]
            out.iterations.append(tr.iteration)
            out.rows.append(imgs)
            write_image(out.out_dir / f"iter_{tr.iteration:06d}.png", np.concatenate(imgs, axis=1))

    trainer.train(max_iterations=iterations, callback=snapshot)
    write_image(out.grid_path, out.grid_image())
    frames = [label(np.concatenate(row, axis=1), f"iteration {it}") for it, row in zip(out.iterations, out.rows)]
    write_gif(out.gif_path, frames, fps=4)
    return out
