"""Training configuration: one typed dataclass, named presets, JSON round-trip.

The config is saved beside every checkpoint (``config.json``) so that a model can always be rebuilt
exactly as it was trained. Papermill parameters map onto it through :func:`make_config`.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dancenow_utils.io_utils import atomic_write_text


@dataclass
class TrainConfig:
    """Every option of the pix2pixHD pose-to-appearance model and its training loop."""

    preset: str = "demo"
    # image size (width x height) the networks see
    width: int = 128
    height: int = 128
    input_nc: int = 3
    output_nc: int = 3
    # generator
    netG: str = "global"  # "global" or "local"
    ngf: int = 32
    n_downsample_global: int = 3
    n_blocks_global: int = 6
    n_local_enhancers: int = 1
    n_blocks_local: int = 3
    # temporal smoothing: the generator also sees its previous output (Everybody Dance Now)
    temporal: bool = False
    # discriminator
    num_D: int = 2
    ndf: int = 32
    n_layers_D: int = 3
    # losses
    lambda_feat: float = 10.0
    use_feat_loss: bool = True
    vgg_loss: str = "auto"  # "auto" | "on" | "off"
    vgg_weights: str = ""  # local VGG19 state-dict file; empty = torchvision's cache or download
    # optimisation
    lr: float = 2e-4
    beta1: float = 0.5
    niter: int = 10  # epochs at constant learning rate
    niter_decay: int = 10  # epochs of linear decay to zero
    batch_size: int = 4
    max_dataset_size: int = 0  # 0 = all pairs
    flip: bool = False  # off: flipping a coloured skeleton swaps the meaning of left and right
    cache_images: bool = True
    seed: int = 0
    device: str = "auto"  # "auto" | "cpu" | "cuda" | "cuda:1" ...
    amp: str = "auto"  # "auto" uses fp16 autocast on CUDA only; "off" disables it
    threads: int = 0  # 0 = leave torch's default
    # bookkeeping
    save_latest_freq: int = 200  # iterations between `latest` checkpoints
    save_epoch_freq: int = 5  # epochs between numbered checkpoints
    display_freq: int = 100  # iterations between visuals on the HTML page
    log_freq: int = 10  # iterations between loss-log lines

    @property
    def total_epochs(self) -> int:
        return self.niter + self.niter_decay

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def save(self, path: str | Path) -> None:
        atomic_write_text(Path(path), json.dumps(self.to_dict(), indent=2, sort_keys=True) + "\n")

    @classmethod
    def load(cls, path: str | Path) -> TrainConfig:
        path = Path(path)
        try:
            data = json.loads(path.read_text())
        except FileNotFoundError:
            raise FileNotFoundError(f"{path}: no config file; train a model first (notebook 02).") from None
        except json.JSONDecodeError as exc:
            raise ValueError(f"{path}: not valid JSON ({exc}); delete it or retrain.") from exc
        return cls().with_overrides(data)

    def with_overrides(self, overrides: dict[str, Any] | None) -> TrainConfig:
        """Return a copy with ``overrides`` applied; an unknown key is an error listing the valid keys."""
        overrides = dict(overrides or {})
        valid = {f.name: f for f in dataclasses.fields(self)}
        unknown = sorted(set(overrides) - set(valid))
        if unknown:
            raise KeyError(f"unknown config key(s) {unknown}; valid keys are: {', '.join(sorted(valid))}")
        typed = {k: _coerce(valid[k], v) for k, v in overrides.items()}
        return dataclasses.replace(self, **typed)


def _coerce(f: dataclasses.Field, value: Any) -> Any:
    """Cast JSON/papermill values to the field's type (ints given as floats, numbers given as strings)."""
    kind = f.type if isinstance(f.type, str) else getattr(f.type, "__name__", str(f.type))
    try:
        if kind == "bool":
            if isinstance(value, str):
                if value.lower() in {"true", "1", "yes", "on"}:
                    return True
                if value.lower() in {"false", "0", "no", "off"}:
                    return False
                raise ValueError(value)
            return bool(value)
        if kind == "int":
            if isinstance(value, float) and not value.is_integer():
                raise ValueError(value)
            return int(value)
        if kind == "float":
            return float(value)
        if kind == "str":
            return str(value)
    except (TypeError, ValueError):
        raise ValueError(f"config key {f.name!r} expects {kind}, got {value!r}") from None
    return value


PRESETS: dict[str, dict[str, Any]] = {
    # Small and CPU-friendly: `make demo` trains this in about 6.5 minutes on two cores (3 + 2 epochs over the
    # demo's 1000 frames, 2500 steps; bench/RESULTS.md).
    "demo": dict(width=128, height=128, ngf=16, n_downsample_global=3, n_blocks_global=4, ndf=16, num_D=2,
                 batch_size=2, niter=3, niter_decay=2, save_latest_freq=250, display_freq=250, log_freq=10),
    # Tiny networks for tests and smoke runs (about 0.07 s per step at 64x64 on a laptop CPU).
    "tiny": dict(width=64, height=64, ngf=16, n_downsample_global=3, n_blocks_global=3, ndf=16, num_D=2,
                 n_layers_D=2, batch_size=2, niter=1, niter_decay=1, vgg_loss="off", save_latest_freq=5,
                 display_freq=5, log_freq=1),
    # The original hobby project: pix2pixHD global generator at 512x512 (182,443,267 parameters).
    "seed": dict(width=512, height=512, ngf=64, n_downsample_global=4, n_blocks_global=9, ndf=64, num_D=2,
                 batch_size=1, niter=20, niter_decay=20, vgg_loss="auto"),
    # Everybody Dance Now's official stages: global at 512x256, then the local enhancer at 1024x512.
    "edn_global": dict(width=512, height=256, ngf=64, n_downsample_global=4, n_blocks_global=9, ndf=64,
                       num_D=2, batch_size=1, niter=20, niter_decay=20),
    "edn_local": dict(width=1024, height=512, netG="local", ngf=32, n_downsample_global=4, n_blocks_global=9,
                      n_local_enhancers=1, n_blocks_local=3, ndf=64, num_D=3, batch_size=1, niter=10,
                      niter_decay=10),
}


def make_config(preset: str = "demo", overrides: dict[str, Any] | None = None) -> TrainConfig:
    """Build the config of a named preset, then apply ``overrides`` (e.g. papermill's ``overrides`` dict)."""
    if preset not in PRESETS:
        raise KeyError(f"unknown preset {preset!r}; choose one of: {', '.join(PRESETS)}")
    return TrainConfig(preset=preset).with_overrides(PRESETS[preset]).with_overrides(overrides)


__all__ = ["PRESETS", "TrainConfig", "make_config"]
