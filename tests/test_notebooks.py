"""Every notebook runs top to bottom under papermill on tiny parameters, in pipeline order, in one folder."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from tests.notebook_helper import ROOT, execute

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def workdir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("pipeline")


def test_committed_notebooks_match_their_source():
    """Byte for byte once the outputs (and execution counts) are stripped: every cell, tag and metadata."""
    import nbformat

    from dancenow_utils.notebook.saved_outputs import strip_outputs

    sys.path.insert(0, str(ROOT / "tools"))
    import build_notebooks

    for name in build_notebooks.NOTEBOOKS:
        committed = nbformat.reads((ROOT / "notebooks" / name).read_text(), as_version=4)
        assert nbformat.writes(strip_outputs(committed)) + "\n" == build_notebooks.render(name), \
            f"notebooks/{name} is stale: run `python tools/build_notebooks.py`, then `make notebook-outputs`"


def test_committed_notebooks_show_pictures():
    """A code host shows each notebook with at least one figure, and the outputs stay small."""
    import nbformat

    from dancenow_utils.notebook.saved_outputs import image_outputs

    paths = sorted((ROOT / "notebooks").glob("*.ipynb"))
    for path in paths:
        assert image_outputs(nbformat.read(path, as_version=4)) >= 1, \
            f"{path.name} has no picture in its outputs: run `make notebook-outputs`"
    total = sum(p.stat().st_size for p in paths)
    assert total < 4_000_000, f"the committed notebooks hold {total / 1e6:.1f} MB; keep their outputs small"


def test_every_notebook_has_a_parameters_cell_and_lessons():
    import nbformat

    for path in sorted((ROOT / "notebooks").glob("*.ipynb")):
        nb = nbformat.read(path, as_version=4)
        tags = [c.metadata.get("tags", []) for c in nb.cells]
        assert any("parameters" in t for t in tags), path
        assert sum(c.cell_type == "markdown" for c in nb.cells) >= 3, f"{path} should explain its steps"


def test_01_pose_extraction(workdir):
    execute("01_pose_extraction", workdir, demo_frames=[40, 16, 16], image_size=64, smooth_window=3)
    for root in ("dataset", "dataset_test"):
        a = sorted(p.name for p in (workdir / root / "train_A").iterdir())
        b = sorted(p.name for p in (workdir / root / "train_B").iterdir())
        assert a == b and len(a) >= 15
    summary = json.loads((workdir / "dataset" / "train_keypoints" / "summary.json").read_text())
    assert summary["written"] >= 38


def test_02_training(workdir):
    execute("02_training", workdir, preset="tiny", overrides={"max_dataset_size": 8})
    ckpt = workdir / "checkpoints" / "demo"
    for f in ("latest.pth", "config.json", "loss_log.jsonl", "loss_curves.png", "web/index.html"):
        assert (ckpt / f).exists(), f


def test_03_cross_validation(workdir):
    execute("03_cross_validation", workdir, max_samples=6, forensic_steps=10)
    test_dir = workdir / "checkpoints" / "demo_test"
    metrics = json.loads((test_dir / "metrics.json").read_text())
    assert metrics["n_samples"] == 6
    assert 0 <= metrics["ssim"] <= 1 and 0 <= metrics["nn_ssim"] <= 1
    assert (test_dir / "index.html").exists()
    coverage = json.loads((test_dir / "coverage" / "coverage.json").read_text())
    assert coverage and (test_dir / "coverage" / "coverage.png").exists()
    assert {"accuracy", "auc"} <= set(json.loads((test_dir / "forensics.json").read_text())["heldout"])


def test_04_pose_transfer(workdir):
    execute("04_pose_transfer", workdir, max_frames=10)
    out = workdir / "results" / "demo"
    from dancenow_utils.video import count_frames

    assert count_frames(out / "transfer.mp4") == 10
    assert count_frames(out / "side_by_side.mp4") == 10
    assert (out / "transfer.gif").exists() and (out / "index.html").exists()
    assert (out / "puppet.png").exists()  # the puppet's static figure, for headless runs
    export = workdir / "results" / "demo_export"  # the exported character (ONNX, checked) and its puppet page
    record = json.loads((export / "export.json").read_text())
    assert record["check"]["max_abs_diff"] <= record["check"]["tolerance"] and (export / "model.onnx").exists()
    assert (export / "index.html").exists() and (export / "pose.json").exists()
    assert json.loads((out / "transfer.json").read_text())["runtime"]["runtime"] in ("torch", "onnxruntime")
    assert (workdir / "results" / "demo_coverage" / "coverage_worst.png").exists()


def test_05_epoch_visualization(workdir):
    execute("05_epoch_visualization", workdir, preset="tiny", iterations=4, snapshot_every=2,
            overrides={"max_dataset_size": 8})
    learn = workdir / "checkpoints" / "Initial_epoch" / "learning"
    assert (learn / "learning_grid.png").exists() and (learn / "learning.gif").exists()
    assert len(list(learn.glob("iter_*.png"))) == 3  # iterations 1, 2, 4
