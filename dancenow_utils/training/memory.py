"""GPU memory a training run needs, estimated before it starts, and advice when it does not fit.

The estimate builds the stage's networks on PyTorch's ``meta`` device (shapes only: no memory, no arithmetic) and
runs one step's forward pass there at the run's size and batch, recording every tensor autograd saves for the
backward pass. What a step holds is then:

- each trained parameter: its fp32 weight, its gradient and Adam's two moments (16 bytes);
- each frozen network's weights (VGG19 for the perceptual loss, the face stage's main generator, the moving
  average of the generator with ema_decay): 4 bytes each;
- the saved activations (halved under fp16/bf16 autocast, which saves most of them in 16 bits), plus the
  backward pass's gradient of the largest of them (twice its size);
- a fixed allowance for the CUDA context, cuDNN's workspace and the allocator's rounding (:data:`OVERHEAD_BYTES`,
  and :data:`MARGIN` of the rest).

It is an estimate, checked against measured peaks by ``bench/gpu_speed.py``; ``memory_check=False`` starts a run
the estimate refuses.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

from dancenow_utils.config import TrainConfig

OVERHEAD_BYTES = 600 * 2**20  # CUDA context, cuDNN workspace
MARGIN = 0.15  # allocator rounding and fragmentation, on top of what the step holds
GB = 1e9


@dataclass
class MemoryEstimate:
    """Bytes one training step of a stage needs on its GPU, by kind."""

    trained_params: int  # trained parameters (counted once each)
    frozen_params: int
    activations: int  # saved for backward, whole batch, in the run's precision
    largest_activation: int
    batch_size: int

    @property
    def per_item(self) -> int:
        """Activation bytes per batch item (activations grow linearly with the batch)."""
        return math.ceil(self.activations / self.batch_size)

    def total_for(self, batch_size: int) -> int:
        """Estimated peak bytes at another batch size."""
        held = 16 * self.trained_params + 4 * self.frozen_params
        step = self.per_item * batch_size + 2 * self.largest_activation
        return int(OVERHEAD_BYTES + (held + step) * (1 + MARGIN))

    @property
    def total(self) -> int:
        return self.total_for(self.batch_size)

    def describe(self) -> str:
        return (f"about {self.total / GB:.1f} GB: {self.trained_params:,} trained parameters with gradients and "
                f"Adam state {16 * self.trained_params / GB:.2f} GB, frozen networks {4 * self.frozen_params / GB:.2f}"
                f" GB, activations of a batch of {self.batch_size} {self.activations / GB:.2f} GB")


def saved_activation_bytes(step: Callable[[], object], params: list[nn.Parameter]) -> tuple[int, int]:
    """Bytes of the distinct tensors autograd saves while ``step`` runs (parameters excluded), and the largest."""
    skip = {p.untyped_storage()._cdata for p in params}
    seen: dict[int, int] = {}

    def pack(t: torch.Tensor) -> torch.Tensor:
        storage = t.untyped_storage()
        if storage._cdata not in skip:
            seen[storage._cdata] = max(seen.get(storage._cdata, 0), storage.nbytes())
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t), torch.enable_grad():
        step()
    return sum(seen.values()), max(seen.values(), default=0)


def meta_batch(shapes: dict[str, torch.Size], batch_size: int, host: dict[str, torch.Tensor]) -> dict:
    """A batch of ``batch_size`` items on the meta device with these per-item shapes; ``host`` entries (the face
    boxes) are real CPU tensors, one row repeated."""
    batch: dict[str, torch.Tensor] = {k: torch.empty((batch_size, *s), device="meta") for k, s in shapes.items()}
    batch.update({k: v[:1].repeat(batch_size, *([1] * (v.dim() - 1))) for k, v in host.items()})
    return batch


def estimate_training_memory(cfg: TrainConfig, precision: str, shapes: dict[str, torch.Size],
                             host: dict[str, torch.Tensor] | None = None, vgg: bool = False,
                             main_cfg: TrainConfig | None = None) -> MemoryEstimate:
    """The memory of one training step of ``cfg`` (a face stage when ``main_cfg`` is given) at ``cfg.batch_size``
    with inputs of ``shapes`` per item (e.g. ``{"A": (3, 256, 512), "B": ...}``), with VGG19 when ``vgg``."""
    from dancenow_utils.models.face import FaceModel
    from dancenow_utils.models.losses import VGGLoss
    from dancenow_utils.models.networks import build_generator
    from dancenow_utils.models.pix2pixhd import Pix2PixHD

    meta = torch.device("meta")
    with torch.device(meta):
        if main_cfg is None:
            model = Pix2PixHD(cfg, meta, vgg=False, precision="fp32")
            frozen = []
        else:
            main_G = build_generator(main_cfg)
            model = FaceModel(cfg, meta, main_G, main_cfg, None, "fp32", vgg=False)
            frozen = list(main_G.parameters())
        if vgg:
            model.vgg = VGGLoss(None, cfg.vgg_normalize_input)
            frozen += list(model.vgg.parameters())
    trained = [p for n in model.nets.values() for p in n.parameters()]
    if cfg.ema_decay:  # the moving average of the inference networks' weights: one more copy, without gradients
        frozen += [p for k in model.averaged_keys() for p in model.nets[k].parameters()]
    batch = meta_batch(shapes, cfg.batch_size, host or {})
    act, largest = saved_activation_bytes(lambda: model.losses(batch), trained + frozen)
    if precision in ("fp16", "bf16"):
        act, largest = act // 2, largest // 2
    return MemoryEstimate(sum(p.numel() for p in trained), sum(p.numel() for p in frozen), act, largest,
                          cfg.batch_size)


class GPUMemoryError(RuntimeError):
    """A run the memory estimate says cannot fit in the GPU's free memory."""


