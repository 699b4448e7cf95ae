"""Checkpoints and run files: everything needed to resume exactly, written atomically, read with
``weights_only=True``; and what a run folder holds (its generator, its stages), read the same way by training and
inference.

A full checkpoint (``latest.pth``) holds the networks, optimisers, scaler, counters, RNG states and config (and,
with ``ema_decay``, the moving average of the generator's weights, ``avg_G``). A generator-only file
(``latest_G.pth``, ``epoch_<n>_G.pth``) holds what inference needs: the generator (the moving average where the
run keeps one), its config and how its training poses were drawn. Both are always read onto the CPU first (RNG
states must stay CPU tensors; networks are moved to their device when loaded into them).
"""

from __future__ import annotations

import errno
import random
from pathlib import Path
from typing import Any

import numpy as np
import torch

from dancenow_utils.config import ARCH_KEYS, TrainConfig
from dancenow_utils.io_utils import FULL, WriteError, atomic_path, format_size
from dancenow_utils.layout import RunLayout

FORMAT = 2


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
    """Restore :func:`rng_state`; CUDA states are restored for the GPUs this machine has (it may have fewer)."""
    torch.set_rng_state(state["torch"].cpu())
    n = state["numpy"]
    np.random.set_state(("MT19937", n["keys"].cpu().numpy().astype(np.uint32), n["pos"], n["has_gauss"], n["gauss"]))
    p = state["python"]
    random.setstate((p["version"], tuple(p["state"]), p["gauss"]))
    if state.get("cuda") and torch.cuda.is_available():
        for index, s in enumerate(state["cuda"][: torch.cuda.device_count()]):
            torch.cuda.set_rng_state(s.cpu(), index)


def payload_bytes(payload: Any) -> int:
    """Bytes of the tensors in a (nested) payload: about the size of the file ``torch.save`` writes."""
    if isinstance(payload, torch.Tensor):
        return payload.numel() * payload.element_size()
    if isinstance(payload, dict):
        return sum(payload_bytes(v) for v in payload.values())
    if isinstance(payload, (list, tuple)):
        return sum(payload_bytes(v) for v in payload)
    return 0


def save_checkpoint(path: str | Path, payload: dict[str, Any]) -> None:
    """``torch.save`` to a temp file, then rename: a crash mid-write keeps the previous checkpoint."""
    path = Path(path)
    need = payload_bytes(payload)
    try:
        with atomic_path(path, need) as tmp:
            torch.save({"format": FORMAT, **payload}, tmp)  # a full disk: torch's "inline_container ... pos"
    except WriteError as exc:
        if exc.errno in FULL:
            limit = " (or the file-size limit, ulimit -f, is lower)" if exc.errno == errno.EFBIG else ""
            raise WriteError(exc.errno, f"{path}: the disk is full{limit}. This save needs about "
                                        f"{format_size(need)} free in {path.parent}; free some space (old runs, "
                                        "results) and run again: training resumes from the last checkpoint that "
                                        "was saved.") from None
        raise


def load_weights_file(path: str | Path, what: str, fix: str) -> Any:
    """``torch.load(path, weights_only=True)`` on the CPU; a file torch refuses (damaged, foreign, or holding code)
    is one error naming the file, ``what`` it should be and ``fix``, never torch's advice to load it with
    ``weights_only=False`` (that would run code from the file)."""
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise ValueError(f"{path}: cannot be read as {what} ({type(exc).__name__}); it is damaged or not {what} "
                         f"(a file that holds code instead of plain weights is never run). {fix}") from None


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """A checkpoint's contents on the CPU; errors name the file and what to do."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such checkpoint; train first (notebook 02) or check name/which_epoch")
    try:
        ckpt = load_weights_file(path, "a dancenow checkpoint", "")
    except ValueError:
        raise ValueError(f"{path}: cannot be read as a dancenow checkpoint; it is damaged or not a checkpoint. "
                         "Delete it, or train again (notebook 02).") from None
    if not isinstance(ckpt, dict) or "G" not in ckpt or "config" not in ckpt:
        raise ValueError(f"{path}: not a dancenow checkpoint (no generator or config inside)")
    return ckpt


def check_architecture(saved: dict[str, Any], cfg: TrainConfig, path: str | Path,
                       keys: tuple[str, ...] = ARCH_KEYS) -> None:
    """Error when a checkpoint's network shapes differ from ``cfg`` (e.g. another preset)."""
    diffs = {k: (saved.get(k), getattr(cfg, k)) for k in keys if k in saved and saved.get(k) != getattr(cfg, k)}
    if diffs:
        listing = ", ".join(f"{k}: checkpoint {a!r} vs config {b!r}" for k, (a, b) in diffs.items())
        raise ValueError(f"{path} was trained with another architecture (preset {saved.get('preset')!r}, config "
                         f"preset {cfg.preset!r}): {listing}. Use the same preset, a new name, or resume=False.")


