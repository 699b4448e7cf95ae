"""Where things live on disk, defined once: the dataset folders and the run (checkpoint) folders.

Dataset (``dataset/``, ``dataset_test/``, ``dataset_transfer/``), for a ``phase`` such as ``train`` or ``test``::

    {root}/{phase}_A/<id>.png                      stick figures (the generator's input)
    {root}/{phase}_B/<id>.png                      frames (absent for transfer poses)
    {root}/{phase}_inst/<id>.png                   instance maps of label-map inputs (``instance_maps=True``)
    {root}/{phase}_keypoints/<id>_keypoints.json   OpenPose JSON in original-frame pixels
    {root}/{phase}_keypoints/crop.json             the crop that maps a video's frames to training images
    {root}/{phase}_keypoints/crops.json            or, for independent images, one crop per image
    {root}/{phase}_keypoints/settings.json         how the stick figures were drawn (format, face, hands, size)
    {root}/{phase}_keypoints/summary.json          what extraction found
    {root}/{phase}_keypoints/detections.npz        the detector's raw keypoints per frame (for the lessons)

Run (``checkpoints/<name>/``)::

    config.json, dataset.json                      the config, and the dataset the run was trained on
    latest.pth                                     everything needed to resume exactly
    latest_G.pth, epoch_<n>_G.pth                  generator only (+ config and pose settings): for inference
                                                   (with ema_decay: the moving average of its weights)
    loss_log.jsonl, loss_curves.png, web/          named losses, their curves, the visuals page
    global/, face/                                 the global stage of a local enhancer, the face stage
    .dancenow.json, .dancenow.lock                 whose folder it is (:mod:`dancenow_utils.folders`), who trains it
    ../<name>_test/                                cross-validation results (notebook 03): metrics.json,
                                                   per_sample.csv, index.html, metrics.png, images/

A run or results name is one plain folder name (:func:`check_name`: not empty, no path separator, no ``..``, no
leading dot): every layout checks it, so no step writes outside the folder it was given.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

STAGE_FOLDERS = ("global", "face")  # the sub-stage run folders inside a run (``<name>/global``, ``<name>/face``)


def check_name(name: object, what: str = "name") -> str:
    """``name`` as a single plain folder name, else an error naming ``what`` and the rule."""
    if isinstance(name, int) and not isinstance(name, bool):
        name = str(name)  # papermill's -p name 5
    text = name if isinstance(name, str) else None
    problem = ""
    if text is None:
        problem = f"must be a text, got {type(name).__name__}"
    elif not text.strip():
        problem = "is empty"
    elif text in (".", ".."):
        problem = "is not a folder name"
    elif "/" in text or "\\" in text or os.sep in text or (os.altsep and os.altsep in text):
        problem = "contains a path separator"
    elif text.startswith("."):
        problem = "starts with a dot (hidden folders are the project's staging folders)"
    elif "\0" in text or text != text.strip():
        problem = "has a NUL character or leading/trailing spaces"
    if problem:
        raise ValueError(f"{what} {name!r} {problem}: it must be one plain folder name such as 'demo' or "
                         "'salsa_v2', created inside the chosen folder; choose the parent folder with "
                         "checkpoints_dir / results_dir instead of putting it in the name")
    return text


def check_run_name(name: object, what: str = "name") -> str:
    """A run name, optionally with one sub-stage folder (``demo/face``, ``demo/global``)."""
    if isinstance(name, str) and "/" in name:
        head, _, tail = name.partition("/")
        if tail in STAGE_FOLDERS:
            check_name(head, what)
            return name
    return check_name(name, what)


@dataclass(frozen=True)
class DatasetLayout:
    """The folders of one phase of a dataset root."""

    root: Path
    phase: str = "train"

    def __init__(self, root: str | Path, phase: str = "train") -> None:
        object.__setattr__(self, "root", Path(root))
        object.__setattr__(self, "phase", phase)

    @classmethod
    def of_pose_dir(cls, poses_dir: str | Path) -> DatasetLayout:
        """The layout a ``{phase}_A`` folder belongs to (``dataset_transfer/test_A`` -> root, ``test``)."""
        p = Path(poses_dir)
        return cls(p.parent, p.name.removesuffix("_A"))

    @classmethod
    def of_keypoints_dir(cls, keypoints_dir: str | Path) -> DatasetLayout:
        """The layout a ``{phase}_keypoints`` folder belongs to (``dataset/train_keypoints`` -> root, ``train``)."""
        p = Path(keypoints_dir)
        return cls(p.parent, p.name.removesuffix("_keypoints"))

    @property
    def A(self) -> Path:
        return self.root / f"{self.phase}_A"

    @property
    def B(self) -> Path:
        return self.root / f"{self.phase}_B"

    @property
    def inst(self) -> Path:
        """Instance maps, one per label map of the same name (pix2pixHD's ``{phase}_inst``)."""
        return self.root / f"{self.phase}_inst"

    @property
    def keypoints(self) -> Path:
        return self.root / f"{self.phase}_keypoints"

    @property
    def crop(self) -> Path:
        return self.keypoints / "crop.json"

    @property
    def crops(self) -> Path:
        """Per-image crops of independent images (instead of ``crop.json``)."""
        return self.keypoints / "crops.json"

    @property
    def settings(self) -> Path:
        return self.keypoints / "settings.json"

    @property
    def summary(self) -> Path:
        return self.keypoints / "summary.json"

    @property
    def detections(self) -> Path:
        """The detector's raw keypoints of every frame, before cuts and smoothing (``pose.extract.Detections``)."""
        return self.keypoints / "detections.npz"

    def keypoint_file(self, frame_id: str) -> Path:
        return self.keypoints / f"{frame_id}_keypoints.json"

    def folders(self) -> dict[str, Path]:
        return {"A": self.A, "B": self.B, "keypoints": self.keypoints}


def checkpoint_tag(which_epoch: str | int) -> str:
    """``"latest"``, ``5``, ``"5"`` or ``"epoch_5"`` -> ``"latest"`` / ``"epoch_5"`` (papermill passes ints)."""
    text = str(which_epoch).strip()
    if text == "latest":
        return text
    number = text.removeprefix("epoch_")
    if isinstance(which_epoch, bool) or not number.isdigit() or int(number) < 1:
        raise ValueError(f"which_epoch must be 'latest' or an epoch number such as 5 or 'epoch_5', "
                         f"got {which_epoch!r}")
    return f"epoch_{int(number)}"


@dataclass(frozen=True)
class RunLayout:
    """The files of one training run under ``checkpoints_dir``."""

    checkpoints_dir: Path
    name: str

    def __init__(self, checkpoints_dir: str | Path, name: str) -> None:
        object.__setattr__(self, "checkpoints_dir", Path(checkpoints_dir))
        object.__setattr__(self, "name", check_run_name(name, "run name"))

    @property
    def dir(self) -> Path:
        return self.checkpoints_dir / self.name

    @property
    def config(self) -> Path:
        return self.dir / "config.json"

    @property
    def dataset_record(self) -> Path:
        return self.dir / "dataset.json"

    @property
    def latest(self) -> Path:
        return self.dir / "latest.pth"

    def checkpoint(self, which_epoch: str | int = "latest") -> Path:
        """The full training state (only ``latest`` is kept in full)."""
        return self.dir / f"{checkpoint_tag(which_epoch)}.pth"

    def generator(self, which_epoch: str | int = "latest") -> Path:
        """The generator-only file that inference reads."""
        return self.dir / f"{checkpoint_tag(which_epoch)}_G.pth"

    def has_generator(self) -> bool:
        """Whether the run has a trained generator to load (``latest_G.pth``, or a full ``latest.pth``)."""
        return self.generator().exists() or self.latest.exists()

    def available(self) -> list[str]:
        """Checkpoint tags with a generator, newest epoch last."""
        if not self.dir.is_dir():
            return []
        tags = {p.name.removesuffix("_G.pth") for p in self.dir.glob("*_G.pth")}
        tags |= {p.stem for p in self.dir.glob("*.pth") if not p.name.endswith("_G.pth")}
        return sorted(tags, key=lambda t: (t == "latest", int(t[6:]) if t.startswith("epoch_") else 0))

    @property
    def loss_log(self) -> Path:
        return self.dir / "loss_log.jsonl"

    @property
    def loss_curves(self) -> Path:
        return self.dir / "loss_curves.png"

    @property
    def web(self) -> Path:
        return self.dir / "web"

    @property
    def web_page(self) -> Path:
        """The training visuals page, newest first."""
        return self.web / "index.html"

    @property
    def web_images(self) -> Path:
        return self.web / "images"

    @property
    def learning(self) -> Path:
        return self.dir / "learning"

    @property
    def learning_grid(self) -> Path:
        """Step 5's grid of generated frames over the first iterations."""
        return self.learning / "learning_grid.png"

    @property
    def learning_gif(self) -> Path:
        return self.learning / "learning.gif"

    @property
    def test_dir(self) -> Path:
        """Cross-validation results: ``checkpoints/<name>_test``."""
        return self.checkpoints_dir / f"{self.name}_test"

    @property
    def test(self) -> EvaluationLayout:
        """The files of the run's cross-validation (in :attr:`test_dir`)."""
        return EvaluationLayout(self.test_dir)

    def stage(self, stage: str) -> RunLayout:
        """The run folder of a sub-stage (``global`` of a local enhancer, ``face``)."""
        return RunLayout(self.checkpoints_dir, f"{self.name}/{stage}")

    def latest_visuals(self) -> list[Path]:
        """The newest training visuals, one image per kind, in the order they were written."""
        images = sorted(self.web.glob("images/iter*.png"))
        if not images:
            return []
        tag = images[-1].name.split("_")[0]
        return sorted(self.web.glob(f"images/{tag}_*.png"), key=lambda p: p.stat().st_mtime_ns)

    def temp_files(self) -> list[Path]:
        """Temporary files a killed save left behind (``.latest.pth.*.tmp.pth``)."""
        return sorted(self.dir.glob(".*.tmp.*")) if self.dir.is_dir() else []


@dataclass(frozen=True)
class EvaluationLayout:
    """The files of one cross-validation, ``checkpoints/<name>_test/`` (notebook 03)."""

    dir: Path

    def __init__(self, test_dir: str | Path) -> None:
        object.__setattr__(self, "dir", Path(test_dir))

    @property
    def metrics(self) -> Path:
        """The mean metrics, GAN and nearest-neighbour baseline."""
        return self.dir / "metrics.json"

    @property
    def per_sample(self) -> Path:
        """One row of metrics per held-out sample."""
        return self.dir / "per_sample.csv"

    @property
    def page(self) -> Path:
        """Every sample: input, generated, real, nearest neighbour."""
        return self.dir / "index.html"

    @property
    def metrics_plot(self) -> Path:
        """The per-sample metric distributions."""
        return self.dir / "metrics.png"

    @property
    def images(self) -> Path:
        return self.dir / "images"

    def image(self, name: str, kind: str) -> Path:
        """One sample's picture of one kind (``input``, ``generated``, ...)."""
        return self.images / f"{name}_{kind}.png"


@dataclass(frozen=True)
class ResultsLayout:
    """The files of one transfer under ``results/<name>/``."""

    results_dir: Path
    name: str

    def __init__(self, results_dir: str | Path, name: str) -> None:
        object.__setattr__(self, "results_dir", Path(results_dir))
        object.__setattr__(self, "name", check_name(name, "results name"))

    @property
    def staging(self) -> Path:
        """Where a transfer writes before it is swapped into :attr:`dir` (``results/.<name>.staging``)."""
        return self.results_dir / f".{self.name}.staging"

    def staging_layout(self) -> ResultsLayout:
        """The same files inside :attr:`staging` (a hidden name, which :class:`ResultsLayout` itself refuses)."""
        twin = object.__new__(ResultsLayout)
        object.__setattr__(twin, "results_dir", self.results_dir)
        object.__setattr__(twin, "name", self.staging.name)
        return twin

    @property
    def backup(self) -> Path:
        """Where the previous results wait while the new ones are swapped in (``results/.<name>.old``)."""
        return self.results_dir / f".{self.name}.old"

    @property
    def dir(self) -> Path:
        return self.results_dir / self.name

    @property
    def frames(self) -> Path:
        return self.dir / "frames"

    @property
    def video(self) -> Path:
        return self.dir / "transfer.mp4"

    @property
    def side_by_side(self) -> Path:
        return self.dir / "side_by_side.mp4"

    @property
    def gif(self) -> Path:
        return self.dir / "transfer.gif"

    @property
    def page(self) -> Path:
        return self.dir / "index.html"

    @property
    def record(self) -> Path:
        return self.dir / "transfer.json"

    @property
    def coverage(self) -> Path:
        """The pose-coverage report of the source, made before generation: ``results/<name>_coverage``."""
        return self.results_dir / f"{self.name}_coverage"

    @property
    def export(self) -> ExportLayout:
        """The exported character (ONNX models and the puppet page): ``results/<name>_export``."""
        return ExportLayout(self.results_dir / f"{self.name}_export")


@dataclass(frozen=True)
class ExportLayout:
    """The files of one exported character, ``results/<name>_export/``: a folder that runs without Python."""

    dir: Path

    def __init__(self, export_dir: str | Path) -> None:
        object.__setattr__(self, "dir", Path(export_dir))

    @property
    def model(self) -> Path:
        """The generator as ONNX (what the page and the ONNX Runtime backend run)."""
        return self.dir / "model.onnx"

    @property
    def face_model(self) -> Path:
        """The face stage as its own ONNX model (runs with a face stage only)."""
        return self.dir / "face.onnx"

    @property
    def record(self) -> Path:
        """What was exported and the check against PyTorch (largest differences)."""
        return self.dir / "export.json"

    @property
    def page(self) -> Path:
        """The puppet page: sliders bend the joints, the browser runs the model."""
        return self.dir / "index.html"

    @property
    def poses(self) -> Path:
        """The target's training pose(s) and drawing settings the page starts from."""
        return self.dir / "pose.json"

    @property
    def runtime(self) -> Path:
        """The vendored onnxruntime-web files the page loads (no network needed)."""
        return self.dir / "ort"


# the five notebooks, in pipeline order (notebooks/<name>.ipynb)
NOTEBOOKS = ("01_pose_extraction", "02_training", "03_cross_validation", "04_pose_transfer",
             "05_epoch_visualization")
LEARNING_RUN = "Initial_epoch"  # notebook 05's default run name

# the default folders of the five steps (README's layout section)
DATASET = "dataset"
DATASET_TEST = "dataset_test"
DATASET_TRANSFER = "dataset_transfer"
CHECKPOINTS = "checkpoints"
RESULTS = "results"
DEMO_DATA = "demo_data"
# the demo's body-part label maps (notebook 02 with input_kind="parts"): training, held-out and transfer twins
PARTS_DATASET, PARTS_DATASET_TEST, PARTS_DATASET_TRANSFER = "dataset_parts", "dataset_parts_test", \
    "dataset_parts_transfer"
# every folder the notebooks write data into (what Colab's keep_on_drive() keeps on Google Drive)
DATA_FOLDERS = (DATASET, DATASET_TEST, DATASET_TRANSFER, PARTS_DATASET, PARTS_DATASET_TEST, PARTS_DATASET_TRANSFER,
                DEMO_DATA, CHECKPOINTS, RESULTS)
