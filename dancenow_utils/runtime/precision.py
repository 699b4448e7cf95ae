"""Numeric precision for training and inference: validate the ``amp`` option, choose a precision for this machine,
and apply it with autocast.

``amp`` takes one of :data:`PRECISIONS`; the legacy ``"off"`` is accepted as a synonym of ``"fp32"`` (configs
saved before ``"fp32"`` existed keep loading). :func:`resolve_precision` turns it into ``"fp32"``, ``"bf16"`` or
``"fp16"`` for a device:

- CUDA, ``"auto"``: bf16 on GPUs that support it natively (compute capability 8.0 and later: Ampere, Hopper...),
  else fp16 (which needs a gradient scaler: :func:`needs_grad_scaler`).
- CPU, ``"auto"``: bf16 only where bf16 autocast is measurably faster. CPUs with AMX-BF16 (Intel Sapphire Rapids
  and later) run it about twice as fast: bf16. CPUs without bf16 instructions (no ``avx512_bf16``, no AMX) emulate
  it, up to 9x slower: fp32. In between (``avx512_bf16`` without AMX, e.g. AMD Zen 4; Arm ``bf16``) a short
  calibration (a small pix2pixHD-shaped generator and discriminator, forward and backward, fp32 and bf16
  interleaved, on one thread, under a second) decides, bf16 needing a speed-up of at least :data:`MIN_SPEEDUP`.
  The answer is cached in ``$DANCENOW_CACHE/precision.json`` (default ``~/.cache/dancenow/precision.json``),
  keyed by CPU model, SIMD flags, torch version and thread count, so each machine measures once (a measurement
  visibly disturbed by other processes is used but not cached).
- Setting ``DANCENOW_PRECISION=fp32|bf16|fp16`` forces what ``"auto"`` resolves to (tests, odd machines).
- Explicit ``"fp16"`` on a CPU is an error; explicit ``"bf16"`` on a CPU without bf16 instructions works but warns
  that it is slow.

What stays in fp32: autocast runs the matrix multiplies and convolutions in the low precision and leaves the
parameters alone, so the master weights, their gradients and the optimiser state stay fp32. Losses are computed
in fp32: callers apply ``.float()`` to network outputs before a loss (or compute the loss outside the autocast
block), so small differences (feature matching, LSGAN near its optimum) do not lose their low bits.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import platform
import time
import warnings
from contextlib import AbstractContextManager
from pathlib import Path

import torch
from torch import nn

from dancenow_utils.io_utils import atomic_write_text

log = logging.getLogger("dancenow")

PRECISIONS = ("auto", "fp32", "bf16", "fp16")
LEGACY_AMP = {"off": "fp32"}  # values older configs used, and what they mean now
RESOLVED = ("fp32", "bf16", "fp16")
DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}
MIN_SPEEDUP = 1.15  # bf16 must beat fp32 by this factor in the calibration to be chosen on a CPU
MAX_SPREAD = 1.5  # slowest / fastest calibration round above this: disturbed by other processes, not cached
ENV_FORCE = "DANCENOW_PRECISION"
ENV_CACHE = "DANCENOW_CACHE"
CPUINFO = Path("/proc/cpuinfo")
_SIMD_PREFIXES = ("avx2", "avx512", "amx", "bf16", "sve")  # the flags describe_cpu() shows (x86 and Arm)
_CACHE_VERSION = 1


def validate_amp(value: str) -> str:
    """Return the canonical form of an ``amp`` value (case-insensitive; ``"off"`` becomes ``"fp32"``)."""
    canon = value.strip().lower() if isinstance(value, str) else None
    canon = LEGACY_AMP.get(canon, canon)
    if canon not in PRECISIONS:
        raise ValueError(f"amp={value!r} is not valid; choose one of {', '.join(map(repr, PRECISIONS))} "
                         f"('off' is accepted as 'fp32')")
    return canon


def resolve_precision(amp: str, device: torch.device) -> str:
    """The precision (``"fp32"``, ``"bf16"`` or ``"fp16"``) to train and infer with for ``amp`` on ``device``."""
    device = torch.device(device)
    amp = validate_amp(amp)
    if amp == "auto":
        forced = os.environ.get(ENV_FORCE, "").strip()
        if forced and forced.lower() != "auto":
            try:
                amp = validate_amp(forced)
            except ValueError:
                raise ValueError(f"environment variable {ENV_FORCE}={forced!r} is not valid; set it to one of "
                                 f"{', '.join(RESOLVED)} or unset it") from None
            log.info("amp='auto' forced to %s by %s", amp, ENV_FORCE)
    if amp == "auto":
        choice = _auto_choice(device)
        log.info("amp='auto' on %s: %s", device, choice)
        return choice
    _check_explicit(amp, device)
    return amp


def available_precisions(device: torch.device) -> list[str]:
    """The precisions ``device`` runs natively: fp32 always; bf16 on CPUs with bf16 instructions and on GPUs of
    compute capability 8.0 and later; fp16 on every CUDA GPU. (For benchmarks: what is worth timing here.)"""
    device = torch.device(device)
    if device.type == "cuda":
        return ["fp32"] + (["bf16"] if torch.cuda.get_device_capability(device) >= (8, 0) else []) + ["fp16"]
    if device.type == "cpu" and _has_bf16_instructions(cpu_flags()):
        return ["fp32", "bf16"]
    return ["fp32"]


def _auto_choice(device: torch.device) -> str:
    if device.type == "cuda":
        return "bf16" if torch.cuda.get_device_capability(device) >= (8, 0) else "fp16"
    if device.type == "cpu":
        return _cpu_auto_choice()
    return "fp32"  # other backends (mps, xpu...): not measured, stay safe


def _check_explicit(precision: str, device: torch.device) -> None:
    if device.type == "cpu" and precision == "fp16":
        raise ValueError("amp='fp16' needs a CUDA GPU; on a CPU use amp='bf16', 'fp32' or 'auto'")
    if device.type == "cpu" and precision == "bf16" and not _has_bf16_instructions(cpu_flags()):
        warnings.warn("amp='bf16' on a CPU without bf16 instructions (no avx512_bf16/amx_bf16): it is emulated "
                      "and usually several times slower than fp32; amp='auto' picks the faster one", stacklevel=3)
    if device.type == "cuda" and precision == "bf16" and torch.cuda.get_device_capability(device) < (8, 0):
        warnings.warn("amp='bf16' on a GPU older than compute capability 8.0 is emulated and slow; "
                      "amp='auto' uses fp16 there", stacklevel=3)


def autocast(device: torch.device, precision: str) -> AbstractContextManager:
    """A context that runs ops in ``precision`` on ``device`` (a no-op for ``"fp32"``)."""
    device = torch.device(device)
    _check_resolved(precision)
    if precision == "fp32":
        return contextlib.nullcontext()
    if device.type == "cpu" and precision == "fp16":
        raise ValueError("fp16 autocast needs a CUDA GPU; on a CPU use 'bf16' or 'fp32'")
    return torch.autocast(device_type=device.type, dtype=DTYPES[precision])


def needs_grad_scaler(device: torch.device, precision: str) -> bool:
    """fp16 gradients underflow without loss scaling; bf16 has fp32's exponent range and needs none."""
    _check_resolved(precision)
    return torch.device(device).type == "cuda" and precision == "fp16"


