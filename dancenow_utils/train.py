"""The training loop (step 2): epochs of G then D steps, exact resume, a named loss log, visuals, checkpoints.

Everything a run produces lives in ``checkpoints/<name>/``:

- ``config.json``: the :class:`TrainConfig` the networks were built from
- ``latest.pth`` (every ``save_latest_freq`` iterations and at each epoch end), ``epoch_<n>.pth``
- ``loss_log.jsonl``: one JSON object per logged iteration, losses by name
- ``loss_curves.png`` and ``web/index.html`` (input | generated | real, newest first)

A run killed at any moment resumes from ``latest.pth`` with the same weights, optimiser state, learning rate, data
order and RNG state, so it ends exactly where an uninterrupted run would. Launched with ``torchrun``, it trains
with distributed data parallel (gloo on CPU, NCCL on CUDA); rank 0 writes the files.
"""

from __future__ import annotations

import json
import logging
import math
import os
import shutil
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from dancenow_utils.checkpoint import (
    check_architecture,
    load_checkpoint,
    rng_state,
    save_checkpoint,
    set_rng_state,
)
from dancenow_utils.config import TrainConfig
from dancenow_utils.data import AlignedDataset, to_image, to_tensor
from dancenow_utils.io_utils import atomic_write_text, write_image
from dancenow_utils.models.pix2pixhd import LOSS_NAMES, Pix2PixHD, resolve_device
from dancenow_utils.visualize import image_table_page, plot_losses, read_loss_log

log = logging.getLogger("dancenow")


def learning_rate(cfg: TrainConfig, epoch: int) -> float:
    """Constant for ``niter`` epochs, then linear decay towards 0 over ``niter_decay`` epochs (0-based epoch)."""
    if epoch < cfg.niter:
        return cfg.lr
    return cfg.lr * max(0.0, 1.0 - (epoch - cfg.niter + 1) / (cfg.niter_decay + 1))


def epoch_batches(n: int, batch_size: int, seed: int, epoch: int, rank: int = 0, world: int = 1) -> list[list[int]]:
    """The shuffled batches of one epoch, the same for a given (seed, epoch) on every run; sharded by rank."""
    g = torch.Generator().manual_seed(seed * 100_003 + epoch)
    perm = torch.randperm(n, generator=g).tolist()
    global_bs = batch_size * world
    batches = [perm[i: i + global_bs] for i in range(0, n, global_bs)]
    return [b[rank::world] for b in batches if b[rank::world]]


