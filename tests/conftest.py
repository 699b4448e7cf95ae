"""Shared fixtures: tiny demo data made once per session, offline mode, quiet MediaPipe."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("DANCENOW_OFFLINE", "1")  # never try to download VGG weights in tests
os.environ.setdefault("GLOG_minloglevel", "2")
os.environ.setdefault("MPLBACKEND", "Agg")
# one precision for every process a test starts (amp="auto" may measure the CPU; a resumed subprocess must match the
# run it is compared with); bf16 and the automatic choice have their own tests
os.environ.setdefault("DANCENOW_PRECISION", "fp32")

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def tiny_demo(tmp_path_factory):
    """A small demo (64 training, 24 held-out, 24 source frames at 128 px)."""
    from dancenow_utils.synthetic import make_demo

    return make_demo(tmp_path_factory.mktemp("demo"), size=128, n_train=64, n_heldout=24, n_source=24, seed=3,
                     progress=False)


@pytest.fixture(scope="session")
def tiny_dataset(tiny_demo, tmp_path_factory):
    """Aligned pairs extracted from the tiny demo with the real MediaPipe pipeline."""
    from dancenow_utils.pose.extract import extract

    root = tmp_path_factory.mktemp("data")
    extract(tiny_demo.video("target_train"), root / "dataset", "train", image_size=64, smooth_window=3,
            workers=1, progress=False)
    extract(tiny_demo.video("target_heldout"), root / "dataset_test", "train", image_size=64, smooth_window=3,
            workers=1, progress=False)
    return root