def _check_resolved(precision: str) -> None:
    if precision not in RESOLVED:
        raise ValueError(f"precision={precision!r}: expected one of {', '.join(RESOLVED)}; turn an amp value "
                         f"such as 'auto' into one with resolve_precision(amp, device)")


# --- CPU capability -----------------------------------------------------------------------------------------------

def _cpuinfo_field(names: tuple[str, ...]) -> str:
    """The first value of any of ``names`` in /proc/cpuinfo ("" where there is none, e.g. macOS or Windows)."""
    try:
        text = CPUINFO.read_text(errors="replace")
    except OSError:
        return ""
    for line in text.splitlines():
        key, sep, value = line.partition(":")
        if sep and key.strip().lower() in names:
            return value.strip()
    return ""


def cpu_flags() -> list[str]:
    """This CPU's feature flags as the kernel reports them (x86 ``flags``, Arm ``Features``); [] if unknown."""
    return _cpuinfo_field(("flags", "features")).split()


def _cpu_model() -> str:
    return _cpuinfo_field(("model name",)) or platform.processor() or platform.machine() or "unknown CPU"


def _simd_flags(flags: list[str]) -> list[str]:
    return sorted({f for f in flags if f.startswith(_SIMD_PREFIXES)})


def describe_cpu() -> str:
    """CPU model and the SIMD flags that decide training speed (avx2, avx512*, amx*), for benchmark reports."""
    simd = _simd_flags(cpu_flags())
    return f"{_cpu_model()} ({' '.join(simd) if simd else 'no AVX2/AVX-512/AMX flags'})"