class Trainer:
    """Trains a :class:`Pix2PixHD` on ``{dataroot}/{phase}_A|B`` into ``{checkpoints_dir}/{name}``."""

    def __init__(self, cfg: TrainConfig, dataroot: str | Path = "dataset", name: str = "demo",
                 checkpoints_dir: str | Path = "checkpoints", resume: bool = True, phase: str = "train",
                 progress: bool = True) -> None:
        self.cfg = cfg
        self.dir = Path(checkpoints_dir) / name
        self.name = name
        self.progress = progress
        self.world = int(os.environ.get("WORLD_SIZE", "1"))
        self.rank = int(os.environ.get("RANK", "0"))
        self.device = resolve_device(cfg.device)
        if self.world > 1:
            self._init_distributed()
        if cfg.threads:
            torch.set_num_threads(cfg.threads)
        self.dataset = AlignedDataset(dataroot, phase, cfg.width, cfg.height, cfg.max_dataset_size,
                                      cfg.cache_images, cfg.flip)
        if cfg.temporal and len(self.dataset) < 2:
            raise ValueError(f"{dataroot}: the temporal model needs at least two consecutive frames")
        if cfg.temporal and cfg.flip:
            raise ValueError("flip is not supported with the temporal model (a pair must be flipped together)")
        torch.manual_seed(cfg.seed)
        np.random.seed(cfg.seed % 2**32)
        self.model = Pix2PixHD(cfg, self.device)
        self.epoch, self.epoch_iter, self.iteration = 0, 0, 0
        latest = self.dir / "latest.pth"
        if resume and latest.exists():
            self._resume(latest)
        elif self.is_main:  # a fresh start: the previous run's log and visuals would mix with this one's
            self.dir.mkdir(parents=True, exist_ok=True)
            (self.dir / "loss_log.jsonl").unlink(missing_ok=True)
            shutil.rmtree(self.dir / "web", ignore_errors=True)
        if self.world > 1:
            from torch.nn.parallel import DistributedDataParallel as DDP

            ids = [self.device.index] if self.device.type == "cuda" else None
            self.model.G_ddp = DDP(self.model.G, device_ids=ids)
            self.model.D_ddp = DDP(self.model.D, device_ids=ids)
        if self.is_main:
            cfg.save(self.dir / "config.json")
        self.fixed = self._fixed_batch()

    # ------------------------------------------------------------------------------------------------ setup
    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def _init_distributed(self) -> None:
        import torch.distributed as dist

        if not dist.is_initialized():
            backend = "nccl" if self.device.type == "cuda" else "gloo"
            dist.init_process_group(backend)
        if self.device.type == "cuda":
            self.device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
            torch.cuda.set_device(self.device)

    def _resume(self, path: Path) -> None:
        ckpt = load_checkpoint(path, self.device)
        check_architecture(ckpt["config"], self.cfg, path)
        m = self.model
        m.G.load_state_dict(ckpt["G"])
        m.D.load_state_dict(ckpt["D"])
        m.opt_G.load_state_dict(ckpt["opt_G"])
        m.opt_D.load_state_dict(ckpt["opt_D"])
        m.scaler.load_state_dict(ckpt["scaler"])
        self.epoch, self.epoch_iter, self.iteration = ckpt["epoch"], ckpt["epoch_iter"], ckpt["iteration"]
        set_rng_state(ckpt["rng"])
        if self.is_main:  # drop log lines written after this checkpoint (a run killed between saves)
            rows = [r for r in read_loss_log(self.dir / "loss_log.jsonl") if r["iteration"] <= self.iteration]
            atomic_write_text(self.dir / "loss_log.jsonl", "".join(json.dumps(r) + "\n" for r in rows))
        log.info("resumed %s at epoch %d, iteration %d", path, self.epoch + 1, self.iteration)

    @property
    def n_items(self) -> int:
        """Training items: frames, or consecutive pairs (frame t, frame t+1) for the temporal model."""
        return len(self.dataset) - 1 if self.cfg.temporal else len(self.dataset)

    def _batch(self, idx: list[int]) -> dict[str, torch.Tensor]:
        """Stack items ``idx`` into ``A``/``B`` (and ``A_next``/``B_next`` for the temporal model) on the device."""
        def stack(indices: list[int], key: str) -> torch.Tensor:
            return torch.stack([self.dataset[i][key] for i in indices]).to(self.device, non_blocking=True)

        batch = {"A": stack(idx, "A"), "B": stack(idx, "B")}
        if self.cfg.temporal:
            nxt = [i + 1 for i in idx]
            batch.update(A_next=stack(nxt, "A"), B_next=stack(nxt, "B"))
        return batch

    def _fixed_batch(self, n: int = 4) -> dict:
        """Evenly spaced training pairs shown on the web page (no random flip: no RNG is consumed)."""
        idx = np.linspace(0, len(self.dataset) - 1, min(n, len(self.dataset))).round().astype(int)
        pairs = [self.dataset.images(int(i)) for i in idx]
        return {k: torch.stack([to_tensor(p[j]) for p in pairs]) for j, k in enumerate(("A", "B"))}

    # ---------------------------------------------------------------------------------------------- saving
    def state(self) -> dict:
        m = self.model
        return {"G": m.G.state_dict(), "D": m.D.state_dict(), "opt_G": m.opt_G.state_dict(),
                "opt_D": m.opt_D.state_dict(), "scaler": m.scaler.state_dict(), "epoch": self.epoch,
                "epoch_iter": self.epoch_iter, "iteration": self.iteration, "rng": rng_state(),
                "config": self.cfg.to_dict(), "lr": learning_rate(self.cfg, self.epoch)}

    def save(self, which: str = "latest") -> Path:
        path = self.dir / f"{which}.pth"
        if self.is_main:
            save_checkpoint(path, self.state())
        return path

    def _log(self, losses: dict[str, float], lr: float, sec: float) -> None:
        row = {"epoch": self.epoch + 1, "epoch_iter": self.epoch_iter, "iteration": self.iteration,
               "lr": lr, "sec_per_iter": round(sec, 4), **{k: round(losses[k], 6) for k in LOSS_NAMES}}
        with open(self.dir / "loss_log.jsonl", "a") as f:
            f.write(json.dumps(row) + "\n")

    def save_visuals(self) -> None:
        """Generate the fixed samples and add them to ``web/index.html`` (unique names per iteration)."""
        fake = self.model.generate(self.fixed["A"])
        web = self.dir / "web"
        tag = f"iter{self.iteration:07d}"
        for kind, batch in (("input", self.fixed["A"]), ("generated", fake), ("real", self.fixed["B"])):
            tiles = [to_image(t) for t in batch]
            write_image(web / "images" / f"{tag}_{kind}.png", np.concatenate(tiles, axis=1))
        tags = sorted({p.name.split("_")[0] for p in (web / "images").glob("iter*_input.png")}, reverse=True)
        rows = [(f"iteration {int(t[4:])}", [(k, f"images/{t}_{k}.png") for k in ("input", "generated", "real")])
                for t in tags]
        image_table_page(web / "index.html", f"Training: {self.name}", rows, width=512,
                         note="Fixed training samples, newest first: pose input | generated | real frame.")

    # ------------------------------------------------------------------------------------------------ loop
    def train(self, max_iterations: int | None = None, callback: Callable[[Trainer], None] | None = None,
              max_seconds: float | None = None) -> dict[str, float]:
        """Train until the last epoch, or ``max_iterations`` in total, or ``max_seconds`` of this call (a compute
        budget, as used by the benchmarks); returns the last losses."""
        cfg = self.cfg
        started = time.perf_counter()
        n = self.n_items
        per_epoch = math.ceil(n / (cfg.batch_size * self.world))
        total = cfg.total_epochs * per_epoch
        goal = min(total, max_iterations) if max_iterations is not None else total
        losses: dict[str, float] = {}
        bar = tqdm(total=goal, initial=min(self.iteration, goal), desc=f"training {self.name}",
                   disable=not (self.progress and self.is_main))
        try:
            while self.epoch < cfg.total_epochs and self.iteration < goal:
                lr = learning_rate(cfg, self.epoch)
                self.model.set_lr(lr)
                batches = epoch_batches(n, cfg.batch_size, cfg.seed, self.epoch, self.rank, self.world)
                for idx in batches[self.epoch_iter:]:
                    t0 = time.perf_counter()
                    try:
                        losses, _ = self.model.train_step(**self._batch(idx))
                    except FloatingPointError as exc:
                        raise FloatingPointError(
                            f"{exc} at epoch {self.epoch + 1}, iteration {self.iteration + 1}: training stopped. "
                            f"The last good checkpoint {self.dir / 'latest.pth'} is kept; lower lr "
                            "(overrides={'lr': ...}) and resume.") from None
                    self.iteration += 1
                    self.epoch_iter += 1
                    if self.is_main:
                        if self.iteration % cfg.log_freq == 0 or self.iteration == goal:
                            self._log(losses, lr, time.perf_counter() - t0)
                        if self.iteration % cfg.display_freq == 0:
                            self.save_visuals()
                    if self.iteration % cfg.save_latest_freq == 0:
                        self.save("latest")
                    if callback is not None:
                        callback(self)
                    bar.update(1)
                    bar.set_postfix(epoch=self.epoch + 1, G=f"{losses['G_GAN']:.3f}", D=f"{losses['D_fake']:.3f}")
                    if max_seconds is not None and time.perf_counter() - started > max_seconds:
                        goal = self.iteration
                    if self.iteration >= goal:
                        break
                if self.epoch_iter >= len(batches):
                    self.epoch += 1
                    self.epoch_iter = 0
                    if self.epoch % cfg.save_epoch_freq == 0:
                        self.save(f"epoch_{self.epoch}")
                    self.save("latest")
        finally:
            bar.close()
        if self.is_main and self.iteration:
            self.save("latest")
            self.save_visuals()
            plot_losses(self.dir / "loss_log.jsonl", self.dir / "loss_curves.png", title=self.name)
            import matplotlib.pyplot as plt

            plt.close("all")
        return losses


