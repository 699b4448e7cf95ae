"""The ONNX Runtime transfer backend: the same generator, exported (:mod:`dancenow_utils.transfer.export`) and run
by ONNX Runtime on the CPU instead of eager PyTorch.

``load_runtime(name, runtime=...)`` returns a :class:`~dancenow_utils.models.inference.Generator` that
:func:`~dancenow_utils.transfer.pose_transfer.run_transfer` and the puppet use unchanged:

- ``"torch"``: eager PyTorch at the config's precision (the default everywhere before issue 26);
- ``"onnxruntime"``: :class:`OnnxGenerator`, the generator (and face stage) exported in memory and run in fp32 by
  ONNX Runtime with all its graph optimisations; its frames match PyTorch's fp32 ones within the export's
  tolerance (1e-3 on the [-1, 1] scale);
- ``"auto"``: whichever is faster here, by a short measurement (both runtimes on the generator's own input size
  and batch, interleaved rounds, about a second), as :mod:`dancenow_utils.runtime.precision` chooses bf16. ONNX
  Runtime must beat PyTorch by :data:`MIN_SPEEDUP` to be chosen. The answer is cached beside the precision
  calibration (``$DANCENOW_CACHE/runtime.json``, default ``~/.cache/dancenow/runtime.json``), keyed by CPU, SIMD
  flags, torch and onnxruntime versions, threads, the architecture and batch; a measurement visibly disturbed by
  other processes is used but not cached. On a GPU "auto" is PyTorch (ONNX Runtime's CPU package only).
  ``DANCENOW_RUNTIME=torch|onnxruntime`` forces what "auto" resolves to.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import os
import time
from pathlib import Path

import numpy as np
import torch

from dancenow_utils.config import ARCH_KEYS
from dancenow_utils.data.datasets import input_tensors
from dancenow_utils.data.labels import LabelInput
from dancenow_utils.io_utils import atomic_write_text
from dancenow_utils.models.features import ClassFeatures
from dancenow_utils.models.inference import FaceCorrector, Generator, load_generator
from dancenow_utils.runtime.device import resolve_device
from dancenow_utils.runtime.precision import _cpu_model, _simd_flags, cache_path, cpu_flags
from dancenow_utils.transfer.export import face_proto, generator_proto, session

log = logging.getLogger("dancenow")

RUNTIMES = ("torch", "onnxruntime", "auto")
MIN_SPEEDUP = 1.1  # ONNX Runtime must be this much faster than PyTorch for "auto" to choose it
MAX_SPREAD = 1.5  # slowest / fastest round above this: disturbed by other processes, not cached
ENV_FORCE = "DANCENOW_RUNTIME"
_CACHE_VERSION = 1


def check_runtime(runtime: str) -> str:
    """``runtime`` in its canonical form, or a ValueError naming the choices."""
    canon = runtime.strip().lower() if isinstance(runtime, str) else None
    if canon not in RUNTIMES:
        raise ValueError(f"runtime={runtime!r} is not valid; choose one of {', '.join(map(repr, RUNTIMES))}")
    return canon


class OnnxFaceCorrector(FaceCorrector):
    """The face stage run by ONNX Runtime (``face.onnx``): the same boxes, crops and pasting as in PyTorch."""

    def __init__(self, torch_face: FaceCorrector, model: bytes) -> None:
        super().__init__(torch_face.G, torch_face.cfg, torch_face.device, "fp32")
        self.session = session(model)

    def correct(self, pose_crops: torch.Tensor, face_crops: torch.Tensor) -> torch.Tensor:
        """The exported face model's corrected crops (the boxes, crops and pasting are the PyTorch stage's)."""
        feeds = {"pose_face": pose_crops.contiguous().numpy(), "face": face_crops.contiguous().numpy()}
        return torch.from_numpy(self.session.run(["corrected_face"], feeds)[0])


@dataclasses.dataclass
class OnnxGenerator(Generator):
    """A :class:`Generator` whose network runs on ONNX Runtime (the exported model with its named inputs)."""

    session: object = None

    @classmethod
    def from_torch(cls, gen: Generator, name: str = "") -> OnnxGenerator:
        """Export ``gen`` (a CPU generator) in memory and open it, and its face stage, in ONNX Runtime."""
        if gen.device.type != "cpu":
            raise ValueError(f"runtime='onnxruntime' runs on the CPU (the onnxruntime package); {gen.path} is on "
                             f"{gen.device}: use runtime='torch' there, or device='cpu'")
        fields = {f.name: getattr(gen, f.name) for f in dataclasses.fields(Generator)}
        out = cls(**{**fields, "precision": "fp32"}, session=session(generator_proto(gen, name).SerializeToString()))
        if gen.face is not None:
            out.face = OnnxFaceCorrector(gen.face, face_proto(gen, name).SerializeToString())
        return out

    @torch.no_grad()
    def generator_input(self, chunk: list[np.ndarray | LabelInput], features: ClassFeatures | None = None,
                        references: list[np.ndarray] | None = None) -> torch.Tensor:
        """Pose tensors as in PyTorch; for label maps the raw class (and instance) ids, then any features, as
        channels (the exported graph encodes them itself)."""
        full = super().generator_input(chunk, features, references)
        if not self.label_maps:
            return full
        items = [input_tensors(p) for p in chunk]
        raw = [torch.stack([it["A"] for it in items]).float()]
        if self.cfg.instance_maps:
            raw.append(torch.stack([it["inst"] for it in items]).float())
        if self.cfg.use_features:
            raw.append(full[:, full.shape[1] - self.cfg.feat_num:].cpu())
        return torch.cat(raw, 1)

    def feeds(self, inputs: torch.Tensor, previous: torch.Tensor | None = None) -> dict[str, np.ndarray]:
        """The named inputs of the exported model for :meth:`generator_input`'s tensor (and the previous frame)."""
        cfg, x = self.cfg, inputs.detach().cpu().float()
        feeds: dict[str, np.ndarray] = {}
        if cfg.label_nc:
            feeds["label"] = x[:, :1].round().long().numpy()
            k = 1
            if cfg.instance_maps:
                feeds["instance"] = x[:, 1:2].round().long().numpy()
                k = 2
            if cfg.use_features:
                feeds["features"] = x[:, k:].contiguous().numpy()
        else:
            feeds["pose"] = x.contiguous().numpy()
        if cfg.temporal:
            prev = previous.detach().cpu().float() if previous is not None else \
                torch.zeros(x.shape[0], cfg.output_nc, *x.shape[2:])
            feeds["previous"] = prev.contiguous().numpy()
        return feeds

    @torch.no_grad()
    def batch(self, poses: torch.Tensor, previous: torch.Tensor | None = None) -> torch.Tensor:
        return torch.from_numpy(self.session.run(["frame"], self.feeds(poses, previous))[0])


