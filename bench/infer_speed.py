"""Transfer speed: generated frames per second at 256x256 with batch sizes 1, 4 and 8 (demo and seed presets).

    .venv/bin/python bench/infer_speed.py
"""

from __future__ import annotations

import torch
from common import machine, report, timeit

from dancenow_utils.config import make_config
from dancenow_utils.models.networks import build_generator


def fps(preset: str, batch: int, size: int = 256) -> float:
    cfg = make_config(preset, {"width": size, "height": size})
    G = build_generator(cfg).eval()
    x = torch.rand(batch, 3, size, size) * 2 - 1
    with torch.no_grad():
        sec, _ = timeit(lambda: G(x), repeat=3)
    return batch / sec


if __name__ == "__main__":
    report("infer_speed", {"machine": machine(), **{f"{p}_batch{b}_fps": round(fps(p, b), 2)
                                                    for p in ("demo", "seed") for b in (1, 4, 8)}})