def train(dataroot: str | Path = "dataset", name: str = "demo", cfg: TrainConfig | None = None,
          checkpoints_dir: str | Path = "checkpoints", resume: bool = True, progress: bool = True,
          max_iterations: int | None = None) -> Trainer:
    """Build a :class:`Trainer` and run it; returns the trainer (its ``dir`` holds the results)."""
    trainer = Trainer(cfg or TrainConfig(), dataroot, name, checkpoints_dir, resume, progress=progress)
    trainer.train(max_iterations)
    return trainer


def main(argv: list[str] | None = None) -> None:
    """``python -m dancenow_utils.train --dataroot dataset --name demo --preset demo [--set key=value ...]``
    (also the entry point for ``torchrun``)."""
    import argparse

    from dancenow_utils.config import make_config

    ap = argparse.ArgumentParser(description="Train the pose-to-appearance GAN.")
    ap.add_argument("--dataroot", default="dataset")
    ap.add_argument("--name", default="demo")
    ap.add_argument("--preset", default="demo")
    ap.add_argument("--checkpoints_dir", default="checkpoints")
    ap.add_argument("--no-resume", action="store_true")
    ap.add_argument("--max-iterations", type=int, default=0)
    ap.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE", help="config overrides")
    a = ap.parse_args(argv)
    overrides = dict(kv.split("=", 1) for kv in a.set)
    cfg = make_config(a.preset, overrides)
    trainer = Trainer(cfg, a.dataroot, a.name, a.checkpoints_dir, not a.no_resume, progress=True)
    trainer.train(a.max_iterations or None)
    if trainer.world > 1:
        torch.distributed.destroy_process_group()


if __name__ == "__main__":
    main()
