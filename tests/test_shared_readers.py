"""The helpers that replaced twins (issue 27): one per-sample reader, one stderr redirect, one resize rule, and
run file names from the layout."""

from __future__ import annotations

import math
import os

import numpy as np
import pytest

from dancenow_utils.data.datasets import resized
from dancenow_utils.evaluation.coverage import per_sample_values
from dancenow_utils.evaluation.per_sample import read_per_sample
from dancenow_utils.layout import EvaluationLayout, RunLayout
from dancenow_utils.notebook.runner import stderr_to


def test_one_per_sample_reader_for_the_file_or_its_folder(tmp_path):
    test = RunLayout(tmp_path, "m").test
    test.dir.mkdir()
    test.per_sample.write_text("name,ssim,body_ssim,pose_kind\nframe_1,0.5,,front\nframe_2,0.25,0.75,side\n")
    rows = read_per_sample(test.dir)
    assert rows == read_per_sample(test.per_sample)
    assert rows[0] == {"name": "frame_1", "ssim": 0.5, "body_ssim": None, "pose_kind": "front"}
    values = per_sample_values(test.dir, "body_ssim")
    assert math.isnan(values["frame_1"]) and values["frame_2"] == 0.75
    with pytest.raises(KeyError, match="psnr"):
        per_sample_values(test.per_sample, "psnr")
    with pytest.raises(FileNotFoundError, match="notebook 03"):
        read_per_sample(tmp_path / "none")


def test_evaluation_layout_names_the_cross_validation_files(tmp_path):
    test = EvaluationLayout(tmp_path / "m_test")
    assert [p.name for p in (test.metrics, test.per_sample, test.page, test.metrics_plot)] == \
        ["metrics.json", "per_sample.csv", "index.html", "metrics.png"]
    assert test.image("frame_1", "nn") == tmp_path / "m_test" / "images" / "frame_1_nn.png"
    assert RunLayout(tmp_path, "m").test == test


def test_stderr_to_sends_fd_2_to_a_file_and_back(tmp_path):
    log = tmp_path / "logs" / "kernel_stderr.log"
    before = os.fstat(2).st_ino
    with stderr_to(log):
        os.write(2, b"native log line\n")
    assert log.read_text() == "native log line\n"
    assert os.fstat(2).st_ino == before


def test_resized_shrinks_by_area_enlarges_bilinearly_and_keeps_the_size():
    img = np.zeros((4, 4, 3), np.uint8)
    img[:2, :2] = 200
    assert resized(img, 4, 4) is img
    assert resized(img, 2, 2)[0, 0].tolist() == [200, 200, 200]  # area: the mean of the 2x2 block
    assert resized(img, 8, 8).shape == (8, 8, 3)