def load_runtime(name: str, which_epoch: str | int = "latest", checkpoints_dir: str | Path = "checkpoints",
                 device: str = "auto", runtime: str = "torch", batch_size: int = 8, face: bool = True) -> Generator:
    """The generator of ``checkpoints/<name>`` on ``runtime`` (module docstring); the choice and, for "auto",
    the measurement are in the returned generator's ``runtime_choice``."""
    runtime = check_runtime(runtime)
    dev = resolve_device(device)
    if runtime == "auto":
        forced = os.environ.get(ENV_FORCE, "").strip().lower()
        if forced and forced != "auto":
            runtime = check_runtime(forced)
            log.info("runtime='auto' forced to %s by %s", runtime, ENV_FORCE)
        elif dev.type != "cpu":
            runtime = "torch"
    if runtime == "onnxruntime" and dev.type != "cpu":
        if device != "auto":
            raise ValueError(f"runtime='onnxruntime' runs on the CPU (the onnxruntime package), not on {dev}: use "
                             "runtime='torch' there, or device='cpu' (or 'auto')")
        device = "cpu"
    gen = load_generator(name, which_epoch, checkpoints_dir, device, face)
    if runtime == "torch":
        gen.runtime_choice = {"runtime": "torch", "precision": gen.precision}
        return gen
    onnx_gen = OnnxGenerator.from_torch(gen, name)
    if runtime == "onnxruntime":
        onnx_gen.runtime_choice = {"runtime": "onnxruntime", "precision": "fp32"}
        return onnx_gen
    entry = choose_runtime(gen, onnx_gen, batch_size)
    chosen = onnx_gen if entry["choice"] == "onnxruntime" else gen
    chosen.runtime_choice = {"runtime": entry["choice"], "precision": chosen.precision, "measured": entry}
    return chosen


def choose_runtime(gen: Generator, onnx_gen: OnnxGenerator, batch_size: int = 8) -> dict:
    """The faster of PyTorch (``gen``) and ONNX Runtime (``onnx_gen``) here: cached, else measured."""
    batch = 1 if gen.cfg.temporal else batch_size
    key = _cache_key(gen, batch)
    entry = _read_cache().get(key)
    if entry is None:
        entry = measure_runtimes(gen, onnx_gen, batch)
        if entry["reliable"]:
            _write_cache_entry(key, entry)
        else:
            log.info("runtime measurement disturbed by other processes (rounds %.1fx apart); using %s without "
                     "caching it", entry["spread"], entry["choice"])
    log.info("runtime='auto': %s (ONNX Runtime %.2fx PyTorch %s)", entry["choice"], entry["speedup"],
             entry["torch_precision"])
    return entry


