"""CUDA code paths on a machine without a GPU (issue 21): CUDA's calls stubbed, NCCL emulated by a gloo backend that
serves only CUDA tensors. ``tests/test_cuda.py`` runs the same paths for real where a GPU exists."""

from __future__ import annotations

import gc
import os
import subprocess
import sys
import textwrap
import weakref

import pytest
import torch
import torch.distributed as dist

from dancenow_utils.checkpoint import load_checkpoint
from dancenow_utils.config import make_config
from dancenow_utils.runtime import device as device_module
from dancenow_utils.runtime.precision import autocast, available_precisions, needs_grad_scaler, resolve_precision
from dancenow_utils.training import stages
from dancenow_utils.training.build import Process
from dancenow_utils.training.stages import build_trainer
from dancenow_utils.training.trainer import Trainer


def fake_cuda(monkeypatch, count: int = 1, current: int = 0, capability: tuple[int, int] = (8, 0)) -> list[int]:
    """Make this process believe it has ``count`` GPUs; returns the indices ``torch.cuda.set_device`` was given."""
    calls: list[int] = []
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: count)
    monkeypatch.setattr(torch.cuda, "current_device", lambda: current)
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device=None: capability)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda including_emulation=True: capability >= (8, 0))
    monkeypatch.setattr(torch._C, "_cuda_setDevice", calls.append, raising=False)
    monkeypatch.delenv("LOCAL_RANK", raising=False)
    return calls


def test_auto_and_cuda_are_indexed_devices_that_set_device_accepts(monkeypatch):
    calls = fake_cuda(monkeypatch, count=2, current=1)
    for name in ("auto", "cuda"):
        dev = device_module.resolve_device(name)
        device_module.prepare_device(dev)  # torch.cuda.set_device refuses a CUDA device without an index
        assert dev == torch.device("cuda", 1)
    assert device_module.resolve_device("cuda:0") == torch.device("cuda", 0)
    assert calls == [1, 1]


@pytest.mark.parametrize("count,local_rank,index", [(1, "1", 0), (2, "1", 1), (4, "3", 3)])
def test_local_rank_maps_onto_the_gpus_this_process_sees(monkeypatch, count, local_rank, index):
    """One GPU per task (CUDA_VISIBLE_DEVICES): every process sees its GPU as cuda:0 whatever its LOCAL_RANK."""
    fake_cuda(monkeypatch, count=count)
    monkeypatch.setenv("LOCAL_RANK", local_rank)
    backends = []
    monkeypatch.setattr(dist, "is_initialized", lambda: False)
    monkeypatch.setattr(dist, "init_process_group", lambda backend=None, **kw: backends.append(backend))
    monkeypatch.setenv("WORLD_SIZE", str(int(local_rank) + 1))
    monkeypatch.setenv("RANK", local_rank)
    process = Process.start(make_config("tiny"))
    assert process.device == torch.device("cuda", index)
    assert len(backends) == 1 and "cpu" in backends[0]  # control collectives need a backend for CPU tensors


def test_more_processes_than_gpus_is_refused(monkeypatch):
    fake_cuda(monkeypatch, count=2)
    monkeypatch.setenv("LOCAL_RANK", "2")
    with pytest.raises(RuntimeError, match="sees 2 GPU"):
        device_module.resolve_device("auto")


CUDA_RANK_SCRIPT = textwrap.dedent('''
    import os, sys, torch, torch.distributed as dist
    from pathlib import Path
    torch.cuda.is_available = lambda: True
    torch.cuda.device_count = lambda: 1            # one GPU per task: each rank sees its own as cuda:0
    torch.cuda.current_device = lambda: 0
    torch.cuda.get_device_capability = lambda device=None: (7, 5)   # a T4
    torch._C._cuda_setDevice = lambda index: None
    real_init = dist.init_process_group

    def emulated_init(backend=None, **kw):
        # gloo stands in for NCCL and, like NCCL, serves CUDA tensors only
        backend = ",".join(p.replace("nccl", "gloo") for p in backend.split(",")) if ":" in backend else backend
        return real_init("cuda:gloo" if backend == "nccl" else backend, **kw)

    dist.init_process_group = emulated_init
    from dancenow_utils.config import make_config
    from dancenow_utils.training.build import Process
    from dancenow_utils.training.trainer import Trainer
    cfg = make_config("tiny", {"amp": "auto"})
    tr = Trainer.__new__(Trainer)
    tr.iteration, tr.dir = 0, Path("run")
    rank = int(os.environ["RANK"])
    try:
        process = Process.start(cfg)  # the device from LOCAL_RANK, the process group, the device's settings
        tr._agree_on_resume()
        print(f"rank {rank}: {process.device} {dist.get_backend()} {process.precision(cfg)}", flush=True)
    except Exception as exc:
        print(f"rank {rank}: {type(exc).__name__}: {exc}", flush=True)
''')


