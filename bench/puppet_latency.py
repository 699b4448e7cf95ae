"""Pose puppet latency: from a slider change to the new frame, on the CPU, for the demo preset's generator.

Times :meth:`Puppet.set` (pose the skeleton, draw it the dataset's way, run the generator) and the widget's whole
redraw (``set`` plus the side-by-side PNG the ``Image`` widget receives), over random joint angles, with the
generator on 1 thread (the puppet's default, ``cpu_threads=1``) and on 2. The generator is the demo preset's
architecture; its weights do not change the time, so an untrained one is used unless ``--name`` names a trained
run. Prints the CPU's AVX/AMX flags and the load average: on a shared machine other processes slow it down
(``bench/RESULTS.md`` records the figures).

    .venv/bin/python bench/puppet_latency.py [--name demo --checkpoints-dir checkpoints] [--repeat 60]
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np
import torch
from common import report


def cpu_flags() -> str:
    """The ``lscpu`` flags naming AVX or AMX (what the CPU's vector units can do)."""
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, check=False).stdout
    except FileNotFoundError:
        return "lscpu not available"
    flags = next((line.split(":", 1)[1].split() for line in out.splitlines() if line.startswith("Flags")), [])
    return " ".join(f for f in flags if "avx" in f or "amx" in f) or "none"


def cpu_model() -> str:
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, check=False).stdout
        return next((line.split(":", 1)[1].strip() for line in out.splitlines() if line.startswith("Model name")),
                    platform.processor())
    except FileNotFoundError:
        return platform.processor()


def make_puppet(name: str, checkpoints_dir: str, workdir: Path):
    """A puppet on a few demo training poses (extracted from the demo's ground truth, at 256 px like the demo)."""
    from dancenow_utils.config import make_config
    from dancenow_utils.models.inference import Generator, load_generator
    from dancenow_utils.models.networks import build_generator
    from dancenow_utils.pose.extract import extract
    from dancenow_utils.pose.settings import PoseSettings
    from dancenow_utils.synthetic import make_demo
    from dancenow_utils.transfer.puppet import Puppet

    demo = make_demo(workdir / "demo", size=256, n_train=8, n_heldout=2, n_source=2, seed=0, progress=False)
    extract(demo.video("target_train"), workdir / "dataset", "train", backend="openpose_json",
            keypoints_dir=str(demo.keypoints("target_train")), image_size=256, progress=False)
    keypoints = workdir / "dataset" / "train_keypoints"
    if name:
        gen = load_generator(name, "latest", checkpoints_dir, "cpu")
        what = f"trained run {checkpoints_dir}/{name}"
    else:
        cfg = make_config("demo")
        gen = Generator(build_generator(cfg).eval(), cfg, torch.device("cpu"), "fp32", Path("untrained"),
                        PoseSettings.load(keypoints / "settings.json"))
        what = "demo preset, untrained weights (same cost)"
    return Puppet.from_dataset(gen, keypoints), what


def measure(puppet, repeat: int, seed: int = 0) -> dict[str, float]:
    from dancenow_utils.transfer.puppet import JOINTS

    rng = np.random.default_rng(seed)
    angles = [{j: float(a) for j, a in zip(JOINTS, rng.integers(-90, 91, len(JOINTS)))} for _ in range(repeat)]
    puppet.set(angles[0])  # warm-up: first call allocates
    set_ms, redraw_ms = [], []
    for a in angles:
        t = time.perf_counter()
        frame = puppet.set(a)
        set_ms.append(1000 * (time.perf_counter() - t))
        view = np.concatenate([puppet.pose_image(), frame], axis=1)
        cv2.imencode(".png", cv2.cvtColor(view, cv2.COLOR_RGB2BGR))
        redraw_ms.append(1000 * (time.perf_counter() - t))

    def p90(xs: list[float]) -> float:
        return float(np.percentile(xs, 90))

    return {"set_median_ms": round(statistics.median(set_ms), 1), "set_p90_ms": round(p90(set_ms), 1),
            "redraw_median_ms": round(statistics.median(redraw_ms), 1), "redraw_p90_ms": round(p90(redraw_ms), 1)}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--name", default="", help="a trained run under --checkpoints-dir (default: untrained weights)")
    ap.add_argument("--checkpoints-dir", default="checkpoints")
    ap.add_argument("--repeat", type=int, default=60)
    ap.add_argument("--threads", default="1,2", help="the puppet's cpu_threads values to measure, comma-separated")
    a = ap.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="puppet-bench-") as tmp:
        puppet, what = make_puppet(a.name, a.checkpoints_dir, Path(tmp))
        results = {}
        for n in (int(x) for x in a.threads.split(",")):
            puppet.cpu_threads = n
            results[f"{n}_threads"] = measure(puppet, a.repeat)
    report("puppet_latency", {
        "generator": what, "frame_size": list(puppet.gen.size), "repeat": a.repeat,
        "cpu": cpu_model(), "cpu_cores": os.cpu_count(), "cpu_flags_avx_amx": cpu_flags(),
        "load_average_1min": round(os.getloadavg()[0], 2), "torch": torch.__version__, **results,
    })
    return 0


if __name__ == "__main__":
    sys.exit(main())
