"""Several GPUs from a notebook (issue 21): notebook 02's ``gpus`` launches the torchrun training in N processes;
here 2 CPU processes on gloo."""

from __future__ import annotations

import pytest

from dancenow_utils.checkpoint import load_checkpoint
from dancenow_utils.config import make_config
from dancenow_utils.io_utils import read_jsonl
from dancenow_utils.training.launch import train_stages_on


def test_two_processes_from_python_train_one_model(tiny_dataset, tmp_path):
    cfg = make_config("tiny", {"max_dataset_size": 8, "niter": 1, "niter_decay": 0, "device": "cpu", "threads": 1,
                               "face_stage": False})
    results = train_stages_on(2, "all", cfg, tiny_dataset / "dataset", "two", tmp_path, resume=False, progress=False)
    assert list(results) == ["global"]
    # 8 frames, 2 per batch, split over 2 ranks: 2 steps per epoch (one process alone takes 4)
    assert results["global"].iteration == 2 and "device cpu" in results["global"].description
    assert load_checkpoint(tmp_path / "two" / "latest.pth")["iteration"] == 2
    assert [r["iteration"] for r in read_jsonl(tmp_path / "two" / "loss_log.jsonl")] == [1, 2]


def test_gpus_must_be_a_count():
    with pytest.raises(ValueError, match="number of training processes"):
        train_stages_on(0, "all", make_config("tiny"))
