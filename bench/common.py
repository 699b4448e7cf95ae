"""Helpers shared by the benchmark scripts: timing and the demo data they run on."""

from __future__ import annotations

import json
import os
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import torch

from dancenow_utils.runtime.precision import describe_cpu

ROOT = Path(__file__).resolve().parents[1]


def call_times(fn: Callable[[], object], repeat: int = 5, warmup: int = 1) -> list[float]:
    """Seconds of each of ``repeat`` calls of ``fn``, after ``warmup`` untimed calls."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return times


def timeit(fn: Callable[[], object], repeat: int = 5, warmup: int = 1) -> tuple[float, float]:
    """Median and spread (min..max)/2 of ``repeat`` timed calls, in seconds."""
    times = call_times(fn, repeat, warmup)
    return statistics.median(times), (max(times) - min(times)) / 2


def machine() -> str:
    """The machine a figure was measured on, with the CPU's SIMD flags (they decide CPU speed and precision)."""
    cuda = torch.cuda.get_device_name() if torch.cuda.is_available() else "no"
    return (f"{describe_cpu()}; {torch.get_num_threads()} torch threads, torch {torch.__version__}, CUDA: {cuda}, "
            f"GLIBC_TUNABLES={os.environ.get('GLIBC_TUNABLES', 'unset')}")


def demo(out: Path | None = None, n_train: int = 1000, n_heldout: int = 240, n_source: int = 300):
    """The full-size demo (made once under bench/.data)."""
    from dancenow_utils.notebook.pipeline import ensure_demo

    return ensure_demo(out or ROOT / "bench" / ".data" / "demo", n_train, n_heldout, n_source, progress=False)


def report(name: str, result: dict) -> None:
    print(json.dumps({"bench": name, **result}, indent=2))