def _torchrun(tmp_path, port: int, script: str, *args, timeout: float = 180) -> str:
    path = tmp_path / "ranks.py"
    path.write_text(script)
    env = {k: v for k, v in os.environ.items() if k != "DANCENOW_PRECISION"}
    env["OMP_NUM_THREADS"] = "1"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", str(port),
           str(path), *map(str, args)]
    res = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout)
    return res.stdout + res.stderr[-2000:]


def test_two_ranks_whose_backend_serves_only_cuda(tmp_path):
    """The start of every torchrun on GPUs: device, process group, resume agreement, precision from rank 0."""
    out = _torchrun(tmp_path, 29571, CUDA_RANK_SCRIPT)
    for rank in (0, 1):
        assert f"rank {rank}: cuda:0 cpu:gloo,cuda:gloo fp16" in out, out


def test_checkpoint_written_on_a_gpu_resumes_on_the_cpu(tiny_dataset, tmp_path, monkeypatch):
    cfg = make_config("tiny", {"max_dataset_size": 4, "save_latest_freq": 2})
    build_trainer(cfg, tiny_dataset / "dataset", "g", tmp_path, resume=False, progress=False).train(max_iterations=2)
    path = tmp_path / "g" / "latest.pth"
    ckpt = torch.load(path, map_location="cpu", weights_only=True)
    ckpt["rng"]["cuda"] = [torch.zeros(16, dtype=torch.uint8)] * 2  # a two-GPU machine's CUDA RNG states
    with monkeypatch.context() as m:  # every storage written as if it lived on cuda:1
        m.setattr(torch.serialization, "location_tag", lambda storage: "cuda:1")
        torch.save(ckpt, path)
    if not torch.cuda.is_available():
        with pytest.raises(RuntimeError, match="CUDA"):
            torch.load(path, weights_only=True)  # the file really asks for a GPU
    assert load_checkpoint(path)["G"]["model.1.weight"].device.type == "cpu"
    resumed = build_trainer(cfg, tiny_dataset / "dataset", "g", tmp_path, resume=True, progress=False)
    assert resumed.iteration == 2
    resumed.train(max_iterations=3)
    assert resumed.iteration == 3


@pytest.mark.parametrize("capability,precision,scaler", [((7, 5), "fp16", True), ((8, 0), "bf16", False),
                                                          ((9, 0), "bf16", False)])
def test_precision_and_grad_scaler_per_compute_capability(monkeypatch, capability, precision, scaler):
    fake_cuda(monkeypatch, capability=capability)
    monkeypatch.delenv("DANCENOW_PRECISION", raising=False)
    dev = device_module.resolve_device("auto")
    assert resolve_precision("auto", dev) == precision
    assert needs_grad_scaler(dev, precision) is scaler
    assert ("bf16" in available_precisions(dev)) == (capability >= (8, 0))
    with autocast(dev, precision) as ctx:
        assert ctx.fast_dtype == {"fp16": torch.float16, "bf16": torch.bfloat16}[precision]
    assert torch.amp.GradScaler("cuda", enabled=scaler).is_enabled() is scaler


