"""Lesson figures show what the pipeline really did: the same crop, drawing and normalisation as extraction."""

from __future__ import annotations

import numpy as np
import pytest

from dancenow_utils.io_utils import read_image
from dancenow_utils.notebook.lessons import ExtractionLesson, NormalizationLesson
from dancenow_utils.pose.crop import load_keypoint_folder
from dancenow_utils.pose.extract import extract


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    from dancenow_utils.synthetic import make_demo

    return make_demo(tmp_path_factory.mktemp("demo"), size=128, n_train=16, n_heldout=2, n_source=12, seed=3,
                     progress=False)


@pytest.fixture(scope="module")
def target(demo, tmp_path_factory):
    """The target's pairs, from the demo's ground-truth keypoints (the ``openpose_json`` backend: no detector)."""
    root = tmp_path_factory.mktemp("data") / "dataset"
    extract(demo.video("target_train"), root, "train", backend="openpose_json",
            keypoints_dir=str(demo.keypoints("target_train")), image_size=64, smooth_window=3, progress=False)
    return root


def test_extraction_lesson_draws_what_extraction_wrote(demo, target):
    truth = demo.keypoints("target_train")
    lesson = ExtractionLesson.run(demo.video("target_train"), target / "train_keypoints", n_frames=10,
                                  json_dir=str(truth), truth_dir=truth)
    assert len(lesson.raw) == 10 and lesson.index == 5
    # stage 4's stick figure is the pose image extraction wrote for that frame, pixel for pixel
    written = read_image(target / "train_A" / f"{lesson.frame_ids[lesson.index]}.png")
    assert np.array_equal(lesson.pose_image(), written)
    assert lesson.drawn_image().shape == (64, 3 * 64 + 2 * 2, 3)
    # the ground truth is the raw input here: no error before smoothing
    stats = lesson.jitter("RWrist")
    assert stats["raw_error_px"] == pytest.approx(0, abs=0.01)
    assert set(stats) == {"raw_jitter_px", "smoothed_jitter_px", "raw_error_px", "smoothed_error_px"}
    frame_h = lesson.frame.shape[0]
    assert lesson.detected_image().shape == lesson.frame.shape
    assert lesson.crop_image().shape[0] == frame_h
    assert len(lesson.jitter_figure("RWrist").axes) == 2
    with pytest.raises(ValueError, match="RAnkle"):
        lesson.jitter("Ankle")


def test_extraction_lesson_needs_the_extraction_first(demo, tmp_path):
    with pytest.raises(FileNotFoundError, match="settings.json"):
        ExtractionLesson.run(demo.video("target_train"), tmp_path / "train_keypoints")


def test_normalization_lesson_fits_as_transfer_does(demo, target, tmp_path):
    """The lesson's normalised skeletons are the keypoints pose transfer writes for the same source."""
    keypoints = target / "train_keypoints"
    lesson = NormalizationLesson.run(demo.video("source_dancer"), keypoints, "edn", smooth_window=3)
    extract(demo.video("source_dancer"), tmp_path / "transfer", "test", image_size=64, smooth_window=3,
            normalize_to=str(keypoints), normalize_method="edn", write_frames=False, progress=False)
    written = load_keypoint_folder(tmp_path / "transfer" / "test_keypoints")
    mine = [p for p in lesson.after if p is not None]
    assert len(mine) == len(written)
    for a, b in zip(mine, written):
        np.testing.assert_allclose(a.body, b.body, atol=0.01)
    lines = lesson.ankle_lines()
    assert lines["source"][0] <= lines["source"][1] and lines["target"][0] <= lines["target"][1]
    scales = [lesson.scale(i) for i in range(len(lesson.raw))]
    assert all(s is None or s > 0 for s in scales)
    frames = lesson.pick_frames()
    assert 1 <= len(frames) <= 2
    fig = lesson.figure()
    assert len(fig.axes) == 2 * len(frames) + 1
    assert "edn" in lesson.describe()


def test_extraction_lesson_reads_the_detections_extraction_saved(demo, target, monkeypatch):
    """The lesson shows extraction's own raw keypoints (``detections.npz``): the detector does not run again."""
    from dancenow_utils.notebook import lessons
    from dancenow_utils.pose import extract as extract_module
    from dancenow_utils.pose.extract import Detections

    saved = Detections.load(target / "train_keypoints" / "detections.npz")
    assert saved is not None and len(saved.results) == 16
    monkeypatch.setattr(lessons, "detect_frames", lambda *a, **k: pytest.fail("the detector ran again"))
    monkeypatch.setattr(extract_module, "detect", lambda *a, **k: pytest.fail("the detector ran again"))
    lesson = ExtractionLesson.run(demo.video("target_train"), target / "train_keypoints", n_frames=10)
    assert lesson.frame_ids == [r.frame_id for r in saved.results[:10]]
    for mine, theirs in zip(lesson.raw, saved.people()[:10]):
        assert (mine is None) == (theirs is None)
        if mine is not None:
            np.testing.assert_array_equal(mine.body, theirs.body)


