"""Export a trained character to ONNX: the generator (and its face stage) as files that run without PyTorch.

``export_generator("demo")`` writes ``results/demo_export/`` (:class:`~dancenow_utils.layout.ExportLayout`):

- ``model.onnx``: the generator with **named inputs** and a dynamic batch axis. A pose run takes ``pose``
  (``N x 3 x H x W``, float in [-1, 1], the stick figure as :func:`~dancenow_utils.data.datasets.to_tensor` makes
  it); a label-map run takes ``label`` (``N x 1 x H x W`` int64 class indices; the one-hot encoding is inside the
  graph) and, with instance maps, ``instance`` (int64 ids; the boundary map is inside the graph); a run with
  pix2pixHD's feature encoder also takes ``features`` (``N x feat_num x H x W``); the temporal model takes
  ``previous``, its own previous output (zeros before the first frame). The output ``frame`` is
  ``N x 3 x H x W`` in [-1, 1].
- ``face.onnx`` (runs with a face stage): the face stage as its own model, ``pose_face`` and ``face`` (the face
  box crops of the pose and of the generated frame) to ``corrected_face`` (the crop plus the predicted residual);
  pasting it back into the frame at the face box is left to the caller, as
  :class:`~dancenow_utils.models.inference.FaceCorrector` does.
- the drawing settings of the training poses, the image size, preset and architecture in each model's metadata
  (``metadata_props``, keys ``dancenow.*``);
- ``export.json``: the inputs, outputs, metadata and the check against PyTorch: every model is run by ONNX Runtime
  on held-out inputs and compared with the PyTorch generator in fp32 (the largest absolute difference on the
  [-1, 1] scale must stay within :data:`TOLERANCE`, or the export fails).

For pose runs the puppet page (:mod:`dancenow_utils.transfer.puppet_page`) is written into the same folder, so the
folder alone shows the character to anyone with a browser. Command line::

    python -m dancenow_utils.transfer.export demo [--which-epoch latest] [--no-page]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch
from torch import nn

from dancenow_utils.config import ARCH_KEYS, FACE_ARCH_KEYS, TrainConfig
from dancenow_utils.data.datasets import input_tensors, to_tensor
from dancenow_utils.io_utils import atomic_path, list_images, write_json
from dancenow_utils.layout import (
    DATASET_TEST,
    PARTS_DATASET_TEST,
    RESULTS,
    DatasetLayout,
    ExportLayout,
    ResultsLayout,
    RunLayout,
    checkpoint_tag,
)
from dancenow_utils.models.face import correct_faces
from dancenow_utils.models.generate import condition, generator_input, input_names
from dancenow_utils.models.inference import Generator, load_generator
from dancenow_utils.pose.face_box import face_box_side

if TYPE_CHECKING:
    import onnx
    import onnxruntime

TOLERANCE = 1e-3  # largest allowed |ONNX Runtime - PyTorch| on the [-1, 1] scale, fp32
OPSET = 18
FORMAT = 1  # of the dancenow.* metadata


class ExportError(ValueError):
    """A run that cannot be exported (no generator, a damaged checkpoint) or an export that fails its check."""


class NamedGenerator(nn.Module):
    """The generator with its input conditioning inside, taking the named inputs of :func:`input_names`."""

    def __init__(self, G: nn.Module, cfg: TrainConfig) -> None:
        super().__init__()
        self.G, self.cfg = G, cfg
        self.names = input_names(cfg)

    def forward(self, *inputs: torch.Tensor) -> torch.Tensor:
        named = dict(zip(self.names, inputs))
        cond = condition(self.cfg, named["label"], named.get("instance")) if self.cfg.label_nc else named["pose"]
        if "features" in named:
            cond = torch.cat([cond, named["features"]], 1)
        return self.G(generator_input(cond, named.get("previous"), self.cfg.temporal, self.cfg.output_nc))


class FaceStage(nn.Module):
    """The face stage: the generated face crop plus the residual the face generator predicts from both crops."""

    def __init__(self, G: nn.Module) -> None:
        super().__init__()
        self.G = G

    def forward(self, pose_face: torch.Tensor, face: torch.Tensor) -> torch.Tensor:
        return correct_faces(self.G, pose_face, face)


FACE_INPUTS = ["pose_face", "face"]


@dataclass
class ExportResult:
    """What :func:`export_generator` wrote and how close ONNX Runtime came to PyTorch."""

    dir: Path
    model: Path
    face_model: Path | None
    page: Path | None
    max_abs_diff: float
    face_max_abs_diff: float | None
    n_verified: int
    record: dict = field(default_factory=dict)

    def __str__(self) -> str:
        face = f"; face.onnx {self.face_max_abs_diff:.2e}" if self.face_max_abs_diff is not None else ""
        page = f"; puppet page {self.page}" if self.page else ""
        return (f"exported {self.model} ({self.model.stat().st_size / 1e6:.1f} MB): ONNX Runtime against PyTorch on "
                f"{self.n_verified} held-out inputs, largest difference {self.max_abs_diff:.2e} (tolerance "
                f"{TOLERANCE:g}){face}{page}")


def _sample_inputs(gen: Generator, batch: int = 2) -> tuple[torch.Tensor, ...]:
    """Inputs of the right shapes and types for tracing (values do not matter)."""
    cfg, (w, h) = gen.cfg, gen.size
    out = []
    for name in input_names(cfg):
        if name == "label":
            out.append(torch.randint(0, cfg.label_nc, (batch, 1, h, w)))
        elif name == "instance":
            out.append(torch.randint(0, 4, (batch, 1, h, w)))
        elif name == "features":
            out.append(torch.randn(batch, cfg.feat_num, h, w))
        elif name == "previous":
            out.append(torch.rand(batch, cfg.output_nc, h, w) * 2 - 1)
        else:
            out.append(torch.rand(batch, cfg.input_nc, h, w) * 2 - 1)
    return tuple(out)


def module_proto(module: nn.Module, args: tuple[torch.Tensor, ...], inputs: list[str],
                outputs: list[str]) -> onnx.ModelProto:
    """``module`` as an ONNX ModelProto (torch's exporter: torch.export, then ONNX Script), batch axis dynamic."""
    import onnx  # noqa: F401  (the exporter's dependency: a clear ImportError here rather than deep inside torch)

    module = module.eval()
    batch = torch.export.Dim("batch", min=1, max=1024)
    shapes: tuple = tuple({0: batch} for _ in args)
    if isinstance(module, NamedGenerator):  # forward(*inputs): one entry, for the tuple of inputs
        shapes = (shapes,)
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")  # the exporter's notes on its own internals
        program = torch.onnx.export(module, args, input_names=inputs, output_names=outputs,
                                    dynamic_shapes=shapes, opset_version=OPSET, dynamo=True,
                                    verbose=False, report=False)
    return program.model_proto


def _metadata(gen: Generator, name: str, which_epoch: str | int, kind: str, inputs: list[str]) -> dict[str, str]:
    cfg = gen.cfg
    keys = FACE_ARCH_KEYS if kind == "face" else ARCH_KEYS
    return {
        "dancenow.format": str(FORMAT),
        "dancenow.kind": kind,
        "dancenow.name": name,
        "dancenow.checkpoint": checkpoint_tag(which_epoch),
        "dancenow.preset": cfg.preset,
        "dancenow.width": str(cfg.width),
        "dancenow.height": str(cfg.height),
        "dancenow.inputs": json.dumps(inputs),
        "dancenow.temporal": json.dumps(bool(cfg.temporal)),
        "dancenow.label_nc": str(cfg.label_nc),
        "dancenow.pose_settings": json.dumps(gen.pose_settings.to_dict() if gen.pose_settings else None),
        "dancenow.architecture": json.dumps({k: getattr(cfg, k) for k in keys}),
        "dancenow.range": "[-1, 1]",
        **({"dancenow.face_side": str(face_box_side(cfg.height))} if kind == "face" else {}),
    }


def generator_proto(gen: Generator, name: str = "", which_epoch: str | int = "latest") -> onnx.ModelProto:
    """The generator of ``gen`` as an ONNX ModelProto with named inputs and the ``dancenow.*`` metadata."""
    import onnx

    module = NamedGenerator(gen.G.float().cpu(), gen.cfg)
    proto = module_proto(module, _sample_inputs(gen), module.names, ["frame"])
    onnx.helper.set_model_props(proto, _metadata(gen, name, which_epoch, "generator", module.names))
    proto.doc_string = f"dancenow generator {name!r}: inputs {', '.join(module.names)}; output frame in [-1, 1]"
    return proto


def face_proto(gen: Generator, name: str = "", which_epoch: str | int = "latest") -> onnx.ModelProto:
    """The face stage of ``gen`` as an ONNX ModelProto (``pose_face``, ``face`` -> ``corrected_face``)."""
    import onnx

    if gen.face is None:
        raise ExportError(f"{gen.path}: this run has no face stage to export")
    side = gen.face.side
    args = (torch.rand(2, gen.cfg.input_nc, side, side) * 2 - 1, torch.rand(2, gen.cfg.output_nc, side, side) * 2 - 1)
    proto = module_proto(FaceStage(gen.face.G.float().cpu()), args, FACE_INPUTS, ["corrected_face"])
    onnx.helper.set_model_props(proto, _metadata(gen, name, which_epoch, "face", FACE_INPUTS))
    proto.doc_string = (f"dancenow face stage {name!r}: the {side}x{side} face box crops of the pose and of the "
                        "generated frame -> the corrected face crop (paste it back at the box)")
    return proto


def _save_proto(proto: onnx.ModelProto, path: Path) -> None:
    import onnx

    with atomic_path(path) as tmp:
        onnx.save_model(proto, str(tmp))


def session(model: bytes | str | Path, threads: int = 0, level: str = "all") -> onnxruntime.InferenceSession:
    """An ONNX Runtime CPU session on ``model`` (bytes or a file) with ``threads`` intra-op threads (0: torch's
    count) and graph optimisation ``level`` (``"disabled"``, ``"basic"``, ``"extended"``, ``"all"``)."""
    import onnxruntime as ort

    levels = {"disabled": ort.GraphOptimizationLevel.ORT_DISABLE_ALL,
              "basic": ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
              "extended": ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED,
              "all": ort.GraphOptimizationLevel.ORT_ENABLE_ALL}
    opts = ort.SessionOptions()
    opts.graph_optimization_level = levels[level]
    opts.intra_op_num_threads = threads or torch.get_num_threads()
    opts.inter_op_num_threads = 1
    opts.log_severity_level = 3
    return ort.InferenceSession(model if isinstance(model, bytes) else str(model), opts,
                                providers=["CPUExecutionProvider"])


def heldout_inputs(gen: Generator, heldout: str | Path = "", n: int = 8) -> tuple[list, str]:
    """Up to ``n`` evenly spaced inputs (consecutive ones for a temporal run) to check the export on, and where
    they came from: ``heldout`` (a folder of pose images or label maps), else the held-out clip of notebook 01
    (``dataset_test/train_A``; for label-map runs ``dataset_parts_test/train_A``), else the run's training data."""
    candidates = [Path(heldout)] if heldout else [
        DatasetLayout(PARTS_DATASET_TEST if gen.label_maps else DATASET_TEST).A]
    record = gen.path.parent / "dataset.json"
    if not heldout and record.exists():
        data = json.loads(record.read_text())
        candidates.append(DatasetLayout(data["dataroot"], data.get("phase", "train")).A)
    for folder in candidates:
        if folder.is_dir() and (files := list_images(folder)):
            if gen.cfg.temporal:
                pick = files[:n]
            else:
                pick = [files[int(i)] for i in np.unique(np.linspace(0, len(files) - 1, min(n, len(files))).round())]
            return list(gen.read_inputs(pick, DatasetLayout.of_pose_dir(folder))), str(folder)
    where = ", ".join(str(c) for c in candidates)
    raise ExportError(f"no inputs to check the export on: none of {where} holds images. Give heldout= a folder of "
                      "pose images (or label maps), e.g. notebook 01's dataset_test/train_A")


def _feeds(gen: Generator, items: list, previous: np.ndarray | None) -> dict[str, np.ndarray]:
    """The named inputs of the exported generator for a batch of items (pose images or label maps)."""
    cfg = gen.cfg
    feeds: dict[str, np.ndarray] = {}
    if cfg.label_nc:
        tensors = [input_tensors(it) for it in items]
        feeds["label"] = torch.stack([t["A"] for t in tensors]).numpy()
        if cfg.instance_maps:
            feeds["instance"] = torch.stack([t["inst"] for t in tensors]).numpy()
        if cfg.use_features:
            full = gen.generator_input(items)
            feeds["features"] = full[:, full.shape[1] - cfg.feat_num:].cpu().numpy()
    else:
        feeds["pose"] = torch.stack([to_tensor(p) for p in items]).numpy()
    if cfg.temporal:
        n, (w, h) = len(items), gen.size
        feeds["previous"] = previous if previous is not None else np.zeros((n, cfg.output_nc, h, w), np.float32)
    return feeds


def verify_generator(gen: Generator, model: bytes | str | Path, items: list, batch: int = 4) -> dict:
    """Run ``model`` (the exported generator) with ONNX Runtime and ``gen`` with PyTorch in fp32 on ``items``;
    the largest and mean absolute difference of the frames. Temporal runs go frame by frame, both fed PyTorch's
    previous frame: the same inputs, so the difference is the export's, not a feedback loop's drift."""
    sess = session(model)
    step = 1 if gen.cfg.temporal else batch
    diffs, means = [], []
    previous = None
    for k in range(0, len(items), step):
        chunk = items[k: k + step]
        ref = gen.batch(gen.generator_input(chunk), previous).cpu()
        out = sess.run(["frame"], _feeds(gen, chunk, None if previous is None else previous.numpy()))[0]
        d = np.abs(out - ref.numpy())
        diffs.append(float(d.max()))
        means.append(float(d.mean()))
        previous = ref
    return {"max_abs_diff": max(diffs), "mean_abs_diff": float(np.mean(means)), "n": len(items)}


def verify_face(gen: Generator, model: bytes | str | Path, items: list) -> dict:
    """The face model against PyTorch on face-box-sized crops (top centre) of ``items`` and their frames."""
    assert gen.face is not None
    side, w = gen.face.side, gen.size[0]
    poses = torch.stack([to_tensor(p) for p in items])
    frames = gen.batch(poses, None).cpu()  # a temporal run: the first frame of a sequence (zeros before it)
    x0, y0 = max(0, (w - side) // 2), 0
    pose_face = poses[:, :, y0: y0 + side, x0: x0 + side].contiguous()
    face = frames[:, :, y0: y0 + side, x0: x0 + side].contiguous()
    with torch.no_grad():
        ref = correct_faces(gen.face.G.float(), pose_face.to(gen.device), face.to(gen.device)).cpu().numpy()
    out = session(model).run(["corrected_face"], {"pose_face": pose_face.numpy(), "face": face.numpy()})[0]
    d = np.abs(out - ref)
    return {"max_abs_diff": float(d.max()), "mean_abs_diff": float(d.mean()), "n": len(items)}


def _io(proto: onnx.ModelProto) -> dict:
    def shape(v) -> list:
        return [d.dim_param or d.dim_value for d in v.type.tensor_type.shape.dim]

    import onnx

    def kind(v) -> str:
        return onnx.helper.tensor_dtype_to_np_dtype(v.type.tensor_type.elem_type).name

    return {"inputs": [{"name": v.name, "shape": shape(v), "dtype": kind(v)} for v in proto.graph.input],
            "outputs": [{"name": v.name, "shape": shape(v), "dtype": kind(v)} for v in proto.graph.output]}


def load_for_export(name: str, which_epoch: str | int = "latest", checkpoints_dir: str | Path = "checkpoints",
                    face: bool = True) -> Generator:
    """The run's generator on the CPU in fp32, or an :class:`ExportError` saying what is missing or damaged."""
    run = RunLayout(checkpoints_dir, name)
    if not run.has_generator() and not run.generator(which_epoch).exists():
        raise ExportError(f"{run.dir}: no trained generator to export (no {run.generator(which_epoch).name} or "
                          f"{run.latest.name}; available: {run.available() or 'none'}). Train it first (notebook "
                          "02), or check name, checkpoints_dir and which_epoch.")
    try:
        gen = load_generator(name, which_epoch, checkpoints_dir, device="cpu", face=face)
    except FileNotFoundError as exc:
        raise ExportError(str(exc)) from None
    except ValueError as exc:  # a damaged file, weights that do not fit the config: the message names the file
        raise ExportError(f"cannot export {name!r}: {exc}") from None
    gen.precision = "fp32"
    return gen


def export_generator(name: str, which_epoch: str | int = "latest", checkpoints_dir: str | Path = "checkpoints",
                     results_dir: str | Path = RESULTS, out_dir: str | Path | None = None, heldout: str | Path = "",
                     face: bool = True, page: bool = True, keypoints_dir: str | Path = "",
                     ort_web: str | Path | None = None, n_verify: int = 8) -> ExportResult:
    """Export ``checkpoints/<name>``'s generator (and face stage) to ONNX in ``results/<name>_export`` (or
    ``out_dir``), check it against PyTorch on held-out inputs (:func:`heldout_inputs`), and for pose runs write
    the puppet page there (``page=False``: not; ``keypoints_dir``: the training keypoints it starts from, default
    the run's training data; ``ort_web``: a local onnxruntime-web package, see
    :mod:`dancenow_utils.transfer.ort_web`). Raises :class:`ExportError` for a run without a generator, a
    damaged checkpoint, or an export whose frames differ from PyTorch's by more than :data:`TOLERANCE`."""
    t0 = time.perf_counter()
    gen = load_for_export(name, which_epoch, checkpoints_dir, face)
    layout = ExportLayout(out_dir) if out_dir else ResultsLayout(results_dir, name).export
    items, source = heldout_inputs(gen, heldout, n_verify)
    proto = generator_proto(gen, name, which_epoch)
    data = proto.SerializeToString()
    check = verify_generator(gen, data, items)
    if not check["max_abs_diff"] <= TOLERANCE:
        raise ExportError(f"{name}: ONNX Runtime's frames differ from PyTorch's by up to {check['max_abs_diff']:.2e} "
                          f"(tolerance {TOLERANCE:g}) on {source}; the export was not written. Report this with "
                          f"torch {torch.__version__} and your onnxruntime version.")
    _save_proto(proto, layout.model)
    face_check = None
    if gen.face is not None and not gen.label_maps:
        fproto = face_proto(gen, name, which_epoch)
        face_check = verify_face(gen, fproto.SerializeToString(), items)
        if not face_check["max_abs_diff"] <= TOLERANCE:
            raise ExportError(f"{name}: the face model differs from PyTorch by up to {face_check['max_abs_diff']:.2e}")
        _save_proto(fproto, layout.face_model)
    elif layout.face_model.exists():
        layout.face_model.unlink()  # an older export's face stage does not belong to this one
    page_path = None
    if page and not gen.label_maps:
        from dancenow_utils.transfer.puppet_page import write_puppet_page

        page_path = write_puppet_page(gen, layout, keypoints_dir or _training_keypoints(gen), ort_web, name)
    record = {"name": name, "checkpoint": checkpoint_tag(which_epoch), "generator": str(gen.path),
              "stages": gen.stages, "model": layout.model.name, **_io(proto),
              "metadata": {p.key: p.value for p in proto.metadata_props},
              "check": {"inputs": source, "tolerance": TOLERANCE, **check},
              "face_model": layout.face_model.name if face_check else None, "face_check": face_check,
              "page": layout.page.name if page_path else None, "opset": OPSET, "torch": torch.__version__,
              "onnxruntime": _ort_version(), "seconds": round(time.perf_counter() - t0, 2)}
    write_json(layout.record, record)
    return ExportResult(layout.dir, layout.model, layout.face_model if face_check else None, page_path,
                        check["max_abs_diff"], face_check["max_abs_diff"] if face_check else None, check["n"], record)


def _training_keypoints(gen: Generator) -> Path:
    record = gen.path.parent / "dataset.json"
    if record.exists():
        data = json.loads(record.read_text())
        return DatasetLayout(data["dataroot"], data.get("phase", "train")).keypoints
    return DatasetLayout("dataset").keypoints


def _ort_version() -> str:
    import onnxruntime

    return onnxruntime.__version__


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="Export a trained dancenow generator to ONNX (and its puppet page)")
    ap.add_argument("name", help="the run: checkpoints/<name>")
    ap.add_argument("--which-epoch", default="latest")
    ap.add_argument("--checkpoints-dir", default="checkpoints")
    ap.add_argument("--results-dir", default=RESULTS)
    ap.add_argument("--out", default="", help="the export folder (default: <results-dir>/<name>_export)")
    ap.add_argument("--heldout", default="", help="a folder of pose images (or label maps) to check the export on")
    ap.add_argument("--keypoints", default="", help="training keypoints the puppet page starts from")
    ap.add_argument("--ort-web", default="", help="a local onnxruntime-web package (.tgz or folder), for offline use")
    ap.add_argument("--no-face", action="store_true", help="leave the face stage out")
    ap.add_argument("--no-page", action="store_true", help="write the ONNX models only")
    a = ap.parse_args(argv)
    which: str | int = int(a.which_epoch) if a.which_epoch.isdigit() else a.which_epoch
    try:
        result = export_generator(a.name, which, a.checkpoints_dir, a.results_dir, a.out or None, a.heldout,
                                  not a.no_face, not a.no_page, a.keypoints, a.ort_web or None)
    except (ExportError, FileNotFoundError) as exc:
        print(f"export failed: {exc}", file=sys.stderr)
        return 1
    print(result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