def memory_advice(cfg: TrainConfig, estimate: MemoryEstimate, available: int, precision: str) -> str:
    """What to change so that a step fits in ``available`` bytes: a batch size that fits, half precision, a
    smaller size or preset."""
    tips = []
    fits = [b for b in range(cfg.batch_size - 1, 0, -1) if estimate.total_for(b) <= available]
    if fits:
        tips.append(f"overrides={{'batch_size': {fits[0]}}} (estimated {estimate.total_for(fits[0]) / GB:.1f} GB)")
    elif cfg.batch_size > 1:
        tips.append("overrides={'batch_size': 1}")
    if precision == "fp32":
        tips.append("overrides={'amp': 'auto'} (fp16/bf16 autocast halves the activations)")
    tips.append(f"a smaller size: overrides={{'width': {cfg.width // 2}, 'height': {cfg.height // 2}}} (about a "
                "quarter of the activations; extract the data at that size)")
    if cfg.preset == "edn_local":
        tips.append("preset='edn_global' (the 512x256 stage alone)")
    elif cfg.preset in ("seed", "edn_global"):
        tips.append("preset='demo' (small networks)")
    return "; or ".join(tips)


def check_fits(estimate: MemoryEstimate, device: torch.device, cfg: TrainConfig, precision: str,
               what: str = "training") -> str:
    """The line to print before training on ``device``; raises :class:`GPUMemoryError` with advice when the
    estimate exceeds the GPU's free memory (``cfg.memory_check``; a warning line otherwise)."""
    free, total = torch.cuda.mem_get_info(device)
    line = (f"GPU memory for {what} (batch {cfg.batch_size}, {cfg.width}x{cfg.height}, {precision}): "
            f"{estimate.describe()}; {free / GB:.1f} GB free of {total / GB:.1f} GB")
    if estimate.total <= free:
        return line
    advice = (f"{what} needs about {estimate.total / GB:.1f} GB of GPU memory by estimate, but only "
              f"{free / GB:.1f} GB of {total / GB:.1f} GB is free. Try "
              f"{memory_advice(cfg, estimate, free, precision)}. (memory_check=False starts anyway.)")
    if cfg.memory_check:
        raise GPUMemoryError(advice)
    return f"{line}\nWARNING: {advice}"


__all__ = ["GPUMemoryError", "MemoryEstimate", "check_fits", "estimate_training_memory", "memory_advice"]
