"""One training process on every core against one process per core (issue 28): notebook 02's ``gpus`` on a CPU.

On a CPU ``gpus=k`` trains in ``k`` processes over gloo (distributed data parallel), each with ``batch_size /
k`` items a step, so a step sees the same global batch as one process with ``batch_size`` (every norm is per
sample, and the epoch's global batches are the same draws). The question is whether ``k`` processes of one
thread beat one process of ``k`` threads, whose convolutions scale imperfectly across cores.

Each layout trains the preset for ``--items`` frames of the demo's data (one epoch, from scratch), alternating
layouts round by round; the figure is the median of the loss log's ``sec_per_iter`` over the second half of
the epoch (after warm-up), and the wall time of the whole call (process start-up included).

    .venv/bin/python bench/train_processes.py [--preset demo] [--items 600] [--rounds 2] [--processes 2]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import tempfile
import time
from pathlib import Path

from common import ROOT, machine, report

from dancenow_utils.config import make_config
from dancenow_utils.runtime import precision
from dancenow_utils.training.launch import train_stages_on


def seconds_per_step(run: Path) -> float:
    """Median ``sec_per_iter`` of the second half of the run's loss log."""
    rows = [json.loads(line) for line in (run / "loss_log.jsonl").read_text().splitlines() if line.strip()]
    return statistics.median(r["sec_per_iter"] for r in rows[len(rows) // 2:])


def one_layout(preset: str, processes: int, cores: int, items: int, dataroot: Path, out: Path) -> dict:
    """Train one epoch of ``items`` frames in ``processes`` processes sharing ``cores`` cores; its timings."""
    base = make_config(preset)
    cfg = make_config(preset, {"niter": 1, "niter_decay": 0, "max_dataset_size": items,
                               "threads": max(1, cores // processes), "batch_size": base.batch_size // processes})
    shutil.rmtree(out, ignore_errors=True)
    t = time.perf_counter()
    train_stages_on(processes, "global", cfg, dataroot, "run", out, resume=False, progress=False)
    wall = time.perf_counter() - t
    return {"processes": processes, "threads_each": cfg.threads, "batch_each": cfg.batch_size,
            "s_per_step": round(seconds_per_step(out / "run"), 4), "wall_s": round(wall, 1)}


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--preset", default="demo")
    ap.add_argument("--items", type=int, default=600, help="training frames (one epoch; default 600)")
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--processes", type=int, default=2, help="processes of the second layout (default 2)")
    ap.add_argument("--dataroot", default=str(ROOT / "dataset"))
    a = ap.parse_args(argv)
    dataroot = Path(a.dataroot)
    if not (dataroot / "train_A").is_dir():
        raise SystemExit(f"{dataroot / 'train_A'} not found: run `make demo` first (or pass --dataroot)")
    cores = os.cpu_count() or 1
    if make_config(a.preset).batch_size % a.processes:
        raise SystemExit(f"preset {a.preset!r}'s batch does not split into {a.processes} processes")
    print(f"CPU: {precision.describe_cpu()}\n{machine()}\n{cores} cores", flush=True)
    rows: dict[int, list[dict]] = {1: [], a.processes: []}
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(a.rounds):
            order = [1, a.processes] if r % 2 == 0 else [a.processes, 1]
            for k in order:
                rows[k].append(one_layout(a.preset, k, cores, a.items, dataroot, Path(tmp) / f"p{k}"))
                print(f"round {r + 1}: {rows[k][-1]}", flush=True)
    summary = {k: {"s_per_step": statistics.median(x["s_per_step"] for x in v),
                   "wall_s": statistics.median(x["wall_s"] for x in v)} for k, v in rows.items()}
    out = {"machine": machine(), "cpu": precision.describe_cpu(), "cores": cores, "preset": a.preset,
           "items": a.items, "rounds": rows, "median": summary,
           "speedup_per_step": round(summary[1]["s_per_step"] / summary[a.processes]["s_per_step"], 2)}
    report("train_processes", out)
    return out


if __name__ == "__main__":
    main()