def test_each_stage_is_freed_before_the_next(tiny_dataset, tmp_path, monkeypatch):
    cfg = make_config("tiny", {"max_dataset_size": 4, "niter": 1, "niter_decay": 0, "face_niter": 1})
    refs: list[tuple[str, weakref.ref]] = []
    real = stages.train_stage

    def watched(stage, *args, **kwargs):
        alive = [what for what, ref in refs if ref() is not None]
        assert not alive, f"still alive when stage {stage!r} starts: {alive}"
        trainer = real(stage, *args, **kwargs)
        refs.extend([(f"{stage} model", weakref.ref(trainer.model)),
                     (f"{stage} G", weakref.ref(trainer.model.nets["G"])),
                     (f"{stage} optimiser", weakref.ref(trainer.model.optimizers["G"])),
                     (f"{stage} loader", weakref.ref(trainer.loader)), (f"{stage} trainer", weakref.ref(trainer))])
        return trainer

    monkeypatch.setattr(stages, "train_stage", watched)
    results = stages.train_stages("all", cfg, tiny_dataset / "dataset", "m", tmp_path, progress=False)
    assert list(results) == ["global", "face"] and all(r.iteration > 0 for r in results.values())
    assert results["face"].run.generator().exists() and "face stage" in results["face"].description
    gc.collect()
    assert [what for what, ref in refs if ref() is not None] == []


def test_only_the_newest_epoch_checkpoints_are_kept_and_the_cost_is_printed(tiny_dataset, tmp_path, capsys):
    cfg = make_config("tiny", {"max_dataset_size": 4, "batch_size": 4, "niter": 5, "niter_decay": 0,
                               "save_epoch_freq": 1, "keep_epoch_checkpoints": 2})
    tr = build_trainer(cfg, tiny_dataset / "dataset", "keep", tmp_path, resume=False, progress=False)
    out = capsys.readouterr().out
    assert "epoch_<n>_G.pth" in out and "x 2 kept of 5 written (keep_epoch_checkpoints=2)" in out
    (tr.dir / "epoch_1.pth").write_bytes(b"an older run's full numbered checkpoint")
    tr.train()
    assert sorted(p.name for p in tr.dir.glob("epoch_*")) == ["epoch_4_G.pth", "epoch_5_G.pth"]
    assert make_config("edn_local").keep_epoch_checkpoints == make_config("edn_global").keep_epoch_checkpoints == 4
    assert make_config("demo").keep_epoch_checkpoints == 0  # small runs keep every one


def test_colab_is_told_to_save_by_time(tiny_dataset, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "google.colab", object())
    monkeypatch.setattr("dancenow_utils.training.trainer.payload_bytes", lambda payload: 10**9)  # EDN-sized checkpoints
    tr = build_trainer(make_config("tiny", {"max_dataset_size": 4}), tiny_dataset / "dataset", "c", tmp_path,
                 resume=False, progress=False)
    assert "save_latest_seconds" in tr.disk_plan()


def _shapes(cfg):
    one = (3, cfg.height, cfg.width)
    return {"A": one, "B": one, **({"A_next": one, "B_next": one} if cfg.temporal else {})}


def test_memory_estimate_grows_with_batch_and_size():
    from dancenow_utils.training.memory import estimate_training_memory

    small, big = make_config("tiny", {"batch_size": 1}), make_config("tiny", {"batch_size": 4})
    e1, e4 = (estimate_training_memory(c, "fp32", _shapes(c)) for c in (small, big))
    assert e1.trained_params == e4.trained_params > 1_000_000
    assert 3.5 < e4.activations / e1.activations < 4.5
    wide = make_config("tiny", {"batch_size": 1, "width": 128, "height": 128})
    assert 3.5 < estimate_training_memory(wide, "fp32", _shapes(wide)).activations / e1.activations < 4.5
    assert estimate_training_memory(small, "fp16", _shapes(small)).activations * 2 == e1.activations
    local = make_config("edn_local")
    e = estimate_training_memory(local, "fp16", _shapes(local), vgg=True)
    assert e.frozen_params > 10_000_000 and 4e9 < e.total < 15e9  # about 7.6 GB: fits a 15 GB T4 at batch 1


