"""Checkpoints: everything needed to resume exactly, written atomically, read with ``weights_only=True``."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import numpy as np
import torch

from dancenow_utils.config import TrainConfig
from dancenow_utils.io_utils import atomic_path
from dancenow_utils.models.networks import ARCH_KEYS

FORMAT = 1


def rng_state() -> dict[str, Any]:
    """Python, NumPy and torch RNG states in types that ``weights_only`` loading accepts."""
    np_state = np.random.get_state()
    py_state = random.getstate()
    state = {
        "torch": torch.get_rng_state(),
        "numpy": {"keys": torch.from_numpy(np_state[1].astype(np.int64)), "pos": int(np_state[2]),
                  "has_gauss": int(np_state[3]), "gauss": float(np_state[4])},
        "python": {"version": py_state[0], "state": list(py_state[1]), "gauss": py_state[2]},
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    n = state["numpy"]
    np.random.set_state(("MT19937", n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"], n["gauss"]))
    p = state["python"]
    random.setstate((p["version"], tuple(p["state"]), p["gauss"]))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def save_checkpoint(path: str | Path, payload: dict[str, Any]) -> None:
    """``torch.save`` to a temp file, then rename: a crash mid-write keeps the previous checkpoint."""
    with atomic_path(path) as tmp:
        torch.save({"format": FORMAT, **payload}, tmp)


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such checkpoint; train first (notebook 02) or check name/which_epoch")
    try:
        ckpt = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:
        raise ValueError(f"{path}: cannot be read as a dancenow checkpoint ({exc}); delete it and resume from "
                         "another one") from exc
    if not isinstance(ckpt, dict) or "G" not in ckpt or "config" not in ckpt:
        raise ValueError(f"{path}: not a dancenow checkpoint (no generator or config inside)")
    return ckpt


def check_architecture(saved: dict[str, Any], cfg: TrainConfig, path: str | Path) -> None:
    """Error when a checkpoint's network shapes differ from ``cfg`` (e.g. another preset)."""
    diffs = {k: (saved.get(k), getattr(cfg, k)) for k in ARCH_KEYS if saved.get(k) != getattr(cfg, k)}
    if diffs:
        listing = ", ".join(f"{k}: checkpoint {a!r} vs config {b!r}" for k, (a, b) in diffs.items())
        raise ValueError(f"{path} was trained with another architecture (preset {saved.get('preset')!r}, config "
                         f"preset {cfg.preset!r}): {listing}. Use the same preset, a new name, or resume=False.")
