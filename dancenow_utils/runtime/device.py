"""Which device to run on: ``"auto"`` picks CUDA when this torch can use it, and says loudly when it cannot."""

from __future__ import annotations

import os
import shutil
import warnings

import torch


def gpu_present_but_unusable() -> bool:
    """True when the machine has an NVIDIA GPU that this torch build cannot use (driver/CUDA mismatch)."""
    if torch.cuda.is_available():
        return False
    return os.path.exists("/proc/driver/nvidia/version") or shutil.which("nvidia-smi") is not None


def local_cuda_index() -> int:
    """The GPU this process uses: ``LOCAL_RANK`` under torchrun (0 where each process sees one GPU, as with one GPU
    per task through ``CUDA_VISIBLE_DEVICES``), else the current CUDA device."""
    count = torch.cuda.device_count()
    local = os.environ.get("LOCAL_RANK")
    if local is None:
        return torch.cuda.current_device()
    rank = int(local)
    if count == 1:
        return 0
    if rank >= count:
        raise RuntimeError(f"LOCAL_RANK={rank}, but this process sees {count} GPU(s): start at most one process "
                           "per GPU (torchrun --nproc_per_node, or gpus= in notebook 02)")
    return rank


def resolve_device(name: str = "auto") -> torch.device:
    """``"auto"`` picks CUDA when present, else CPU; an explicit CUDA device that is missing is an error. A CUDA
    device always comes with its index (:func:`local_cuda_index` when none is given)."""
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda", local_cuda_index())
        if gpu_present_but_unusable():
            warnings.warn(
                "AN NVIDIA GPU IS PRESENT BUT THIS TORCH CANNOT USE IT, so everything runs on the CPU (much "
                f"slower). torch {torch.__version__} was built for CUDA {torch.version.cuda}; the driver is "
                "probably older. Install a torch wheel that matches the driver (see `nvidia-smi`), e.g. "
                "`pip install torch --index-url https://download.pytorch.org/whl/cu121`, then restart.",
                RuntimeWarning, stacklevel=2)
        return torch.device("cpu")
    try:
        dev = torch.device(name)
    except RuntimeError:
        raise ValueError(f"device {name!r} is not a device name; use 'auto', 'cpu', 'cuda' or 'cuda:1'") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise RuntimeError(f"device {name!r} asked for, but CUDA is not available here; use device='auto' or 'cpu'")
    if dev.type == "cuda" and dev.index is not None and dev.index >= torch.cuda.device_count():
        raise RuntimeError(f"device {name!r} asked for, but this machine has {torch.cuda.device_count()} GPU(s)")
    if dev.type == "cuda" and dev.index is None:
        return torch.device("cuda", local_cuda_index())
    return dev


def prepare_device(device: torch.device) -> None:
    """Make ``device`` current (CUDA: an indexed device) and set cuDNN autotuning for the fixed image sizes GAN
    training uses."""
    if device.type == "cuda":
        if device.index is None:
            device = torch.device("cuda", local_cuda_index())
        torch.cuda.set_device(device)
        torch.backends.cudnn.benchmark = True
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
