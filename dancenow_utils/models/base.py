"""The model protocol every training stage implements (like pytorch-CycleGAN-and-pix2pix's ``BaseModel``).

A model owns its networks and their optimisers and has one obvious :meth:`BaseModel.train_step`. The trainer
(:mod:`dancenow_utils.training.trainer`) drives any model the same way: learning rate, mixed precision, the
finite-loss check
before any update (agreed across ranks), distributed wrapping, checkpoints and visuals.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator

import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from dancenow_utils.config import TrainConfig
from dancenow_utils.models.losses import feature_matching_loss, gan_loss
from dancenow_utils.runtime.precision import autocast, needs_grad_scaler, resolve_precision


@contextlib.contextmanager
def frozen(net: nn.Module) -> Iterator[nn.Module]:
    """Run ``net`` without computing its weight gradients (gradients still flow to its input)."""
    flags = [p.requires_grad for p in net.parameters()]
    for p in net.parameters():
        p.requires_grad_(False)
    try:
        yield net
    finally:
        for p, flag in zip(net.parameters(), flags):
            p.requires_grad_(flag)


def average_weight(decay: float, n: int) -> float:
    """How far the ``n``-th update (1-based) moves a moving average of weights towards the new ones: ``1 - decay``,
    with the decay ramped up as ``(1 + n) / (10 + n)`` over the first updates so that the average is not held back
    by the random initial weights."""
    return 1.0 - min(decay, (1 + n) / (10 + n))


class BaseModel:
    """Networks (``nets``), their Adam optimisers (``optimizers``, same keys) and a gradient scaler."""

    kind = ""  # what the checkpoints record as the model ("pix2pixhd", "face")
    loss_names: tuple[str, ...] = ()
    generator_key = "G"
    host_keys: tuple[str, ...] = ()  # batch entries the model reads on the host: the trainer leaves them on the CPU

    def __init__(self, cfg: TrainConfig, device: torch.device, precision: str | None = None) -> None:
        self.cfg, self.device = cfg, device
        self.precision = precision or resolve_precision(cfg.amp, device)
        self.scaler = torch.amp.GradScaler(device.type, enabled=needs_grad_scaler(device, self.precision))
        self.nets: dict[str, nn.Module] = {}
        self.optimizers: dict[str, torch.optim.Optimizer] = {}
        self.fixed: dict[str, list[nn.Parameter]] = {}  # per optimiser: parameters held fixed (see set_epoch)
        self._ddp: dict[str, nn.Module] = {}
        # with cfg.ema_decay: a moving average of the inference networks' weights (state dicts by key), made at the
        # first update (after the first step), and how many updates it has had
        self.averaged: dict[str, dict[str, torch.Tensor]] = {}
        self.average_updates = 0

    # ------------------------------------------------------------------------------------------ subclass API
    def losses(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Every named loss of one step from one forward pass: ``G_*`` train the generator, ``D_real`` and
        ``D_fake`` the discriminator."""
        raise NotImplementedError

    def set_epoch(self, epoch: int) -> None:
        """Epoch-dependent parts of the schedule (which parameters are held fixed); 0-based ``epoch``."""

    def trained(self, side: str) -> tuple[str, ...]:
        """The optimisers the generator (``"G"``) or discriminator (``"D"``) loss steps this epoch."""
        return (side,)

    def train_step(self, batch: dict[str, torch.Tensor], check_finite: bool = True) -> dict[str, torch.Tensor]:
        """One iteration: all losses, then a G step and a D step (pix2pixHD's order). The G loss is the sum of the
        ``G_*`` losses, the D loss half the sum of the ``D_*`` losses. Returns the named losses as detached tensors
        (no device sync: read them back only to log).

        Non-finite losses are noted on the device every step; with ``check_finite`` (every step by default) they
        are checked before any update, on every rank at once (one device sync). The trainer checks every few
        steps on a GPU, and always before a checkpoint is written, so a non-finite step is never saved."""
        with self.autocast():
            losses = self.losses(batch)
        self.note_finite(losses)
        if check_finite:
            self.raise_if_non_finite(losses)
        self.update(sum(v for k, v in losses.items() if k.startswith("G_")), self.trained("G"), keep_graph=True)
        self.update(sum(v for k, v in losses.items() if k.startswith("D_")) * 0.5, self.trained("D"))
        self.scaler.update()
        self.update_average()
        return {k: v.detach() for k, v in losses.items()}

    @torch.no_grad()
    def update_average(self) -> None:
        """Move the averaged inference weights towards the trained ones (``cfg.ema_decay``; nothing when 0).

        Parameters are averaged (:func:`average_weight`, one fused update per network); buffers, such as the
        feature encoder's running class means and which classes it has seen, are copied as they are."""
        decay = self.cfg.ema_decay
        if not decay:
            return
        if not self.averaged:
            self.averaged = {k: {n: t.detach().clone() for n, t in self.nets[k].state_dict().items()}
                             for k in self.averaged_keys()}
        self.average_updates += 1
        weight = average_weight(decay, self.average_updates)
        for key, avg in self.averaged.items():
            net = self.nets[key]
            names, live = zip(*((n, p.detach()) for n, p in net.named_parameters()))
            torch._foreach_lerp_([avg[n] for n in names], list(live), weight)
            for name, buffer in net.named_buffers():
                if name in avg:  # persistent buffers only (the state dict's)
                    avg[name].copy_(buffer)

    @torch.no_grad()
    def evaluation_losses(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """The same named losses without any update (for held-out data)."""
        with self.autocast():
            return {k: v.detach() for k, v in self.losses(batch).items()}

    def visuals(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Named image batches for the training page, e.g. ``{"input", "generated", "real"}``."""
        raise NotImplementedError

    # ------------------------------------------------------------------------------------------ shared parts
    def make_optimizer(self, params: Iterable[nn.Parameter], lr: float) -> torch.optim.Optimizer:
        fused = self.device.type in ("cuda", "cpu")
        return torch.optim.Adam(params, lr=lr, betas=(self.cfg.beta1, 0.999), fused=fused)

    def trained_keys(self) -> tuple[str, ...]:
        """The networks this model trains and saves: all of ``nets`` (a frozen network it only uses, such as the
        face stage's main generator, is kept outside them)."""
        return tuple(self.nets)

    def inference_keys(self) -> tuple[str, ...]:
        """The networks inference needs (saved in the generator-only files)."""
        return (self.generator_key,)

    def averaged_keys(self) -> tuple[str, ...]:
        """The networks whose weights ``ema_decay`` averages: the trained ones inference needs."""
        return tuple(k for k in self.inference_keys() if k in self.trained_keys())

    def autocast(self):
        return autocast(self.device, self.precision)

    def net(self, key: str) -> nn.Module:
        """The network to call in a training forward pass: its DDP wrapper in distributed runs."""
        return self._ddp.get(key, self.nets[key])

    def wrap_ddp(self) -> None:
        """Wrap every trained network for distributed data parallel (one process per device)."""
        ids = [self.device.index] if self.device.type == "cuda" else None
        for key in self.trained_keys():
            self._ddp[key] = DistributedDataParallel(self.nets[key], device_ids=ids)

    def set_lr(self, lr: float) -> None:
        for opt in self.optimizers.values():
            for group in opt.param_groups:
                group["lr"] = lr

    def note_finite(self, losses: dict[str, torch.Tensor]) -> None:
        """Remember, on the device and without a sync, which losses were not finite since the last check."""
        bad = ~torch.isfinite(torch.stack([v.detach().float() for v in losses.values()]))
        seen = getattr(self, "_non_finite", None)
        self._non_finite = bad if seen is None or seen.shape != bad.shape else seen | bad
        self._loss_keys = tuple(losses)

    def raise_if_non_finite(self, losses: dict[str, torch.Tensor] | None = None) -> None:
        """Raise when a loss noted since the last check was not finite, on every rank at once (one device sync);
        the message names this rank's non-finite losses (their values in ``losses``, the latest step's)."""
        seen = getattr(self, "_non_finite", None)
        if seen is None:
            return
        self._non_finite = None
        mine = seen.any().to(torch.int32)
        ok = 1 - mine
        if dist.is_available() and dist.is_initialized():
            dist.all_reduce(ok, op=dist.ReduceOp.MIN)
        if not bool(ok):
            latest = losses or {}
            names = [k for k, b in zip(self._loss_keys, seen.tolist()) if b]
            bad = {k: float(latest[k].detach()) if k in latest else float("nan") for k in names}
            raise FloatingPointError(f"non-finite loss {bad or '(on another rank)'}")

    def check_finite(self, losses: dict[str, torch.Tensor]) -> None:
        """Raise when a loss is not finite, on every rank at once (one device sync)."""
        self.note_finite(losses)
        self.raise_if_non_finite(losses)

    def update(self, loss: torch.Tensor, keys: tuple[str, ...], keep_graph: bool = False) -> None:
        """Backward ``loss`` into the parameters of the optimisers ``keys`` only, and step them (through the
        gradient scaler for fp16). Parameters held fixed (``self.fixed``) get no gradient, so Adam leaves them and
        their state alone; other networks the loss passes through get none either (the generator's loss through
        the discriminator computes no discriminator weight gradients). ``keep_graph`` keeps the graph for a
        second backward through the same forward pass (the discriminator's, after the generator's)."""
        for key in keys:
            self.optimizers[key].zero_grad(set_to_none=True)
        held = {id(p) for key in keys for p in self.fixed.get(key, ())}
        params = [p for key in keys for group in self.optimizers[key].param_groups for p in group["params"]
                  if p.requires_grad and id(p) not in held]
        if params and loss.requires_grad:
            self.scaler.scale(loss).backward(inputs=params, retain_graph=keep_graph)
        for key in keys:
            self.scaler.step(self.optimizers[key])

    def adversarial_losses(self, real_pair: torch.Tensor, fake_pair: torch.Tensor, n_layers: int,
                           lambda_feat: float, feat: bool, key: str = "D") -> dict[str, torch.Tensor]:
        """pix2pixHD's GAN losses with discriminator ``key``: D sees the real pair once (its features also serve
        feature matching) and the fake pair once; the generator's losses and D's fake loss share that pass
        (pix2pixHD runs D on the fake pair twice, detached and not, for the same values). :meth:`update` keeps
        them apart: G's backward computes no D weight gradients, D's none for G."""
        D = self.net(key)
        pred_real = D(real_pair)
        pred_fake = D(fake_pair)
        g_feat = (feature_matching_loss(pred_fake, pred_real, n_layers, lambda_feat) if feat
                  else torch.zeros((), device=real_pair.device))
        return {"G_GAN": gan_loss(pred_fake, True), "G_GAN_Feat": g_feat,
                "D_real": gan_loss(pred_real, True), "D_fake": gan_loss(pred_fake, False)}

    def state_dict(self) -> dict:
        state = {k: self.nets[k].state_dict() for k in self.trained_keys()}
        state.update({f"opt_{k}": o.state_dict() for k, o in self.optimizers.items()})
        state["scaler"] = self.scaler.state_dict()
        if self.averaged:
            state.update({f"avg_{k}": avg for k, avg in self.averaged.items()})
            state["average_updates"] = self.average_updates
        return state

    def load_state_dict(self, state: dict) -> None:
        for key in self.trained_keys():
            self.nets[key].load_state_dict(state[key])
        for key, opt in self.optimizers.items():
            opt.load_state_dict(state[f"opt_{key}"])
        # a scaler saved disabled (CPU, bf16, fp32) has an empty state: an enabled one starts fresh instead
        if self.scaler.is_enabled() and state.get("scaler"):
            self.scaler.load_state_dict(state["scaler"])
        # the averaged weights, where the run kept them (a run saved without ema_decay starts averaging afresh)
        keys = self.averaged_keys() if self.cfg.ema_decay else ()
        if keys and all(f"avg_{k}" in state for k in keys):
            self.averaged = {k: {n: t.to(self.device) for n, t in state[f"avg_{k}"].items()} for k in keys}
            self.average_updates = int(state.get("average_updates", 0))
        else:
            self.averaged, self.average_updates = {}, 0

    def generator_state(self) -> dict[str, dict[str, torch.Tensor]]:
        """What inference needs: the generator's weights under ``"G"`` (and the feature encoder's under ``"E"``);
        with ``ema_decay``, their moving average once training has begun."""
        return {"G" if k == self.generator_key else k: self.averaged.get(k) or self.nets[k].state_dict()
                for k in self.inference_keys()}
