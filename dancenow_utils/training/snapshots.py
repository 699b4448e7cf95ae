"""Epoch visualisation (step 5): watch a fresh model learn, as in the original project's "initial learning" figure.

A new model is trained for ``iterations`` steps; every ``snapshot_every`` steps its outputs for a fixed set of
inputs are saved. The result is a grid (rows = iterations, columns = samples) and an animated GIF. The snapshot run
never writes into a real run: a name that holds a trained model without snapshots is refused.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from dancenow_utils.config import TrainConfig
from dancenow_utils.data.datasets import to_image
from dancenow_utils.io_utils import write_image
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
    if run.dir.exists() and any(run.dir.iterdir()):
        if not run.learning.is_dir():
            raise ValueError(f"{run.dir} holds a trained run, not learning snapshots: notebook 05 trains a fresh "
                             f"model and would replace it. Choose another name (e.g. name='Initial_epoch').")
        shutil.rmtree(run.dir)  # an earlier snapshot run of the same name: a fresh one replaces it
    trainer = build_trainer(cfg, dataroot, name, checkpoints_dir, resume=False, progress=progress)
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
