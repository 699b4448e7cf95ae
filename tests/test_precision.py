"""Precision choice: amp validation, CUDA/CPU auto choice, the calibration cache, autocast."""

from __future__ import annotations

import json
import warnings

import pytest
import torch

from dancenow_utils.runtime import precision

CPU = torch.device("cpu")
CUDA = torch.device("cuda")
AMD_ZEN4 = "fpu sse sse2 avx avx2 avx512f avx512bw avx512_bf16 avx512_vnni"
INTEL_SPR = "fpu sse sse2 avx avx2 avx512f avx512_bf16 amx_bf16 amx_tile amx_int8"
ZEN3 = "fpu sse sse2 avx avx2 fma"


@pytest.fixture(autouse=True)
def isolated(tmp_path, monkeypatch):
    """Each test gets its own cache folder and no forced precision."""
    monkeypatch.setenv("DANCENOW_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("DANCENOW_PRECISION", raising=False)


def fake_cpu(monkeypatch, tmp_path, flags: str, model: str = "Test CPU 9000") -> None:
    info = tmp_path / "cpuinfo"
    info.write_text(f"processor\t: 0\nmodel name\t: {model}\nflags\t\t: {flags}\n\nprocessor\t: 1\n")
    monkeypatch.setattr(precision, "CPUINFO", info)


def fake_calibration(monkeypatch, choice: str, reliable: bool = True) -> list[int]:
    calls: list[int] = []

    def calibrate() -> dict:
        calls.append(1)
        return {"choice": choice, "speedup": 1.5 if choice == "bf16" else 1.0, "reliable": reliable}

    monkeypatch.setattr(precision, "calibrate_cpu_bf16", calibrate)
    return calls


@pytest.mark.parametrize("value, expected", [("auto", "auto"), ("fp32", "fp32"), ("bf16", "bf16"),
                                             ("fp16", "fp16"), ("off", "fp32"), (" BF16 ", "bf16")])
def test_validate_amp_accepts_the_precisions_and_legacy_off(value, expected):
    assert precision.validate_amp(value) == expected


@pytest.mark.parametrize("value", ["on", "float16", "", None, True])
def test_validate_amp_rejects_others_naming_the_parameter_and_choices(value):
    with pytest.raises(ValueError, match=r"amp=.*'auto', 'fp32', 'bf16', 'fp16'"):
        precision.validate_amp(value)


@pytest.mark.parametrize("capability, expected", [((8, 0), "bf16"), ((9, 0), "bf16"), ((7, 5), "fp16"),
                                                  ((6, 1), "fp16")])
def test_cuda_auto_follows_compute_capability(monkeypatch, capability, expected):
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device=None: capability)
    assert precision.resolve_precision("auto", CUDA) == expected


def test_cuda_explicit_values_are_kept_and_old_gpu_bf16_warns(monkeypatch):
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device=None: (7, 0))
    assert precision.resolve_precision("fp16", CUDA) == "fp16"
    assert precision.resolve_precision("off", CUDA) == "fp32"
    with pytest.warns(UserWarning, match="compute capability 8.0"):
        assert precision.resolve_precision("bf16", CUDA) == "bf16"


def test_cpu_with_amx_picks_bf16_without_measuring(monkeypatch, tmp_path):
    fake_cpu(monkeypatch, tmp_path, INTEL_SPR)
    calls = fake_calibration(monkeypatch, "fp32")
    assert precision.resolve_precision("auto", CPU) == "bf16"
    assert calls == []


def test_cpu_without_bf16_instructions_picks_fp32_without_measuring(monkeypatch, tmp_path):
    fake_cpu(monkeypatch, tmp_path, ZEN3)
    calls = fake_calibration(monkeypatch, "bf16")
    assert precision.resolve_precision("auto", CPU) == "fp32"
    assert calls == []


def test_unknown_cpu_picks_fp32(monkeypatch, tmp_path):
    monkeypatch.setattr(precision, "CPUINFO", tmp_path / "absent")
    assert precision.cpu_flags() == []
    assert precision.resolve_precision("auto", CPU) == "fp32"


@pytest.mark.parametrize("measured", ["bf16", "fp32"])
def test_avx512_bf16_without_amx_is_measured_once_then_read_from_the_cache(monkeypatch, tmp_path, measured):
    fake_cpu(monkeypatch, tmp_path, AMD_ZEN4)
    calls = fake_calibration(monkeypatch, measured)
    assert precision.resolve_precision("auto", CPU) == measured
    assert precision.resolve_precision("auto", CPU) == measured
    assert len(calls) == 1
    data = json.loads(precision.cache_path().read_text())
    [(key, entry)] = data["entries"].items()
    assert "Test CPU 9000" in key and "avx512_bf16" in key and torch.__version__ in key
    assert entry["choice"] == measured


def test_a_disturbed_calibration_is_used_but_not_cached(monkeypatch, tmp_path):
    fake_cpu(monkeypatch, tmp_path, AMD_ZEN4)
    calls = fake_calibration(monkeypatch, "bf16", reliable=False)
    assert precision.resolve_precision("auto", CPU) == "bf16"
    assert precision.resolve_precision("auto", CPU) == "bf16"
    assert len(calls) == 2
    assert not precision.cache_path().exists()


def test_the_cache_is_keyed_by_thread_count(monkeypatch, tmp_path):
    fake_cpu(monkeypatch, tmp_path, AMD_ZEN4)
    calls = fake_calibration(monkeypatch, "bf16")
    threads = torch.get_num_threads()
    try:
        precision.resolve_precision("auto", CPU)
        torch.set_num_threads(threads + 1)
        precision.resolve_precision("auto", CPU)
    finally:
        torch.set_num_threads(threads)
    assert len(calls) == 2
    assert len(json.loads(precision.cache_path().read_text())["entries"]) == 2


