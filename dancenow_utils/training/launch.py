"""Several GPUs from a notebook: the same distributed training ``torchrun`` runs, started from Python.

``train_stages_on(gpus, ...)`` with ``gpus > 1`` starts ``gpus`` worker processes on this machine with torch's own
elastic launcher (``torch.distributed.launcher.api.elastic_launch``, what ``torchrun`` itself uses): each one joins
the process group, trains every planned stage with :func:`~dancenow_utils.training.stages.train_stages` on its GPU
(``LOCAL_RANK``) and its shard of the data, and rank 0 writes the files. On a machine without CUDA the workers train
on the CPU over gloo (what the tests run). ``gpus=1`` trains in this process.
"""

from __future__ import annotations

import socket
import uuid
from pathlib import Path

import torch
import torch.distributed as dist

from dancenow_utils.config import TrainConfig
from dancenow_utils.layout import check_run_name
from dancenow_utils.params import check_bool, check_int
from dancenow_utils.runtime.device import resolve_device
from dancenow_utils.training.stages import StageResult, train_stages


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now (for the workers' rendezvous)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _worker(stage: str, cfg: dict, dataroot: str, name: str, checkpoints_dir: str,
            resume: bool, progress: bool) -> dict[str, StageResult] | None:
    """One worker process: train the stages, leave together (rank 0 may still be saving), return rank 0's results."""
    try:
        results = train_stages(stage, TrainConfig.from_dict(cfg), dataroot, name, checkpoints_dir, resume,
                               progress)
        dist.barrier()
        return results if dist.get_rank() == 0 else None
    finally:
        if dist.is_initialized():
            dist.destroy_process_group()


def train_stages_on(gpus: int, stage: str, cfg: TrainConfig, dataroot: str | Path = "dataset", name: str = "demo",
                    checkpoints_dir: str | Path = "checkpoints", resume: bool = True,
                    progress: bool = True) -> dict[str, StageResult]:
    """:func:`~dancenow_utils.training.stages.train_stages` in ``gpus`` processes (distributed data parallel, one per
    GPU);
    in this process for ``gpus=1``."""
    gpus = check_int("gpus", gpus, 1, " (the number of training processes: 1, or one per GPU)")
    resume = check_bool("resume", resume)
    check_run_name(name)
    if gpus == 1:
        return train_stages(stage, cfg, dataroot, name, checkpoints_dir, resume, progress)
    device = resolve_device(cfg.device)
    if device.type == "cuda" and gpus > torch.cuda.device_count():
        raise ValueError(f"gpus={gpus}, but this machine has {torch.cuda.device_count()} GPU(s); use at most that")
    if device.type == "cuda" and cfg.device not in ("auto", "cuda"):
        raise ValueError(f"device={cfg.device!r} names one GPU; with gpus={gpus} use device='auto' (one GPU each)")
    from torch.distributed.launcher.api import LaunchConfig, elastic_launch

    launch = LaunchConfig(min_nodes=1, max_nodes=1, nproc_per_node=gpus, run_id=f"dancenow-{uuid.uuid4().hex[:8]}",
                          rdzv_backend="c10d", rdzv_endpoint=f"127.0.0.1:{free_port()}", max_restarts=0,
                          monitor_interval=0.5, start_method="spawn")
    print(f"training in {gpus} processes ({'one GPU each' if device.type == 'cuda' else 'CPU, gloo'})")
    if device.type != "cuda":  # measured: 0.79x per step on 2 cores (bench/train_processes.py)
        print("note: on a CPU one process (gpus=1) trains faster; several CPU processes are for trying the "
              "distributed code")
    out = elastic_launch(launch, _worker)(stage, cfg.to_dict(), str(dataroot), name, str(checkpoints_dir), resume,
                                          progress)
    return out[0]


__all__ = ["free_port", "train_stages_on"]
