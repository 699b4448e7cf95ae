"""Transfer speed by runtime (issue 26): eager PyTorch (fp32, the auto precision, channels_last, torch.compile) against
ONNX Runtime (its graph optimisation levels, int8 quantisation with its quality cost), per preset, size and batch;
the share of the CPU's matmul peak the fastest reaches; and the puppet page's frames per second in headless
Chromium (onnxruntime-web, WebAssembly, one thread).

    .venv/bin/python bench/export_speed.py                      # demo at 256x256 and 128x128, batches 1 and 8
    .venv/bin/python bench/export_speed.py --presets demo:256 --batches 1,4,8 --compile --no-browser

The generators have their initial (untrained) weights: the time does not depend on the values. Quantisation's
quality cost is measured on these weights too (largest and mean difference to fp32 on the [-1, 1] scale, on
stick-figure-like inputs), which says how much int8 rounding perturbs this architecture, not how a trained
character looks. Prints the CPU's SIMD flags and the load average: on a shared machine other processes slow it
down (``bench/RESULTS.md`` records the figures).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import torch
from common import ROOT, call_times, machine, report
from torch import nn

from dancenow_utils.config import make_config
from dancenow_utils.models.networks import build_generator
from dancenow_utils.runtime.precision import autocast, resolve_precision
from dancenow_utils.transfer.export import module_proto, session

LEVELS = ("disabled", "basic", "extended", "all")


def timed(fn, repeat: int, warmup: int = 2) -> dict[str, float]:
    """Median and fastest of ``repeat`` calls, in ms (after ``warmup`` calls)."""
    times = [1000 * t for t in call_times(fn, repeat, warmup)]
    return {"median_ms": round(statistics.median(times), 2), "min_ms": round(min(times), 2)}


def conv_flops(G: nn.Module, x: torch.Tensor) -> float:
    """Multiply-adds x 2 of every convolution for one forward pass of ``x``."""
    total = [0.0]

    def hook(m, inp, out):
        k = m.weight.shape[2] * m.weight.shape[3]
        if isinstance(m, nn.ConvTranspose2d):  # every input pixel meets every weight
            total[0] += 2.0 * inp[0].numel() * m.out_channels * k
        else:
            total[0] += 2.0 * out.numel() * (m.in_channels // m.groups) * k

    handles = [m.register_forward_hook(hook) for m in G.modules() if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d))]
    with torch.no_grad():
        G(x)
    for h in handles:
        h.remove()
    return total[0]


def matmul_peak(dtype: torch.dtype, n: int = 1024, repeat: int = 10) -> float:
    """GFLOP/s of an n x n matmul in ``dtype`` (the fastest of ``repeat``): this CPU's practical peak."""
    a, b = torch.randn(n, n).to(dtype), torch.randn(n, n).to(dtype)
    best = timed(lambda: a @ b, repeat)["min_ms"] / 1000
    return 2 * n**3 / best / 1e9