def _has_bf16_instructions(flags: list[str]) -> bool:
    return bool({"avx512_bf16", "amx_bf16", "bf16"} & set(flags))


def _cpu_auto_choice() -> str:
    flags = cpu_flags()
    if "amx_bf16" in flags:
        return "bf16"
    if not _has_bf16_instructions(flags):
        return "fp32"  # no bf16 instructions: emulated bf16 is several times slower
    key = _cache_key(flags)
    entry = _read_cache().get(key)
    if entry is None:
        entry = calibrate_cpu_bf16()
        if entry.get("reliable", True):
            _write_cache_entry(key, entry)
        else:
            log.info("bf16 calibration disturbed by other processes (rounds %.1fx apart); using %s without "
                     "caching it", entry.get("spread", 0.0), entry["choice"])
    return entry["choice"]


# --- calibration --------------------------------------------------------------------------------------------------

def _calibration_nets(c: int = 32) -> tuple[nn.Module, nn.Module]:
    """A small generator (stem, down, residual block, up, tanh) and PatchGAN discriminator, pix2pixHD-shaped."""
    def norm_relu(ch: int) -> list[nn.Module]:
        return [nn.InstanceNorm2d(ch), nn.ReLU(True)]

    G = nn.Sequential(
        nn.ReflectionPad2d(3), nn.Conv2d(3, c, 7), *norm_relu(c),
        nn.Conv2d(c, 2 * c, 3, 2, 1), *norm_relu(2 * c),
        nn.ReflectionPad2d(1), nn.Conv2d(2 * c, 2 * c, 3), *norm_relu(2 * c),
        nn.ConvTranspose2d(2 * c, c, 3, 2, 1, output_padding=1), *norm_relu(c),
        nn.ReflectionPad2d(3), nn.Conv2d(c, 3, 7), nn.Tanh())
    D = nn.Sequential(
        nn.Conv2d(6, c, 4, 2, 2), nn.LeakyReLU(0.2, True),
        nn.Conv2d(c, 2 * c, 4, 2, 2), nn.InstanceNorm2d(2 * c), nn.LeakyReLU(0.2, True),
        nn.Conv2d(2 * c, 1, 4, 1, 2))
    return G, D