def measure_runtimes(gen: Generator, onnx_gen: OnnxGenerator, batch: int = 8, rounds: int = 7,
                     budget_s: float = 2.0) -> dict:
    """Time one batch of the generator in both runtimes, interleaved (at least 3 rounds, then until
    ``budget_s``); the fastest round of each, the speed-up of ONNX Runtime and the choice."""
    start = time.perf_counter()
    w, h = gen.size
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        x = torch.rand(batch, gen.cfg.input_nc, h, w) * 2 - 1
    if gen.label_maps:  # class ids in both runtimes' own input form
        labels = torch.randint(0, gen.cfg.label_nc, (batch, h, w)).numpy()
        items = [LabelInput(lab, lab.copy() if gen.cfg.instance_maps else None) for lab in labels]
        inputs = {"torch": gen.generator_input(items), "onnxruntime": onnx_gen.generator_input(items)}
    else:
        inputs = {"torch": x.to(gen.device), "onnxruntime": x}
    runners = {"torch": lambda: gen.batch(inputs["torch"]),
               "onnxruntime": lambda: onnx_gen.batch(inputs["onnxruntime"])}
    for run in runners.values():  # warm-up: kernels built, memory allocated
        run()
    times: dict[str, list[float]] = {k: [] for k in runners}
    for r in range(rounds):
        for k in (("torch", "onnxruntime") if r % 2 == 0 else ("onnxruntime", "torch")):
            t = time.perf_counter()
            runners[k]()
            times[k].append(time.perf_counter() - t)
        if r >= 2 and time.perf_counter() - start > budget_s:
            break
    best = {k: min(v) for k, v in times.items()}
    speedup = best["torch"] / best["onnxruntime"]
    spread = max(max(v) / min(v) for v in times.values())
    return {"choice": "onnxruntime" if speedup >= MIN_SPEEDUP else "torch", "speedup": round(speedup, 3),
            "torch_ms": round(1000 * best["torch"], 2), "onnxruntime_ms": round(1000 * best["onnxruntime"], 2),
            "torch_precision": gen.precision, "batch": batch, "rounds": len(times["torch"]),
            "spread": round(spread, 2), "reliable": spread <= MAX_SPREAD,
            "seconds": round(time.perf_counter() - start, 2), "measured_at": time.strftime("%Y-%m-%dT%H:%M:%S%z")}


def runtime_cache_path() -> Path:
    """Where the runtime choices are kept: beside the precision calibration (``runtime.json``)."""
    return cache_path().with_name("runtime.json")


def _cache_key(gen: Generator, batch: int) -> str:
    import onnxruntime

    arch = json.dumps({k: getattr(gen.cfg, k) for k in ARCH_KEYS}, sort_keys=True)
    return " | ".join([_cpu_model(), " ".join(_simd_flags(cpu_flags())), f"torch {torch.__version__}",
                       f"onnxruntime {onnxruntime.__version__}", f"{torch.get_num_threads()} threads",
                       f"precision {gen.precision}", f"batch {batch}", f"face {gen.face is not None}",
                       hashlib.sha256(arch.encode()).hexdigest()[:16]])


def _read_cache() -> dict[str, dict]:
    path = runtime_cache_path()
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:
        log.warning("%s: unreadable runtime cache (%s); measuring again", path, exc)
        return {}
    entries = data.get("entries") if isinstance(data, dict) and data.get("version") == _CACHE_VERSION else None
    if not isinstance(entries, dict):
        return {}
    return {k: v for k, v in entries.items() if isinstance(v, dict) and v.get("choice") in ("torch", "onnxruntime")}


def _write_cache_entry(key: str, entry: dict) -> None:
    path = runtime_cache_path()
    entries = {**_read_cache(), key: entry}
    try:
        atomic_write_text(path, json.dumps({"version": _CACHE_VERSION, "entries": entries}, indent=2) + "\n")
    except OSError as exc:
        log.warning("%s: could not save the runtime choice (%s)", path, exc)


def describe_runtime(choice: dict | None) -> str:
    """One line saying which runtime runs the generator, at which precision, and for "auto" why."""
    if not choice:
        return "runtime: torch"
    line = f"runtime: {choice['runtime']} ({choice.get('precision', 'fp32')})"
    m = choice.get("measured")
    if m:
        line += (f", chosen by measurement: ONNX Runtime {m['onnxruntime_ms']:.1f} ms, PyTorch {m['torch_ms']:.1f} ms "
                 f"per batch of {m['batch']} ({m['speedup']:.2f}x; it needs {MIN_SPEEDUP}x)")
    return line