def stick_inputs(batch: int, size: int, seed: int = 0) -> np.ndarray:
    """Stick-figure-like inputs in [-1, 1]: coloured bars on black."""
    rng = np.random.default_rng(seed)
    img = np.zeros((batch, size, size, 3), np.uint8)
    for b in range(batch):
        for _ in range(12):
            y, x = rng.integers(size // 8, size - size // 8, 2)
            t = max(2, size // 64)
            img[b, y: y + t, max(0, x - size // 8): x + size // 8] = rng.integers(60, 255, 3)
    return (img.transpose(0, 3, 1, 2).astype(np.float32) / 127.5 - 1).copy()


def quantized(model: bytes, size: int, kind: str) -> bytes:
    """``model`` quantised to int8: ``dynamic`` (weights int8, activations quantised on the fly) or ``static``
    (QDQ, activations calibrated on stick-figure-like inputs)."""
    from onnxruntime.quantization import CalibrationDataReader, QuantType, quantize_dynamic, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    with tempfile.TemporaryDirectory() as tmp:
        src, pre, dst = Path(tmp, "fp32.onnx"), Path(tmp, "pre.onnx"), Path(tmp, "int8.onnx")
        src.write_bytes(model)
        quant_pre_process(str(src), str(pre), skip_symbolic_shape=True)
        if kind == "dynamic":
            quantize_dynamic(str(pre), str(dst), weight_type=QuantType.QInt8)
        else:
            class Reader(CalibrationDataReader):
                def __init__(self) -> None:
                    self.items = iter([{"pose": stick_inputs(1, size, seed)} for seed in range(8)])

                def get_next(self):
                    return next(self.items, None)

            quantize_static(str(pre), str(dst), Reader(), activation_type=QuantType.QUInt8,
                            weight_type=QuantType.QInt8, per_channel=True)
        return dst.read_bytes()


def bench_preset(preset: str, size: int, batches: list[int], repeat: int, compile_: bool, quant: bool) -> dict:
    cfg = make_config(preset, {"width": size, "height": size})
    torch.manual_seed(0)
    G = build_generator(cfg).eval()
    auto = resolve_precision("auto", torch.device("cpu"))
    x1 = torch.from_numpy(stick_inputs(1, size))
    flops = conv_flops(G, x1)
    proto = module_proto(G, (x1,), ["pose"], ["frame"])
    model = proto.SerializeToString()
    out: dict = {"preset": preset, "size": size, "gflop_per_frame": round(flops / 1e9, 2), "auto_precision": auto,
                 "batches": {}}
    sessions = {f"onnxruntime_{lvl}": session(model, level=lvl) for lvl in LEVELS}
    if quant:
        for kind in ("dynamic", "static"):
            t = time.perf_counter()
            try:
                sessions[f"onnxruntime_int8_{kind}"] = session(quantized(model, size, kind))
                out[f"int8_{kind}_prepare_s"] = round(time.perf_counter() - t, 1)
            except Exception as exc:  # a quantiser that cannot handle a node: reported, not hidden
                out[f"int8_{kind}_error"] = f"{type(exc).__name__}: {str(exc)[:200]}"
    G_cl = build_generator(cfg).eval()
    G_cl.load_state_dict(G.state_dict())
    G_cl = G_cl.to(memory_format=torch.channels_last)
    compiled = None
    if compile_:
        t = time.perf_counter()
        try:
            compiled = torch.compile(G)
            with torch.no_grad():
                compiled(x1)
            out["compile_s"] = round(time.perf_counter() - t, 1)
        except Exception as exc:
            out["compile_error"] = f"{type(exc).__name__}: {str(exc)[:200]}"
            compiled = None
    for batch in batches:
        rows = bench_batch(G, G_cl, compiled, sessions, auto, batch, size, repeat, flops)
        out["batches"][str(batch)] = rows
        print(f"{preset} {size}px batch {batch}: " + ", ".join(f"{k} {v['fps']} fps" for k, v in rows.items()
                                                                if "fps" in v), file=sys.stderr, flush=True)
    return out


def bench_batch(G: nn.Module, G_cl: nn.Module, compiled, sessions: dict, auto: str, batch: int, size: int,
                repeat: int, flops: float) -> dict[str, dict]:
    """Every runtime on one batch: ms, frames per second, speed-up over eager fp32, difference to it. The runtimes
    take turns, one call each per round (the order rotating), so a burst of load from other processes hits all of
    them; the fastest round of each is the least disturbed and is what the speed-ups compare."""
    xn = stick_inputs(batch, size, seed=batch)
    x = torch.from_numpy(xn)
    xc = x.to(memory_format=torch.channels_last)
    with torch.no_grad():
        ref = G(x).numpy()

    def run_auto():
        with autocast(torch.device("cpu"), auto):
            return G(x).float()

    runners = {"eager_fp32": lambda: G(x)}
    if auto != "fp32":
        runners[f"eager_{auto}"] = run_auto
    runners["eager_fp32_channels_last"] = lambda: G_cl(xc)
    if compiled is not None:
        runners["torch_compile_fp32"] = lambda: compiled(x)
    for key, sess in sessions.items():
        runners[key] = lambda s=sess: torch.from_numpy(s.run(["frame"], {"pose": xn})[0])
    times: dict[str, list[float]] = {k: [] for k in runners}
    rows: dict[str, dict] = {}
    with torch.no_grad():
        for key, run in runners.items():  # warm-up, and each one's difference to eager fp32
            got = run().float().numpy()
            run()
            rows[key] = {"max_abs_diff": round(float(np.abs(got - ref).max()), 5),
                         "mean_abs_diff": round(float(np.abs(got - ref).mean()), 5)}
        keys = list(runners)
        for r in range(repeat):
            for key in keys[r % len(keys):] + keys[: r % len(keys)]:
                t = time.perf_counter()
                runners[key]()
                times[key].append(1000 * (time.perf_counter() - t))
    for key, ts in times.items():
        rows[key].update(min_ms=round(min(ts), 2), median_ms=round(statistics.median(ts), 2))
    base = rows["eager_fp32"]["min_ms"]
    for r in rows.values():
        r["fps"] = round(1000 * batch / r["min_ms"], 2)
        r["speedup"] = round(base / r["min_ms"], 2)
    best = min(rows, key=lambda k: rows[k]["min_ms"])
    rows["best"] = {"runtime": best, "gflop_per_s": round(flops * batch / (rows[best]["min_ms"] / 1000) / 1e9, 1)}
    return rows


def browser_fps(frames: int = 30) -> dict:
    """The puppet page of the demo preset's generator (untrained, 128 px) in headless Chromium: generator ms per
    frame over ``frames`` slider moves."""
    sys.path.insert(0, str(ROOT))
    from dancenow_utils.checkpoint import save_checkpoint
    from dancenow_utils.layout import RunLayout
    from dancenow_utils.pose.extract import extract
    from dancenow_utils.pose.settings import PoseSettings
    from dancenow_utils.synthetic import make_demo
    from dancenow_utils.transfer.export import export_generator
    from tests.browser_helper import Browser, find_chromium, serve

    chromium = find_chromium()
    if chromium is None:
        return {"error": "no Chromium (bash tools/ensure_browser.sh)"}
    with tempfile.TemporaryDirectory(prefix="export-bench-") as tmp:
        tmp = Path(tmp)
        demo = make_demo(tmp / "demo", size=256, n_train=8, n_heldout=2, n_source=2, seed=0, progress=False)
        extract(demo.video("target_train"), tmp / "dataset", "train", backend="openpose_json",
                keypoints_dir=str(demo.keypoints("target_train")), image_size=256, progress=False)
        cfg = make_config("demo")
        run = RunLayout(tmp / "ck", "demo")
        cfg.save(run.config)
        settings = PoseSettings.load(tmp / "dataset" / "train_keypoints" / "settings.json")
        save_checkpoint(run.generator(), {"G": build_generator(cfg).state_dict(), "config": cfg.to_dict(),
                                          "model": "pix2pixhd", "pose_settings": settings.to_dict()})
        res = export_generator("demo", checkpoints_dir=tmp / "ck", results_dir=tmp / "results",
                               heldout=tmp / "dataset" / "train_A", keypoints_dir=tmp / "dataset" / "train_keypoints")
        with Browser(chromium) as browser, serve(res.dir) as url, browser.page() as (page, _log):
            page.goto(url + "/index.html", wait_until="load")
            page.wait_for_function("document.body.dataset.state !== 'loading'", timeout=120_000)
            if page.evaluate("document.body.dataset.state") != "ready":
                return {"error": page.inner_text("#error")}
            page.evaluate("puppet.setAngles({RElbow: 10})")  # warm-up
            ms = page.evaluate(f"""async () => {{
                const times = [];
                for (let i = 0; i < {frames}; i++) {{
                    const t = performance.now();
                    await puppet.setAngles({{RElbow: (i * 10) % 180 - 90, LKnee: (i * 7) % 90}});
                    times.push(performance.now() - t);
                }}
                return times;
            }}""")
            version = page.evaluate("navigator.userAgent")
    ms = sorted(ms)
    median = ms[len(ms) // 2]
    return {"generator_size": list(cfg_size(cfg)), "frames": frames, "median_ms_per_slider_move": round(median, 1),
            "fps": round(1000 / median, 1), "browser": version.split("HeadlessChrome/")[-1].split(" ")[0],
            "threads": 1, "backend": "onnxruntime-web wasm"}


def cfg_size(cfg) -> tuple[int, int]:
    return cfg.width, cfg.height


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--presets", default="demo:256,demo:128", help="preset:size pairs, comma-separated")
    ap.add_argument("--batches", default="1,8")
    ap.add_argument("--repeat", type=int, default=9)
    ap.add_argument("--threads", type=int, default=0, help="torch and ONNX Runtime threads (0: torch's default)")
    ap.add_argument("--compile", action="store_true", help="also time torch.compile (its compile time is reported)")
    ap.add_argument("--no-quant", action="store_true", help="skip int8 quantisation")
    ap.add_argument("--no-browser", action="store_true", help="skip the puppet page in Chromium")
    a = ap.parse_args(argv)
    warnings.filterwarnings("ignore")
    if a.threads:
        torch.set_num_threads(a.threads)
    t0 = time.perf_counter()
    peak = {"fp32": round(matmul_peak(torch.float32), 1)}
    if resolve_precision("auto", torch.device("cpu")) == "bf16":
        peak["bf16"] = round(matmul_peak(torch.bfloat16), 1)
    results = []
    for item in a.presets.split(","):
        preset, size = item.split(":")
        results.append(bench_preset(preset, int(size), [int(b) for b in a.batches.split(",")], a.repeat, a.compile,
                                    not a.no_quant))
    import onnxruntime

    out = {"machine": machine(), "onnxruntime": onnxruntime.__version__,
           "load_average_1min": round(os.getloadavg()[0], 2), "matmul_peak_gflop_per_s": peak, "presets": results}
    if not a.no_browser:
        out["browser"] = browser_fps()
    out["seconds"] = round(time.perf_counter() - t0, 1)
    report("export_speed", out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
