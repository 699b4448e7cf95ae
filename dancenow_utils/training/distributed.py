"""Process groups for data-parallel training, and the small decisions every rank must take together.

On CUDA the group has two backends, ``"cpu:gloo,cuda:nccl"``: DDP's gradients (CUDA tensors) go over NCCL, while
the control messages (where to resume, whether to stop, which precision and losses to train with) are CPU tensors
over gloo, so they never wait for the GPU. NCCL alone serves only CUDA tensors: a CPU tensor in a collective fails
with "No backend type associated with device type cpu".
"""

from __future__ import annotations

from typing import Any

import torch
import torch.distributed as dist


def process_group_backend(device: torch.device) -> str:
    """The backend string to start the group with for a process training on ``device``."""
    return "cpu:gloo,cuda:nccl" if device.type == "cuda" else "gloo"


def init_process_group(device: torch.device) -> None:
    """Join the group torchrun (or :mod:`dancenow_utils.training.launch`) set up, unless this process already has
    one."""
    if not dist.is_initialized():
        dist.init_process_group(process_group_backend(device))


def serves_cpu(backend: str) -> bool:
    """Whether a process group started with ``backend`` takes CPU tensors (``"gloo"``, ``"cpu:gloo,cuda:nccl"``;
    not ``"nccl"`` nor ``"cuda:gloo"``)."""
    backend = backend.lower()
    if ":" in backend:
        return any(part.split(":")[0].strip() == "cpu" for part in backend.split(","))
    return backend != "nccl"


def collective_device() -> torch.device:
    """The device the default group's control collectives take tensors on: the CPU where it serves the CPU, else
    the current CUDA device."""
    if serves_cpu(str(dist.get_backend())):
        return torch.device("cpu")
    return torch.device("cuda", torch.cuda.current_device())


def all_max(values: list[int]) -> list[int]:
    """The element-wise maximum of ``values`` over every rank (one collective; ``values`` alone without a group)."""
    if not (dist.is_available() and dist.is_initialized()):
        return list(values)
    t = torch.tensor(values, dtype=torch.int64, device=collective_device())
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return [int(v) for v in t.tolist()]


def all_gather_int(value: int) -> list[int]:
    """``value`` of every rank, by rank."""
    mine = torch.tensor([value], dtype=torch.int64, device=collective_device())
    everyone = [torch.zeros_like(mine) for _ in range(dist.get_world_size())]
    dist.all_gather(everyone, mine)
    return [int(t) for t in everyone]


def from_rank0(value: Any) -> Any:
    """Rank 0's ``value`` on every rank (a picklable object); ``value`` itself without a group."""
    if not (dist.is_available() and dist.is_initialized()):
        return value
    box = [value]
    dist.broadcast_object_list(box, src=0, device=collective_device())
    return box[0]