# keys that change how a run is executed or saved, not what it learns (niter/niter_decay: raising them is how a
# finished run trains longer)
RUN_KEYS = ("device", "threads", "num_workers", "cache_images", "save_latest_freq", "save_latest_seconds",
            "save_epoch_freq", "keep_epoch_checkpoints", "check_freq", "memory_check", "display_freq", "log_freq",
            "niter", "niter_decay")


def training_changes(saved: dict[str, Any], cfg: TrainConfig, keys: tuple[str, ...] = ARCH_KEYS) -> dict[str, tuple]:
    """What a resumed run's ``cfg`` trains differently from the checkpoint's config ``saved``: ``{key: (saved,
    now)}`` for every key but the architecture's (``keys``, which :func:`check_architecture` refuses to change) and
    :data:`RUN_KEYS`; keys an older checkpoint does not record are left out."""
    skip = set(keys) | set(RUN_KEYS)
    return {k: (saved[k], v) for k, v in cfg.to_dict().items() if k not in skip and k in saved and saved[k] != v}


def describe_changes(changes: dict[str, tuple], path: str | Path) -> str:
    """One line telling that a resumed run trains on with other settings than ``path`` was trained with."""
    listing = ", ".join(f"{k} {a!r} -> {b!r}" for k, (a, b) in changes.items())
    return (f"resuming {path}, trained so far with other settings: {listing}. The rest of the run uses the new "
            "ones; resume=False (or a new name) trains from the start with them.")


def inference_weights(ckpt: dict, key: str = "G") -> dict:
    """The weights of network ``key`` that inference uses, from a full checkpoint or a generator file: the moving
    average (``avg_<key>``, kept with ``ema_decay``) where there is one, else the trained weights."""
    return ckpt.get(f"avg_{key}", ckpt[key])


def load_generator_file(run: RunLayout, which_epoch: str | int = "latest") -> dict:
    """The generator-only payload of a run (``<which>_G.pth``; from a full checkpoint for older runs)."""
    path = run.generator(which_epoch)
    if path.exists():
        return load_checkpoint(path)
    full = run.checkpoint(which_epoch)
    if full.exists():
        ckpt = load_checkpoint(full)
        return {"G": inference_weights(ckpt), "config": ckpt["config"], "pose_settings": ckpt.get("pose_settings"),
                "model": ckpt.get("model", "pix2pixhd"), "iteration": ckpt.get("iteration"),
                **({"E": inference_weights(ckpt, "E")} if "E" in ckpt else {})}
    raise FileNotFoundError(f"{path}: no such checkpoint. Available for {run.name!r}: "
                            f"{run.available() or 'none'}; train first (notebook 02) or check name and which_epoch.")


def run_config(name: str, checkpoints_dir: str | Path = "checkpoints") -> TrainConfig:
    """The config a run was trained with: its ``config.json``, or, when that file was deleted or damaged, the copy
    inside its generator file (every checkpoint holds one); an error says which run has neither."""
    run = RunLayout(checkpoints_dir, name)
    if run.config.exists():
        try:
            return TrainConfig.load(run.config)
        except ValueError:
            if not run.has_generator():
                raise
    if run.has_generator():
        return TrainConfig.from_dict(load_generator_file(run)["config"])
    raise FileNotFoundError(f"{run.dir}: no trained run here (no config.json and no latest_G.pth / latest.pth); "
                            "train it first (notebook 02), or check name and checkpoints_dir")


def checkpoint_stages(name: str, checkpoints_dir: str | Path = "checkpoints") -> dict[str, bool | str]:
    """Which stages ``checkpoints/<name>`` has: generator kind, temporal or not, face stage, global stage (and
    ``label_nc``: label-map runs have no face stage)."""
    run = RunLayout(checkpoints_dir, name)
    info: dict[str, bool | str] = {"generator": "none", "temporal": False, "face": False, "global_stage": False,
                                   "label_nc": 0}
    if run.has_generator():  # config.json, or the generator file's own copy when it was deleted
        cfg = run_config(name, checkpoints_dir)
        info.update(generator=cfg.netG, temporal=cfg.temporal, label_nc=cfg.label_nc)
    face = run.stage("face")
    info["face"] = face.has_generator()
    info["global_stage"] = run.stage("global").has_generator()
    return info


def describe_stages(name: str, checkpoints_dir: str | Path = "checkpoints") -> str:
    """One line saying which stages a checkpoint has and which it lacks (never silently ignored)."""
    s = checkpoint_stages(name, checkpoints_dir)
    if s["generator"] == "none":
        return f"{name}: no trained generator in {Path(checkpoints_dir) / name}; run notebook 02 first"
    parts = [f"generator: {s['generator']}" + (" (temporal)" if s["temporal"] else " (per frame)")]
    if s["label_nc"]:
        parts.append(f"label maps of {s['label_nc']} classes (no face stage)")
    else:
        parts.append("face stage: yes" if s["face"] else "face stage: not trained (notebook 02 with stage='face')")
    if s["generator"] == "local":
        parts.append("started from the global stage" if s["global_stage"] else "global stage checkpoint missing")
    return f"{name}: " + "; ".join(parts)