@pytest.mark.parametrize("contents", ["{not json", "[1, 2]", '{"version": 1, "entries": 3}', ""])
def test_a_corrupt_cache_is_ignored_and_replaced(monkeypatch, tmp_path, contents):
    fake_cpu(monkeypatch, tmp_path, AMD_ZEN4)
    calls = fake_calibration(monkeypatch, "bf16")
    path = precision.cache_path()
    path.parent.mkdir(parents=True)
    path.write_text(contents)
    assert precision.resolve_precision("auto", CPU) == "bf16"
    assert len(calls) == 1
    assert json.loads(path.read_text())["entries"]  # rewritten as a valid cache


def test_the_environment_forces_the_auto_choice(monkeypatch, tmp_path):
    fake_cpu(monkeypatch, tmp_path, ZEN3)
    monkeypatch.setenv("DANCENOW_PRECISION", "bf16")
    with pytest.warns(UserWarning, match="without bf16 instructions"):
        assert precision.resolve_precision("auto", CPU) == "bf16"
    assert precision.resolve_precision("fp32", CPU) == "fp32"  # explicit values are not overridden
    monkeypatch.setenv("DANCENOW_PRECISION", "fp64")
    with pytest.raises(ValueError, match="DANCENOW_PRECISION='fp64'"):
        precision.resolve_precision("auto", CPU)
    monkeypatch.setenv("DANCENOW_PRECISION", "fp16")
    with pytest.raises(ValueError, match="needs a CUDA GPU"):
        precision.resolve_precision("auto", CPU)


def test_fp16_on_cpu_is_an_error_and_bf16_without_instructions_warns(monkeypatch, tmp_path):
    fake_cpu(monkeypatch, tmp_path, ZEN3)
    with pytest.raises(ValueError, match="amp='fp16' needs a CUDA GPU"):
        precision.resolve_precision("fp16", CPU)
    with pytest.warns(UserWarning, match="emulated"):
        assert precision.resolve_precision("bf16", CPU) == "bf16"
    fake_cpu(monkeypatch, tmp_path, AMD_ZEN4)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert precision.resolve_precision("bf16", CPU) == "bf16"
    assert precision.resolve_precision("off", CPU) == "fp32"


def test_autocast_bf16_runs_matmuls_in_bf16_on_cpu():
    a, b = torch.randn(8, 8), torch.randn(8, 8)
    with precision.autocast(CPU, "bf16"):
        assert (a @ b).dtype == torch.bfloat16
    with precision.autocast(CPU, "fp32"):
        assert (a @ b).dtype == torch.float32
        assert not torch.is_autocast_enabled("cpu")


def test_autocast_and_grad_scaler_reject_unresolved_values():
    with pytest.raises(ValueError, match="resolve_precision"):
        precision.autocast(CPU, "auto")
    with pytest.raises(ValueError, match="CUDA GPU"):
        precision.autocast(CPU, "fp16")
    with pytest.raises(ValueError, match="resolve_precision"):
        precision.needs_grad_scaler(CUDA, "auto")


def test_only_fp16_on_cuda_needs_a_grad_scaler():
    assert precision.needs_grad_scaler(CUDA, "fp16")
    assert not precision.needs_grad_scaler(CUDA, "bf16")
    assert not precision.needs_grad_scaler(CUDA, "fp32")
    assert not precision.needs_grad_scaler(CPU, "bf16")


@pytest.mark.parametrize("flags, expected", [(ZEN3, ["fp32"]), (AMD_ZEN4, ["fp32", "bf16"]),
                                             (INTEL_SPR, ["fp32", "bf16"])])
def test_available_precisions_on_cpu(monkeypatch, tmp_path, flags, expected):
    fake_cpu(monkeypatch, tmp_path, flags)
    assert precision.available_precisions(CPU) == expected


@pytest.mark.parametrize("capability, expected", [((8, 6), ["fp32", "bf16", "fp16"]), ((7, 5), ["fp32", "fp16"])])
def test_available_precisions_on_cuda(monkeypatch, capability, expected):
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device=None: capability)
    assert precision.available_precisions(CUDA) == expected


def test_describe_cpu_names_the_model_and_the_simd_flags(monkeypatch, tmp_path):
    fake_cpu(monkeypatch, tmp_path, INTEL_SPR, model="Intel(R) Xeon(R) Platinum 8480+")
    text = precision.describe_cpu()
    assert text.startswith("Intel(R) Xeon(R) Platinum 8480+")
    for flag in ("avx2", "avx512f", "avx512_bf16", "amx_bf16", "amx_tile"):
        assert flag in text
    assert "sse2" not in text and "fpu" not in text
    assert "amx_bf16" in precision.cpu_flags()


def test_the_real_calibration_reports_a_choice_and_leaves_random_state_and_threads_alone():
    torch.manual_seed(123)
    expected = torch.rand(3)
    threads = torch.get_num_threads()
    torch.manual_seed(123)
    result = precision.calibrate_cpu_bf16(size=32, rounds=3)
    assert torch.equal(torch.rand(3), expected)
    assert torch.get_num_threads() == threads
    assert isinstance(result["reliable"], bool) and result["spread"] >= 1.0
    assert result["choice"] in ("fp32", "bf16")
    assert result["rounds"] == 3 and result["fp32_ms"] > 0 and result["bf16_ms"] > 0
    assert result["choice"] == ("bf16" if result["speedup"] >= precision.MIN_SPEEDUP else "fp32")