def test_a_run_that_cannot_fit_is_refused_with_advice(monkeypatch):
    from dancenow_utils.training.memory import GPUMemoryError, check_fits, estimate_training_memory

    fake_cuda(monkeypatch, capability=(7, 5))
    cfg = make_config("edn_local", {"batch_size": 4})
    estimate = estimate_training_memory(cfg, "fp16", _shapes(cfg), vgg=True)
    monkeypatch.setattr(torch.cuda, "mem_get_info", lambda device=None: (int(estimate.total_for(2) * 1.05), 16e9))
    with pytest.raises(GPUMemoryError, match=r"batch_size': 2.*'width': 512, 'height': 256.*preset='edn_global'"):
        check_fits(estimate, torch.device("cuda", 0), cfg, "fp16")
    warned = check_fits(estimate, torch.device("cuda", 0), cfg.with_overrides({"memory_check": False}), "fp16")
    assert "WARNING" in warned and "batch_size': 2" in warned
    monkeypatch.setattr(torch.cuda, "mem_get_info", lambda device=None: (40e9, 80e9))
    assert "40.0 GB free of 80.0 GB" in check_fits(estimate, torch.device("cuda", 0), cfg, "fp16")


def test_out_of_memory_during_training_becomes_advice(tiny_dataset, tmp_path, monkeypatch):
    tr = build_trainer(make_config("tiny", {"max_dataset_size": 4}), tiny_dataset / "dataset", "oom", tmp_path,
                 resume=False, progress=False)

    def out_of_memory(batch, check_finite=True):
        raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")

    monkeypatch.setattr(tr.model, "train_step", out_of_memory)
    with pytest.raises(torch.cuda.OutOfMemoryError, match=r"iteration 1 \(CUDA out of memory.*batch_size': 1"):
        tr.train(max_iterations=2)


def test_face_boxes_stay_on_the_host(tiny_dataset, tmp_path):
    main = make_config("tiny", {"max_dataset_size": 4})
    build_trainer(main, tiny_dataset / "dataset", "m", tmp_path, resume=False, progress=False).train(max_iterations=1)
    face = build_trainer(main, tiny_dataset / "dataset", "m/face", tmp_path, resume=False, progress=False, model="face",
                   main_name="m")
    moved = face.to_device(face.fixed)
    assert moved["box"] is face.fixed["box"] and face.model.host_keys == ("box",)


def test_finite_checks_every_few_steps_still_stop_before_a_save(tiny_dataset, tmp_path):
    cfg = make_config("tiny", {"max_dataset_size": 16, "check_freq": 4, "save_latest_freq": 100})
    tr = build_trainer(cfg, tiny_dataset / "dataset", "nan", tmp_path, resume=False, progress=False)
    assert tr.check_every() == 4
    with torch.no_grad():
        for p in tr.model.G.parameters():
            p.fill_(float("nan"))
    with pytest.raises(FloatingPointError, match=r"non-finite loss .* iteration 4: training stopped\. No checkpoint"):
        tr.train(max_iterations=8)
    assert tr.iteration == 3 and not (tmp_path / "nan" / "latest.pth").exists()
    assert make_config("tiny").check_freq == 0 and Trainer.check_every(tr) == 4


STOP_SCRIPT = textwrap.dedent('''
    import os, sys
    from dancenow_utils.config import make_config
    from dancenow_utils.training.trainer import Trainer
    from dancenow_utils.training.stages import build_trainer
    data, ck = sys.argv[1:3]
    rank = int(os.environ["RANK"])
    cfg = make_config("tiny", {"max_dataset_size": 16, "threads": 1, "save_latest_freq": 100})
    tr = build_trainer(cfg, data, "stop", ck, resume=False, progress=False)
    tr.train(max_seconds=0.0 if rank == 1 else None)   # only rank 1 runs out of time
    print(f"rank {rank}: stopped at iteration {tr.iteration}", flush=True)
    import torch.distributed as dist
    dist.barrier()
    dist.destroy_process_group()
''')


def test_a_time_limit_on_one_rank_stops_every_rank(tiny_dataset, tmp_path):
    out = _torchrun(tmp_path, 29572, STOP_SCRIPT, tiny_dataset / "dataset", tmp_path, timeout=240)
    assert "rank 0: stopped at iteration 1" in out and "rank 1: stopped at iteration 1" in out, out
    assert load_checkpoint(tmp_path / "stop" / "latest.pth")["iteration"] == 1


