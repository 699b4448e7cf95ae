"""The training loop (step 2): one trainer for every stage, exact resume, a named loss log, visuals, checkpoints.

Everything a run produces lives in ``checkpoints/<name>/`` (layout: :mod:`dancenow_utils.layout`). The trainer
drives any model that follows :class:`~dancenow_utils.models.base.BaseModel`: the pix2pixHD generator (global or
local enhancer, per frame or temporal) and the face GAN. A run killed at any moment resumes from ``latest.pth``
with the same weights, optimiser state, learning rate, data order and RNG state, so it ends exactly where an
uninterrupted run would; Ctrl-C saves ``latest`` first. Launched with ``torchrun`` (or ``gpus`` in notebook 02), it
trains with distributed data parallel (gloo on CPU; NCCL for CUDA tensors, gloo for the control messages); rank 0
writes the files. Whatever can differ between ranks (the VGG weights found, Ctrl-C, time limits, a non-finite loss)
is agreed by every rank, so they train the same objective and stop at the same step.
"""

from __future__ import annotations

import contextlib
import datetime
import gc
import json
import logging
import shutil
import signal
import sys
import threading
import time
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset
from tqdm.auto import tqdm

from dancenow_utils.checkpoint import (
    check_architecture,
    describe_changes,
    load_checkpoint,
    payload_bytes,
    rng_state,
    save_checkpoint,
    set_rng_state,
    training_changes,
)
from dancenow_utils.config import ARCH_KEYS, FACE_ARCH_KEYS, TrainConfig
from dancenow_utils.data.datasets import AlignedDataset, EpochBatchSampler, to_image
from dancenow_utils.folders import LOCK, MARKER, folder_kind, mark, require_kind, run_lock
from dancenow_utils.io_utils import append_jsonl, read_jsonl, write_image, write_json, write_jsonl
from dancenow_utils.layout import RunLayout
from dancenow_utils.models.base import BaseModel
from dancenow_utils.params import check_bool
from dancenow_utils.pose.settings import PoseSettings
from dancenow_utils.training import distributed
from dancenow_utils.training.build import Process, StageParts, TrainingData, stage_parts
from dancenow_utils.training.memory import MemoryEstimate, check_fits, estimate_training_memory, memory_advice
from dancenow_utils.visualize import image_table_page, plot_losses

log = logging.getLogger("dancenow")
GPU_CHECK_FREQ = 10  # check_freq=0 on a GPU: iterations between the agreed checks (each a device sync)


def learning_rate(cfg: TrainConfig, epoch: int) -> float:
    """pix2pixHD's schedule (0-based ``epoch``): constant through epoch ``niter + 1`` (1-based), then lower by
    ``lr / niter_decay`` per epoch (20 + 20 epochs: 21 at lr, then 0.95 lr ... 0.05 lr)."""
    if epoch <= cfg.niter or cfg.niter_decay == 0:
        return cfg.lr
    return cfg.lr * max(0.0, 1.0 - (epoch - cfg.niter) / cfg.niter_decay)


class _DeferredInterrupt:
    """Ctrl-C during training sets a flag; the loop saves ``latest`` after the current step and stops.
    A second Ctrl-C interrupts at once."""

    def __init__(self) -> None:
        self.requested = False

    @contextlib.contextmanager
    def installed(self) -> Iterator[_DeferredInterrupt]:
        if threading.current_thread() is not threading.main_thread():
            yield self
            return
        previous = signal.getsignal(signal.SIGINT)

        def handler(signum, frame):
            if self.requested:
                signal.signal(signal.SIGINT, previous)
                raise KeyboardInterrupt
            self.requested = True

        signal.signal(signal.SIGINT, handler)
        try:
            yield self
        finally:
            signal.signal(signal.SIGINT, previous)