def calibrate_cpu_bf16(size: int = 96, rounds: int = 7, budget_s: float = 1.0) -> dict:
    """Time one forward+backward of a small G and D in fp32 and under bf16 autocast, interleaved; return the
    fastest time of each, the speed-up and the choice (bf16 if it is at least :data:`MIN_SPEEDUP` times faster).

    Runs on one thread: the bf16/fp32 ratio is a property of the core's instructions, and a single thread is not
    stalled at every parallel region when other processes hold the other cores (two threads on two busy cores
    measured 0.17x once, against 1.6x idle). The fastest of the rounds is the least disturbed. ``reliable`` is
    False when the rounds still disagree widely (more than :data:`MAX_SPREAD` between fastest and slowest): the
    caller then uses the answer without caching it. Leaves the caller's random state and thread count alone.
    Stops once ``budget_s`` seconds have passed (after at least 3 rounds): about 1 s on a busy 2-core AMD EPYC.
    """
    start = time.perf_counter()
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with torch.random.fork_rng(devices=[]), torch.enable_grad():
            times = _time_calibration(size, rounds, start + budget_s)
    finally:
        torch.set_num_threads(threads)
    fp32, bf16 = min(times["fp32"]), min(times["bf16"])
    speedup = fp32 / bf16
    spread = max(max(t) / min(t) for t in times.values())
    return {"choice": "bf16" if speedup >= MIN_SPEEDUP else "fp32", "speedup": round(speedup, 3),
            "fp32_ms": round(1000 * fp32, 2), "bf16_ms": round(1000 * bf16, 2), "rounds": len(times["fp32"]),
            "spread": round(spread, 2), "reliable": spread <= MAX_SPREAD,
            "seconds": round(time.perf_counter() - start, 2), "cpu": describe_cpu(),
            "measured_at": time.strftime("%Y-%m-%dT%H:%M:%S%z")}


def _time_calibration(size: int, rounds: int, deadline: float) -> dict[str, list[float]]:
    torch.manual_seed(0)
    G, D = _calibration_nets()
    A = torch.rand(1, 3, size, size) * 2 - 1
    B = torch.rand(1, 3, size, size) * 2 - 1

    def step(precision: str) -> float:
        t = time.perf_counter()
        with autocast(torch.device("cpu"), precision):
            fake = G(A)
            pred = D(torch.cat([A, fake], 1))
        loss = pred.float().square().mean() + (fake.float() - B).abs().mean()
        loss.backward()
        G.zero_grad(set_to_none=True)
        D.zero_grad(set_to_none=True)
        return time.perf_counter() - t

    for p in ("fp32", "bf16"):  # warm-up: oneDNN builds its kernels on first use
        step(p)
    times: dict[str, list[float]] = {"fp32": [], "bf16": []}
    for r in range(rounds):
        for p in (("fp32", "bf16") if r % 2 == 0 else ("bf16", "fp32")):
            times[p].append(step(p))
        if r >= 2 and time.perf_counter() > deadline:
            break
    return times


# --- cache --------------------------------------------------------------------------------------------------------

def cache_path() -> Path:
    """Where calibration results are kept: ``$DANCENOW_CACHE/precision.json`` or
    ``~/.cache/dancenow/precision.json``."""
    root = os.environ.get(ENV_CACHE)
    return (Path(root).expanduser() if root else Path.home() / ".cache" / "dancenow") / "precision.json"


def _cache_key(flags: list[str]) -> str:
    return " | ".join([_cpu_model(), " ".join(_simd_flags(flags)), f"torch {torch.__version__}",
                       f"{torch.get_num_threads()} threads"])


def _read_cache() -> dict[str, dict]:
    """The cached entries; a missing, unreadable or malformed file counts as empty (it is re-measured)."""
    path = cache_path()
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:
        log.warning("%s: unreadable precision cache (%s); measuring again", path, exc)
        return {}
    entries = data.get("entries") if isinstance(data, dict) and data.get("version") == _CACHE_VERSION else None
    if not isinstance(entries, dict):
        log.warning("%s: unexpected precision cache contents; measuring again", path)
        return {}
    return {k: v for k, v in entries.items() if isinstance(v, dict) and v.get("choice") in RESOLVED}


def _write_cache_entry(key: str, entry: dict) -> None:
    path = cache_path()
    entries = _read_cache()
    entries[key] = entry
    try:
        atomic_write_text(path, json.dumps({"version": _CACHE_VERSION, "entries": entries}, indent=2) + "\n")
    except OSError as exc:  # read-only home, full disk: the choice still holds for this process
        log.warning("%s: could not save the precision calibration (%s); set %s to a writable folder",
                    path, exc, ENV_CACHE)


__all__ = ["MIN_SPEEDUP", "PRECISIONS", "autocast", "available_precisions", "cache_path", "calibrate_cpu_bf16",
           "cpu_flags", "describe_cpu", "needs_grad_scaler", "resolve_precision", "validate_amp"]
