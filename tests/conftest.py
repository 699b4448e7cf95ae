"""Shared fixtures: tiny demo data made once per session, offline mode, quiet MediaPipe."""

from __future__ import annotations

import os
import time
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


def full_and_resumed(cfg, dataroot: Path, tmp_path: Path, stop: int = 3,
                     saved: str = "latest.pth") -> tuple[dict, dict]:
    """The generator weights (as ``saved``: the full checkpoint's trained weights, or ``latest_G.pth``'s, which
    inference uses) of a run trained straight through and of one stopped after ``stop`` iterations and resumed
    from the checkpoint it saved on stopping."""
    import torch

    from dancenow_utils.training.stages import build_trainer

    build_trainer(cfg, dataroot, "full", tmp_path, resume=False, progress=False).train()
    build_trainer(cfg, dataroot, "part", tmp_path, resume=False, progress=False).train(max_iterations=stop)
    resumed = build_trainer(cfg, dataroot, "part", tmp_path, resume=True, progress=False)
    assert resumed.iteration == stop
    resumed.train()
    return tuple(torch.load(tmp_path / n / saved, weights_only=True)["G"] for n in ("full", "part"))


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


@pytest.fixture(scope="session")
def browser():
    """Headless system Chromium under Playwright (tests/browser_helper.py); skipped, and counted at the end of the
    run, where no Chromium is installed (``make test`` installs it when it can)."""
    from tests.browser_helper import SKIP_REASON, Browser, find_chromium

    binary = find_chromium()
    if binary is None or os.name != "posix":
        pytest.skip(SKIP_REASON)
    with Browser(binary) as b:
        yield b


@pytest.fixture(scope="session")
def pipeline_site(tiny_demo, tiny_dataset, tmp_path_factory):
    """Every page the pipeline writes, from a small real run named with spaces and HTML characters."""
    from tests.pipeline_site import build_site

    return build_site(tmp_path_factory.mktemp("site"), tiny_demo.root, tiny_dataset)


# The browser tests' share of the run, and how many were skipped (a machine where Chromium could not be installed).
_BROWSER = {"seconds": 0.0, "passed": 0, "failed": 0, "skipped": 0, "reasons": set()}


def pytest_configure(config):
    config.addinivalue_line("markers", "browser: drives headless Chromium (Playwright); counted in the summary")
    _BROWSER["start"] = time.monotonic()


def pytest_runtest_logreport(report):
    if "browser" not in report.keywords:
        return
    _BROWSER["seconds"] += report.duration
    if report.skipped:
        _BROWSER["skipped"] += 1
        reason = report.longrepr[-1] if isinstance(report.longrepr, tuple) else ""
        _BROWSER["reasons"].add(str(reason).removeprefix("Skipped: "))
    elif report.when == "call":
        _BROWSER["passed" if report.passed else "failed"] += 1
    elif report.failed:
        _BROWSER["failed"] += 1


def pytest_terminal_summary(terminalreporter):
    b = _BROWSER
    if not (b["passed"] or b["failed"] or b["skipped"]):
        return
    total = time.monotonic() - b["start"]
    tr = terminalreporter
    tr.section("browser tests")
    tr.line(f"browser tests: {b['passed']} passed, {b['failed']} failed, {b['skipped']} skipped; "
            f"{b['seconds']:.0f} s of the run's {total:.0f} s ({100 * b['seconds'] / max(total, 1e-9):.0f} %)")
    for reason in sorted(r for r in b["reasons"] if r):
        tr.line(f"  skipped: {reason}", yellow=True)