def _gpu_speed(monkeypatch):
    from tests.conftest import ROOT

    monkeypatch.syspath_prepend(str(ROOT / "bench"))
    import gpu_speed

    return gpu_speed


def test_gpu_speed_bench_dry_runs_on_the_cpu(monkeypatch, capsys):
    rows = _gpu_speed(monkeypatch).main(["--device", "cpu", "--presets", "tiny", "--amp", "fp32", "--steps", "1",
                                         "--warmup", "0", "--vgg-weights", "/nonexistent/vgg19.pth"])
    assert [(r["preset"], r["precision"], r["vgg"], r["status"]) for r in rows] == [("tiny", "fp32", False, "ok")]
    out = capsys.readouterr().out
    assert "not found; timing the step without the VGG loss" in out and "| tiny | 64x64 | 2 | fp32 |" in out


def test_gpu_speed_reports_out_of_memory_as_a_row(monkeypatch):
    gpu_speed = _gpu_speed(monkeypatch)
    real = gpu_speed.Pix2PixHD.train_step

    def step(self, batch, check_finite=True):
        if self.cfg.batch_size > 2:
            raise torch.cuda.OutOfMemoryError("CUDA out of memory")
        return real(self, batch, check_finite)

    monkeypatch.setattr(gpu_speed.Pix2PixHD, "train_step", step)
    monkeypatch.setattr(gpu_speed, "make_config", lambda preset, o: make_config("tiny", {
        **o, "batch_size": 4 if preset == "big" else 2}))
    rows = [gpu_speed.speed(p, "fp32", 1, torch.device("cpu"), warmup=0) for p in ("big", "tiny")]
    assert [r["status"] for r in rows] == ["out of memory", "ok"] and rows[0]["it_per_s"] is None
    assert rows[0]["estimate_gb"] > 0 and "out of memory" in gpu_speed.table(rows)


@pytest.mark.parametrize("netG", ["global", "local"])
def test_fp16s_gradient_scaler_takes_the_same_steps(monkeypatch, netG):
    """A GPU without bf16 trains in fp16 through the gradient scaler (G's and D's backward kept apart, each into
    its own parameters; a local enhancer's global branch held fixed). Here the scaler runs on the CPU in fp32:
    scaling by a power of two and unscaling is exact, so its steps must equal the unscaled ones, and the fixed
    branch must not move."""
    from dancenow_utils.models import base
    from dancenow_utils.models.pix2pixhd import Pix2PixHD

    cfg = make_config("tiny", {"vgg_loss": "off", "amp": "fp32", "use_l1": True, "netG": netG,
                               "niter_fix_global": 1, "n_blocks_local": 1, "ema_decay": 0.99})
    g = torch.Generator().manual_seed(1)
    batches = [{k: torch.rand(2, 3, 64, 64, generator=g) * 2 - 1 for k in ("A", "B")} for _ in range(3)]
    models = []
    for scaled in (False, True):
        monkeypatch.setattr(base, "needs_grad_scaler", lambda device, precision, scaled=scaled: scaled)
        torch.manual_seed(0)
        model = Pix2PixHD(cfg, torch.device("cpu"), vgg=False)
        assert model.scaler.is_enabled() is scaled
        model.set_epoch(0)
        start = {k: v.clone() for k, v in model.G.state_dict().items()}
        for batch in batches:
            model.train_step(batch)
        models.append((model, start))
    (plain, start), (scaled, _) = models
    assert scaled.scaler.get_scale() == 2.0 ** 16  # no step overflowed, so the scale was never lowered
    for key in ("G", "D"):
        for (name, p), q in zip(plain.nets[key].named_parameters(), scaled.nets[key].parameters()):
            assert torch.equal(p, q), f"{key}.{name}"
    for name, p in plain.G.named_parameters():
        moved = not torch.equal(p, start[name])
        assert moved is not (netG == "local" and name.startswith("global_net")), name
    for a, b in zip(plain.averaged["G"].values(), scaled.averaged["G"].values()):
        assert torch.equal(a, b)
