"""TEMPORARY stand-in until the precision helper's module lands (same signatures)."""

from __future__ import annotations

import contextlib

import torch

PRECISIONS = ("auto", "fp32", "bf16", "fp16")


def validate_amp(value: str) -> str:
    if value == "off":
        return "fp32"
    if value not in PRECISIONS:
        raise ValueError(f"amp must be one of {PRECISIONS}, got {value!r}")
    return value


def resolve_precision(amp: str, device: torch.device) -> str:
    amp = validate_amp(amp)
    if amp != "auto":
        return amp
    if device.type == "cuda":
        return "bf16" if torch.cuda.get_device_capability(device)[0] >= 8 else "fp16"
    return "fp32"


def autocast(device: torch.device, precision: str):
    if precision == "fp32":
        return contextlib.nullcontext()
    dtype = torch.bfloat16 if precision == "bf16" else torch.float16
    return torch.autocast(device.type, dtype=dtype)


def needs_grad_scaler(device: torch.device, precision: str) -> bool:
    return device.type == "cuda" and precision == "fp16"
