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


def resolve_device(name: str = "auto") -> torch.device:
    """``"auto"`` picks CUDA when present, else CPU; an explicit CUDA device that is missing is an error."""
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
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
    return dev


def prepare_device(device: torch.device) -> None:
    """Per-device speed settings: cuDNN autotuning for the fixed image sizes GAN training uses."""
    if device.type == "cuda":
        torch.cuda.set_device(device)
        torch.backends.cudnn.benchmark = True
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