class Trainer:
    """Trains ``model`` on ``data`` into the run folder ``run``: the loop, exact resume, the agreed checks of a
    distributed run, checkpoints, the loss log and visuals. What it is handed is built by
    :func:`~dancenow_utils.training.build.stage_parts` (and :func:`~dancenow_utils.training.stages.build_trainer`,
    which also gives a stage its starting weights).
    """

    def __init__(self, model: BaseModel, data: TrainingData | None = None, run: RunLayout | None = None,
                 cfg: TrainConfig | None = None, process: Process | None = None, resume: bool = True,
                 progress: bool = True, **legacy) -> None:
        if isinstance(model, TrainConfig):  # the signature before issue 27: Trainer(cfg, dataroot, name, ...)
            warnings.warn("Trainer(cfg, dataroot, name, ...) is deprecated (it goes in the next release): use "
                          "dancenow_utils.training.stages.build_trainer(cfg, dataroot, name, ...)",
                          DeprecationWarning, stacklevel=2)
            cfg, parts, resume = model, *_legacy_parts(model, data, run, cfg, process, resume, legacy)
            model, data, run, process = parts.model, parts.data, parts.run, parts.process
        elif legacy or data is None or run is None or cfg is None:
            raise TypeError("Trainer(model, data, run, cfg, process=None, resume=True, progress=True): "
                            f"missing model, data, run or cfg, or unknown arguments {sorted(legacy)}")
        process = process or Process(model.device)
        self.cfg, self.name, self.progress, self.kind = cfg, run.name, progress, model.kind
        self.run, self.dir = run, run.dir
        self.device, self.rank, self.world = process.device, process.rank, process.world
        self.data, self.model = data, model
        self.epoch, self.epoch_iter, self.iteration = 0, 0, 0
        self.saved_iteration: int | None = None  # iteration of the latest.pth on disk (None: none yet)
        self.moved_aside: Path | None = None
        resume = check_bool("resume", resume)
        with self._locked("building the trainer"):
            self._prepare_run(resume)
            if self.is_main:
                cfg.save(self.run.config)
                write_json(self.run.dataset_record, self.data.record())
                self._latest_stamp = self._stamp()
        if self.world > 1:
            self._agree_on_resume()  # also the point where every rank waits for rank 0's folder
            self.model.wrap_ddp()
        weights, drawn = self.data.sampling_weights(cfg.pose_balance)
        if drawn and self.is_main:
            print(drawn)
        flips = self.data.flip_chances(cfg)
        if cfg.mirror and isinstance(flips, list) and self.is_main:
            print(f"mirror={cfg.mirror:g}: {sum(c > 0 for c in flips)} of {len(flips)} training pairs "
                  f"({cfg.mirror_kinds}) may be drawn mirrored")
        self.sampler = EpochBatchSampler(len(self.dataset), cfg.batch_size, cfg.seed, self.rank, self.world,
                                         flips, weights,
                                         cfg.jitter if self.kind != "face" else 0.0, cfg.jitter_kind,
                                         cfg.total_epochs - cfg.jitter_off_epochs if cfg.jitter_off_epochs else None)
        self.loader = self._loader()
        self.fixed = self._fixed_batch()
        self._last_save = time.monotonic()
        self.memory: MemoryEstimate | None = None
        self.last_losses: dict[str, float] = {}  # the last logged losses of train()
        if self.device.type == "cuda":
            self.memory = self.memory_estimate()
            if self.is_main:
                print(check_fits(self.memory, self.device, cfg, self.model.precision, f"{self.kind} {self.name}"))
        if self.is_main:
            print(self.disk_plan())

    # ------------------------------------------------------------------------------------------------ setup
    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def dataset(self) -> Dataset:
        """The items an epoch goes through: frames, consecutive pairs (temporal model) or face crops."""
        return self.data.items

    @property
    def frames(self) -> AlignedDataset:
        return self.data.frames

    @property
    def pose_settings(self) -> PoseSettings | None:
        return self.data.pose_settings

    @property
    def n_items(self) -> int:
        """Training items per epoch: frames, consecutive pairs (temporal model) or face crops."""
        return len(self.dataset)

    @contextlib.contextmanager
    def _locked(self, doing: str) -> Iterator[None]:
        """Hold the run's lock (rank 0: one process per run; the others follow rank 0)."""
        if not self.is_main:
            yield
            return
        with run_lock(self.dir, f"{self.kind} training of {self.name}: {doing}"):
            yield

    def _stamp(self) -> tuple[int, int] | None:
        """``latest.pth``'s modification time and size: another process's save changes them."""
        try:
            st = self.run.latest.stat()
        except FileNotFoundError:
            return None
        return st.st_mtime_ns, st.st_size

    def _check_not_changed_elsewhere(self) -> None:
        if self.is_main and self._stamp() != getattr(self, "_latest_stamp", self._stamp()):
            raise RuntimeError(f"{self.run.latest} was written by another process or trainer since this trainer "
                               "was built: two trainings of one run would overwrite each other. Build the trainer "
                               "again to resume from it (or use another name).")

    def _prepare_run(self, resume: bool) -> None:
        """Resume from ``latest.pth``, or start fresh with any earlier run moved aside (never deleted)."""
        if self.is_main:
            self._check_folder_is_a_run()
            for tmp in self.run.temp_files():  # a save killed mid-write (each up to a checkpoint's size)
                tmp.unlink(missing_ok=True)
        if resume and self.run.latest.exists():
            self._check_same_dataset()
            self._resume(self.run.latest)
        elif self.is_main:
            self._move_previous_run_aside()
            self.dir.mkdir(parents=True, exist_ok=True)
        if self.is_main:
            mark(self.dir, "run")  # a snapshot run trained further here is a run now: notebook 05 keeps it

    def _check_folder_is_a_run(self) -> None:
        """Refuse to train into (or move aside) a folder that is not a run: transfer results, or files the project
        did not write. A run of an older version (no marker) with files of the user's beside it is still a run."""
        kind = folder_kind(self.dir)
        if kind == "foreign" and (self.run.latest.exists() or self.run.config.exists()):
            return
        require_kind(self.dir, ("run", "snapshots"), "train into",
                     f"Choose another name, or another checkpoints_dir than {self.run.checkpoints_dir}.")

    def _move_previous_run_aside(self) -> None:
        """Move an earlier run's training files (and its face stage, which was trained on top of it) to
        ``<name>.old-<time>/``. The global stage a local enhancer starts from stays where it is."""
        trained = [p for p in (self.run.latest, self.run.loss_log, *self.dir.glob("*_G.pth")) if p.exists()]
        if not trained:
            return
        stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
        self.moved_aside = self.dir.with_name(f"{self.dir.name}.old-{stamp}")
        self.moved_aside.mkdir(parents=True)
        for p in self.dir.iterdir():
            if p.name not in ("global", LOCK):  # the lock is this process's; the marker goes with the old run
                shutil.move(str(p), self.moved_aside / p.name)
        if not (self.moved_aside / MARKER).exists():
            mark(self.moved_aside, "run")
        print(f"resume=False: the previous run was moved to {self.moved_aside} (delete it when not needed)")

    def _check_same_dataset(self) -> None:
        record_path = self.run.dataset_record
        if not record_path.exists():
            return
        record = json.loads(record_path.read_text())
        now = self.data.record()
        if record.get("fingerprint") not in (None, now["fingerprint"]) or record.get("dataroot") != now["dataroot"]:
            raise ValueError(
                f"{self.dir} was trained on {record.get('dataroot')} ({record.get('frames')} frames), not on "
                f"{now['dataroot']} ({now['frames']} frames). Choose a new name for this dataset, or pass "
                "resume=False to start over here (the old run is moved aside, not deleted).")

    def _resume(self, path: Path) -> None:
        ckpt = load_checkpoint(path)  # on the CPU: RNG states must stay CPU tensors
        arch = FACE_ARCH_KEYS if self.kind == "face" else ARCH_KEYS
        check_architecture(ckpt["config"], self.cfg, path, arch)
        changes = training_changes(ckpt["config"], self.cfg, arch)
        if changes and self.is_main:
            print(describe_changes(changes, path))
        self.model.load_state_dict(ckpt)
        self.epoch, self.epoch_iter, self.iteration = ckpt["epoch"], ckpt["epoch_iter"], ckpt["iteration"]
        self.saved_iteration = self.iteration
        set_rng_state(ckpt["rng"])
        if self.is_main:  # drop log lines written after this checkpoint (a run killed between saves)
            rows = [r for r in read_jsonl(self.run.loss_log) if r.get("iteration", 0) <= self.iteration]
            write_jsonl(self.run.loss_log, rows)
        log.info("resumed %s at epoch %d, iteration %d", path, self.epoch + 1, self.iteration)

    def _agree_on_resume(self) -> None:
        """Every rank must resume from the same iteration (multi-node runs need shared or copied checkpoints)."""
        found = distributed.all_gather_int(self.iteration)
        if len(set(found)) > 1:
            raise RuntimeError(
                f"ranks disagree on where to resume {self.dir}: iterations by rank {found}. Each node must see the "
                "same latest.pth: put checkpoints_dir on shared storage or copy it to every node first.")

    def _loader(self) -> DataLoader:
        cuda = self.device.type == "cuda"
        workers = self.data.num_workers
        return DataLoader(self.dataset, batch_sampler=self.sampler, num_workers=workers, pin_memory=cuda,
                          persistent_workers=workers > 0, generator=torch.Generator().manual_seed(0))

    def _fixed_batch(self, n: int = 4) -> dict[str, torch.Tensor]:
        """Evenly spaced training items shown on the web page (no flip, no RNG consumed)."""
        idx = np.linspace(0, len(self.dataset) - 1, min(n, len(self.dataset))).round().astype(int)
        items = [self.dataset[int(i)] for i in idx]
        return {k: torch.stack([it[k] for it in items]) for k in items[0] if k != "index"}

    def to_device(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """The batch on the training device; entries the model reads on the host (face boxes) stay on the CPU."""
        host = self.model.host_keys
        return {k: v if k in host else v.to(self.device, non_blocking=True) for k, v in batch.items()
                if k != "index"}

    def memory_estimate(self) -> MemoryEstimate:
        """The GPU memory one step of this stage needs (:mod:`dancenow_utils.training.memory`)."""
        host = self.model.host_keys
        shapes = {k: v.shape[1:] for k, v in self.fixed.items() if k not in host}
        model = self.model
        main_cfg = getattr(model, "main_cfg", None) if self.kind == "face" else None
        return estimate_training_memory(self.cfg, model.precision, shapes, {k: self.fixed[k] for k in host},
                                        vgg=getattr(model, "vgg", None) is not None, main_cfg=main_cfg)

    def _out_of_memory_message(self, exc: Exception) -> str:
        estimate = self.memory or self.memory_estimate()
        free, total = torch.cuda.mem_get_info(self.device) if self.device.type == "cuda" else (0, 0)
        available = total or estimate.total
        first = str(exc).splitlines()[0] if str(exc) else "out of memory"
        return (f"out of GPU memory at iteration {self.iteration + 1} ({first}); the estimate for this stage was "
                f"{estimate.describe()}, on a GPU of {total / 1e9:.1f} GB. Try "
                f"{memory_advice(self.cfg, estimate, int(available * 0.9), self.model.precision)}; then run "
                f"again (resume=True continues from {self.run.latest}).")

    def close(self) -> None:
        """Free this stage's networks, optimisers, loader (and its workers) and cached batches, and the GPU memory
        they held; the trainer cannot train after this, its files stay."""
        for attr in ("model", "loader", "fixed", "data", "sampler"):
            self.__dict__.pop(attr, None)
        gc.collect()
        if self.device.type == "cuda":
            torch.cuda.empty_cache()

    # ---------------------------------------------------------------------------------------------- saving
    def state(self) -> dict:
        return {**self.model.state_dict(), "epoch": self.epoch, "epoch_iter": self.epoch_iter,
                "iteration": self.iteration, "rng": rng_state(), "config": self.cfg.to_dict(),
                "lr": learning_rate(self.cfg, self.epoch), "model": self.kind}

    def generator_payload(self) -> dict:
        return {**self.model.generator_state(), "config": self.cfg.to_dict(), "model": self.kind,
                "pose_settings": self.pose_settings.to_dict() if self.pose_settings else None,
                "epoch": self.epoch, "iteration": self.iteration}

    def save(self, which: str = "latest") -> Path:
        """``latest``: the full state plus ``latest_G.pth``; ``epoch_<n>``: the generator only (the newest
        ``keep_epoch_checkpoints`` of them are kept). Every rank calls it at the same step: the losses noted since
        the last check are checked first, so a non-finite step is never written."""
        try:
            self.model.raise_if_non_finite()
        except FloatingPointError as exc:
            raise FloatingPointError(self._nan_message(exc, noticed=True)) from None
        if self.is_main:
            if which == "latest":
                save_checkpoint(self.run.latest, self.state())
                self.saved_iteration = self.iteration
                self._latest_stamp = self._stamp()
            save_checkpoint(self.run.generator(which), self.generator_payload())
            if which != "latest":
                self.prune_epoch_checkpoints()
        self._last_save = time.monotonic()
        return self.run.checkpoint(which) if which == "latest" else self.run.generator(which)

    def epoch_checkpoints(self) -> list[Path]:
        """This run's numbered checkpoints (generator-only and full), oldest first."""
        tagged = [(int(p.name.split("_")[1].split(".")[0]), p) for p in self.dir.glob("epoch_*.pth")
                  if p.name.split("_")[1].split(".")[0].isdigit()]
        return [p for _, p in sorted(tagged)]

    def prune_epoch_checkpoints(self) -> list[Path]:
        """Delete all but the newest ``keep_epoch_checkpoints`` epochs' files (0 keeps all); returns the deleted."""
        keep = self.cfg.keep_epoch_checkpoints
        files = self.epoch_checkpoints()
        epochs = sorted({p.name.split("_")[1].split(".")[0] for p in files}, key=int)
        if not keep or len(epochs) <= keep:
            return []
        old = set(epochs[:-keep])
        gone = [p for p in files if p.name.split("_")[1].split(".")[0] in old]
        for p in gone:
            p.unlink(missing_ok=True)
        return gone

    def disk_plan(self) -> str:
        """What this run's checkpoints will take on disk: the ``latest`` pair, each numbered checkpoint, how many
        are kept; with advice where the disk is too small (and for Drive on Colab)."""
        adam_to_come = sum(8 * p.numel() for opt in self.model.optimizers.values() for g in opt.param_groups
                           for p in g["params"] if p not in opt.state)  # Adam's moments appear at the first step
        # the moving average of the generator's weights (ema_decay) is made at the first step
        average_to_come = (payload_bytes(self.model.generator_state())
                           if self.cfg.ema_decay and not self.model.averaged else 0)
        latest = payload_bytes(self.state()) + adam_to_come + average_to_come + payload_bytes(self.generator_payload())
        epoch = payload_bytes(self.generator_payload())
        written = self.cfg.total_epochs // self.cfg.save_epoch_freq
        kept = min(written, self.cfg.keep_epoch_checkpoints or written)
        total = latest + kept * epoch
        gb = 1e9
        line = (f"checkpoints in {self.dir}: latest.pth + latest_G.pth {latest / gb:.2f} GB (rewritten every "
                f"{self.cfg.save_latest_freq} iterations), epoch_<n>_G.pth {epoch / gb:.2f} GB x {kept} kept of "
                f"{written} written (keep_epoch_checkpoints={self.cfg.keep_epoch_checkpoints}): about "
                f"{total / gb:.2f} GB")
        where = next(p for p in (self.dir, *self.dir.parents) if p.exists())
        free = shutil.disk_usage(where).free
        if total > free:
            line += (f". WARNING: only {free / gb:.1f} GB free there; keep fewer numbered checkpoints "
                     "(overrides={'keep_epoch_checkpoints': 2}) or free some space")
        if "google.colab" in sys.modules and not self.cfg.save_latest_seconds and latest > 0.2 * gb:
            line += (f". On Colab's Drive each save writes {latest / gb:.2f} GB: save by time instead, e.g. "
                     "overrides={'save_latest_freq': 100000, 'save_latest_seconds': 900}")
        return line

    def _log(self, losses: dict[str, torch.Tensor], lr: float, sec: float) -> dict[str, float]:
        values = {k: round(float(v), 6) for k, v in losses.items()}  # the only read-back of the losses
        append_jsonl(self.run.loss_log, {"epoch": self.epoch + 1, "epoch_iter": self.epoch_iter,
                                         "iteration": self.iteration, "lr": lr, "sec_per_iter": round(sec, 4),
                                         **values})
        return values

    def save_visuals(self) -> None:
        """The model's visuals for the fixed samples, added to ``web/index.html`` (unique names per iteration)."""
        visuals = self.model.visuals(self.to_device(self.fixed))
        kinds = list(visuals)
        images = self.run.web_images
        tag = f"iter{self.iteration:07d}"
        for kind, batch in visuals.items():
            write_image(images / f"{tag}_{kind}.png", np.concatenate([to_image(t) for t in batch], axis=1))
        tags = sorted({p.name.split("_")[0] for p in images.glob(f"iter*_{kinds[0]}.png")}, reverse=True)
        rel = images.relative_to(self.run.web_page.parent)  # the page's links, relative to it
        rows = [(f"iteration {int(t[4:])}", [(k, f"{rel}/{t}_{k}.png") for k in kinds]) for t in tags]
        image_table_page(self.run.web_page, f"Training: {self.name}", rows, width=512,
                         note=f"Fixed training samples, newest first: {' | '.join(kinds)}.")

    def latest_visuals(self) -> list[Path]:
        """The newest visuals' image files, one per kind (for the notebook)."""
        return self.run.latest_visuals()

    # ------------------------------------------------------------------------------------------------ loop
    def total_iterations(self) -> int:
        return self.cfg.total_epochs * self.sampler.batches_per_epoch

    def train(self, max_iterations: int | None = None, callback: Callable[[Trainer], None] | None = None,
              max_seconds: float | None = None) -> dict[str, float]:
        """Train until the last epoch, or ``max_iterations`` in total, or ``max_seconds`` of this call (a compute
        budget, as used by the benchmarks); returns the last logged losses. The run's lock is held meanwhile (a
        second process training it is refused) and released however training ends."""
        with self._locked("training"):
            self._check_not_changed_elsewhere()
            try:
                return self._train(max_iterations, callback, max_seconds)
            finally:
                if self.is_main:
                    self._latest_stamp = self._stamp()

    def _train(self, max_iterations: int | None, callback: Callable[[Trainer], None] | None,
               max_seconds: float | None) -> dict[str, float]:
        cfg = self.cfg
        started = time.perf_counter()
        total = self.total_iterations()
        goal = min(total, max_iterations) if max_iterations is not None else total
        if self.iteration >= goal:
            print(f"{self.dir}: already trained to iteration {self.iteration} of {total}; nothing left to do. "
                  "Raise niter/niter_decay to train longer, or use a new name (or resume=False) to start over.")
            return {}
        losses: dict[str, float] = {}
        bar = tqdm(total=goal, initial=min(self.iteration, goal), desc=f"training {self.name}",
                   disable=not (self.progress and self.is_main))
        stop = _DeferredInterrupt()
        every = self.check_every()
        try:
            with stop.installed():
                while self.epoch < cfg.total_epochs and self.iteration < goal:
                    lr = learning_rate(cfg, self.epoch)
                    self.model.set_lr(lr)
                    self.model.set_epoch(self.epoch)
                    self.sampler.set_epoch(self.epoch, self.epoch_iter)
                    t0 = time.perf_counter()
                    for batch in self.loader:
                        n = self.iteration + 1
                        # the steps where every rank checks the losses and agrees whether to stop or save: every
                        # `every` steps, and wherever a checkpoint is due
                        check = (n % every == 0 or n % cfg.save_latest_freq == 0 or n >= goal
                                 or self.epoch_iter + 1 >= self.sampler.batches_per_epoch)
                        try:
                            step_losses = self.model.train_step(self.to_device(batch), check_finite=check)
                        except FloatingPointError as exc:
                            raise FloatingPointError(self._nan_message(exc)) from None
                        except torch.cuda.OutOfMemoryError as exc:
                            raise torch.cuda.OutOfMemoryError(self._out_of_memory_message(exc)) from None
                        self.iteration += 1
                        self.epoch_iter += 1
                        if self.is_main and (self.iteration % cfg.log_freq == 0 or self.iteration == goal):
                            losses = self._log(step_losses, lr, (time.perf_counter() - t0))
                            bar.set_postfix(epoch=self.epoch + 1, G=f"{losses['G_GAN']:.3f}",
                                            D=f"{losses['D_fake']:.3f}")
                        if self.is_main and self.iteration % cfg.display_freq == 0:
                            self.save_visuals()
                        saved = self.iteration % cfg.save_latest_freq == 0
                        if saved:
                            self.save("latest")
                        if callback is not None:
                            callback(self)
                        bar.update(1)
                        interrupted = out_of_time = False
                        if check:  # every rank takes the same decisions at the same step
                            out_of_time = max_seconds is not None and time.perf_counter() - started > max_seconds
                            interrupted, out_of_time, save_due = map(bool, distributed.all_max(
                                [stop.requested, out_of_time, self._save_due()]))
                            if save_due and not saved and not interrupted:
                                self.save("latest")
                        if out_of_time:
                            goal = self.iteration
                        if interrupted:
                            self.save("latest")
                            raise KeyboardInterrupt(f"interrupted: saved {self.run.latest} at iteration "
                                                    f"{self.iteration}; run again with resume=True to continue")
                        if self.iteration >= goal:
                            break
                        t0 = time.perf_counter()
                    if self.epoch_iter >= self.sampler.batches_per_epoch:
                        self.epoch += 1
                        self.epoch_iter = 0
                        if self.epoch % cfg.save_epoch_freq == 0:
                            self.save(f"epoch_{self.epoch}")
                        self.save("latest")
        finally:
            bar.close()
        if self.iteration:
            self.save("latest")
        if self.is_main and self.iteration:
            self.save_visuals()
            plot_losses(self.run.loss_log, self.run.loss_curves, title=self.name, close=True)
        self.last_losses = losses or self.last_losses
        return losses

    def check_every(self) -> int:
        """Iterations between the agreed checks (``check_freq``; 0: every step on a CPU, where a check costs
        nothing, every :data:`GPU_CHECK_FREQ` on a GPU)."""
        if self.cfg.check_freq:
            return self.cfg.check_freq
        return GPU_CHECK_FREQ if self.device.type == "cuda" else 1

    def _save_due(self) -> bool:
        s = self.cfg.save_latest_seconds
        return s > 0 and time.monotonic() - self._last_save >= s

    def _nan_message(self, exc: Exception, noticed: bool = False) -> str:
        kept = (f"The last good checkpoint {self.run.latest} is kept (iteration {self.saved_iteration}); lower lr "
                "(overrides={'lr': ...}) and resume."
                if self.saved_iteration is not None else
                "No checkpoint was saved yet; lower lr (overrides={'lr': ...}) and start again.")
        at = (f"by iteration {self.iteration}" if noticed else f"at epoch {self.epoch + 1}, iteration "
              f"{self.iteration + 1}")
        return f"{exc} {at}: training stopped. {kept}"


def _legacy_parts(cfg: TrainConfig, dataroot, name, checkpoints_dir, resume, phase, kwargs: dict
                  ) -> tuple[StageParts, bool]:
    """The old ``Trainer(cfg, dataroot, name, checkpoints_dir, resume, phase, progress, main_name=...)`` arguments,
    as they land in the new signature's places, turned into the parts a trainer is handed."""
    old_resume = resume if isinstance(resume, bool) else kwargs.pop("resume", True)  # in `process`'s place
    old_phase = phase if isinstance(phase, str) else kwargs.pop("phase", "train")  # in `resume`'s place
    parts = stage_parts(cfg, kwargs.pop("dataroot", "dataset") if dataroot is None else dataroot,
                        kwargs.pop("name", "demo") if name is None else name,
                        kwargs.pop("checkpoints_dir", "checkpoints") if checkpoints_dir is None else checkpoints_dir,
                        old_resume, old_phase, kwargs.pop("kind", "pix2pixhd"), kwargs.pop("main_name", None))
    if kwargs:
        raise TypeError(f"unexpected arguments {sorted(kwargs)}")
    return parts, old_resume


def face_stage_config(cfg: TrainConfig) -> TrainConfig:
    """The config the face stage trains with: the face learning rate and epochs."""
    return cfg.with_overrides({"lr": cfg.face_lr, "niter": cfg.face_niter, "niter_decay": cfg.face_niter_decay})