def test_extraction_lesson_detects_again_without_saved_detections(demo, target, tmp_path, monkeypatch):
    """Data extracted before detections were saved (or from another frame step): the lesson runs the detector."""
    import shutil

    from dancenow_utils.notebook import lessons

    keypoints = tmp_path / "train_keypoints"
    shutil.copytree(target / "train_keypoints", keypoints)
    (keypoints / "detections.npz").unlink()
    calls = []
    real = lessons.detect_frames
    monkeypatch.setattr(lessons, "detect_frames", lambda *a, **k: calls.append(1) or real(*a, **k))
    truth = demo.keypoints("target_train")
    lesson = ExtractionLesson.run(demo.video("target_train"), keypoints, n_frames=10, json_dir=str(truth))
    assert calls == [1] and len(lesson.raw) == 10


def test_detections_round_trip(tmp_path):
    """Saved detections read back as they were: statuses, sizes, people with and without face and hands."""
    from dancenow_utils.pose.detect import FrameResult
    from dancenow_utils.pose.extract import Detections
    from dancenow_utils.pose.keypoints import Person

    rng = np.random.default_rng(0)
    full = Person(rng.random((25, 3)), rng.random((70, 3)), rng.random((21, 3)), rng.random((21, 3)))
    body = Person(rng.random((25, 3)), right_hand=rng.random((21, 3)))
    results = [FrameResult(0, "frame_000000", "ok", full, (320, 240)),
               FrameResult(1, "frame_000002", "no_person", None, (320, 240), "frame_000002: no person"),
               FrameResult(2, "frame_000004", "ok", body, (320, 240))]
    Detections(results, "clip.mp4", 2, "openpose_json").save(tmp_path / "detections.npz")
    back = Detections.load(tmp_path / "detections.npz")
    assert (back.source, back.frame_step, back.backend) == ("clip.mp4", 2, "openpose_json")
    assert [(r.pos, r.frame_id, r.status, r.size) for r in back.results] == \
        [(r.pos, r.frame_id, r.status, r.size) for r in results]
    assert back.people()[1] is None
    for a, b in ((back.people()[0], full), (back.people()[2], body)):
        for x, y in zip(a.arrays(), b.arrays()):
            assert (x is None) == (y is None)
            if x is not None:
                np.testing.assert_allclose(x, y, rtol=1e-6)
    assert Detections.load(tmp_path / "none.npz") is None
    assert back.is_of("clip.mp4", 2) and not back.is_of("clip.mp4", 1)


def test_normalization_lesson_reads_the_detections_transfer_saved(demo, target, tmp_path, monkeypatch):
    """Given ``prepare_poses``'s ``detections.npz``, the lesson normalises those raw bodies and detects nothing
    again; the result is the one it gets by detecting."""
    from dancenow_utils.layout import DatasetLayout
    from dancenow_utils.notebook import lessons

    keypoints, source = target / "train_keypoints", demo.video("source_dancer")
    extract(source, tmp_path / "transfer", "test", image_size=64, smooth_window=3, normalize_to=str(keypoints),
            normalize_method="edn", write_frames=False, progress=False)
    saved = DatasetLayout(tmp_path / "transfer", "test").detections
    assert saved.exists()
    detected = NormalizationLesson.run(source, keypoints, "edn", smooth_window=3)

    def no_detector(*args, **kwargs):
        raise AssertionError("the lesson ran the detector again")

    monkeypatch.setattr(lessons, "detect", no_detector)
    reused = NormalizationLesson.run(source, keypoints, "edn", smooth_window=3, detections=saved)
    assert len(reused.after) == len(detected.after)
    for a, b in zip(reused.after, detected.after):
        assert (a is None) == (b is None)
        if a is not None:
            np.testing.assert_allclose(a.body, b.body, atol=0.01)
    with pytest.raises(AssertionError, match="again"):  # detections of another source are not used
        NormalizationLesson.run(demo.video("target_train"), keypoints, "edn", smooth_window=3, detections=saved)
