"""The LiteRT pose backend: MediaPipe's ROI geometry and decoding, and where its model files come from."""

from __future__ import annotations

import math
import shutil
import zipfile

import numpy as np
import pytest

from dancenow_utils.pose import tflite_models
from dancenow_utils.pose.blazepose import (
    FACE_ANCHORS,
    POSE_ANCHORS,
    Holistic,
    Roi,
    crop,
    decode_detections,
    refine_from_heatmap,
    rotation,
    ssd_anchors,
    weighted_nms,
)
from dancenow_utils.pose.tflite_models import MODEL_FILES, ModelsNotFoundError, model_paths, unpack_wheel


# ------------------------------------------------------------------------------------------------ geometry
def test_anchor_counts_match_the_models_outputs():
    assert POSE_ANCHORS.shape == (2254, 2)  # pose_detection.tflite: (1, 2254, 12)
    assert FACE_ANCHORS.shape == (896, 2)  # face_detection_short_range.tflite: (1, 896, 16)
    a = ssd_anchors(32, (8, 16, 16))
    assert len(a) == 4 * 4 * 2 + 2 * 2 * 4
    np.testing.assert_allclose(a[0], [1 / 8, 1 / 8])
    np.testing.assert_allclose(a[1], [1 / 8, 1 / 8])  # two anchors per cell and layer
    np.testing.assert_allclose(a[2], [3 / 8, 1 / 8])  # then the next cell to the right


def test_rotation_turns_the_vector_to_its_target():
    up = rotation(np.array([50.0, 80.0]), np.array([50.0, 20.0]), 90)  # pointing up already: no rotation
    assert abs(up) < 1e-9
    right = rotation(np.array([0.0, 0.0]), np.array([10.0, 0.0]), 90)  # pointing right: a quarter turn
    assert math.isclose(right, math.pi / 2)
    roi = Roi(0, 0, 2, 2, right)
    # the ROI's "up" (fraction y = 0) lies along the original vector's direction
    tip = roi.to_image(np.array([[0.5, 0.0]]))[0]
    np.testing.assert_allclose(tip, [1.0, 0.0], atol=1e-6)


def test_transform_shifts_along_the_rotated_axis_and_squares():
    roi = Roi(100, 100, 40, 20, math.pi / 2).transformed(2.0, shift_y=-0.1)
    assert roi.w == roi.h == 80
    np.testing.assert_allclose([roi.cx, roi.cy], [102, 100])  # rotated a quarter: y shift moves along +x


def test_crop_and_projection_agree():
    """A bright pixel cropped through a rotated ROI appears where the ROI's projection says it is."""
    img = np.zeros((120, 160, 3), np.uint8)
    img[30, 100] = 255
    roi = Roi(90, 40, 64, 64, 0.4)
    t = crop(img, roi, 64, signed=False, zero_border=True)
    v, u = np.unravel_index(np.argmax(t[..., 0]), t.shape[:2])
    back = roi.to_image(np.array([[(u + 0.5) / 64, (v + 0.5) / 64]]))[0]
    assert np.hypot(*(back - [100.5, 30.5])) < 1.5  # pixel (100, 30) spans 100..101 in edge coordinates
    assert t.min() >= 0 and t.max() <= 1
    signed = crop(img, roi, 64, signed=True, zero_border=True)
    assert signed.min() == -1 and signed.max() <= 1


def test_letterbox_keeps_the_aspect_ratio():
    roi = Roi(80, 60, 160, 120).fitted(224, 224)
    assert roi.w == roi.h == 160
    tall = Roi(10, 10, 20, 60).fitted(256, 128)
    assert (tall.w, tall.h) == (120, 60)


def test_weighted_nms_merges_overlaps_and_keeps_separate_boxes():
    boxes = np.array([[0, 0, 1, 1], [0.05, 0, 1.05, 1], [3, 3, 4, 4]], np.float32)
    kps = np.array([[[0, 0]], [[1, 1]], [[5, 5]]], np.float32)
    out = weighted_nms(np.array([0.9, 0.6, 0.7]), boxes, kps, 0.3)
    assert [round(d.score, 2) for d in out] == [0.9, 0.7]
    np.testing.assert_allclose(out[0].keypoints[0], [0.4, 0.4])  # score-weighted mean of the merged pair
    np.testing.assert_allclose(out[1].box, boxes[2])


def test_decode_reads_boxes_relative_to_anchors():
    anchors = np.array([[0.25, 0.25], [0.75, 0.75]], np.float32)
    raw = np.zeros((2, 6), np.float32)
    raw[1] = [10, -10, 64, 32, 0, 16]  # centre shifted, 64 x 32 px in a 128 px input; one keypoint
    scores = np.array([[-5.0], [5.0]], np.float32)
    (det,) = decode_detections(raw, scores, anchors, 128, 1)
    np.testing.assert_allclose(det.box, [0.75 + 10 / 128 - 0.25, 0.75 - 10 / 128 - 0.125,
                                         0.75 + 10 / 128 + 0.25, 0.75 - 10 / 128 + 0.125], atol=1e-6)
    np.testing.assert_allclose(det.keypoints[0], [0.75, 0.75 + 16 / 128], atol=1e-6)
    assert det.score > 0.99


def test_heatmap_refinement_moves_to_a_confident_peak_only():
    hm = np.full((64, 64, 2), -10.0, np.float32)
    hm[20, 30, 0] = 10  # a confident peak near landmark 0; landmark 1's channel is flat and unsure
    xy = np.array([[31 / 64, 21 / 64], [0.5, 0.5]], np.float32)
    out = refine_from_heatmap(xy, hm)
    np.testing.assert_allclose(out[0], [30 / 64, 20 / 64], atol=1e-3)
    np.testing.assert_allclose(out[1], xy[1])


# ------------------------------------------------------------------------------------------------ the networks
@pytest.fixture(scope="module")
def models():
    return model_paths()


def test_holistic_on_a_real_photo(models):
    from skimage import data

    rgb = data.astronaut()
    res = Holistic(models, video=False, segmentation=True)(rgb)
    lm = res.body.landmarks
    h, w = rgb.shape[:2]
    nose, shoulders = lm[0], lm[[11, 12]]
    assert lm[0, 3] > 0.9 and (shoulders[:, 1] > nose[1]).all()  # visible nose above both shoulders
    assert 150 < nose[0] < 350 and 50 < nose[1] < 250  # her face is in the upper middle of the photo
    assert res.face is not None and res.face.shape == (468, 3)
    assert np.linalg.norm(np.median(res.face[:, :2], axis=0) - nose[:2]) < 40
    mask = res.body.segmentation
    assert mask.shape == (h, w) and mask[int(nose[1]), int(nose[0])] > 0.5 and mask[5, 5] < 0.5


def test_tracking_follows_and_reset_forgets(models, tiny_demo):
    """Video mode finds the body from the previous frame's points, where still mode detects it afresh."""
    from dancenow_utils.video import read_frames

    tracked = Holistic(models, face=False, hands=False, video=True)
    still = Holistic(models, face=False, hands=False, video=False)
    core = [0, 11, 12, 23, 24]  # nose, shoulders, hips
    for i, rgb in read_frames(tiny_demo.video("target_train"), max_frames=8):
        a, b = tracked(rgb).body, still(rgb).body
        if i > 0:
            assert tracked._track is not None and still._track is None
        np.testing.assert_allclose(a.landmarks[core, :2], b.landmarks[core, :2], atol=4)  # 128 px frames
    tracked.reset()
    assert tracked._track is None
    assert tracked(np.zeros((64, 64, 3), np.uint8)).body is None


# ------------------------------------------------------------------------------------------------ model files
def _wheel(tmp_path, files, corrupt: str = ""):
    path = tmp_path / "mediapipe-0.10.14-cp312-cp312-manylinux_2_17_x86_64.whl"
    with zipfile.ZipFile(path, "w") as z:
        for name, (inner, _) in MODEL_FILES.items():
            z.writestr(inner, b"not a model" if name == corrupt else files[name].read_bytes())
    return path


def test_models_from_a_wheel_a_folder_and_the_environment(models, tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    got = model_paths(_wheel(tmp_path, models))
    assert set(got) == set(MODEL_FILES) and all(p.parent == tflite_models.cache_dir() for p in got.values())
    flat = tmp_path / "flat"
    flat.mkdir()
    for name, path in models.items():
        shutil.copy(path, flat / name)
    monkeypatch.setenv(tflite_models.ENV_VAR, str(flat))
    assert model_paths() == {name: flat / name for name in MODEL_FILES}


def test_bad_model_files_are_refused_by_name(models, tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    with pytest.raises(ModelsNotFoundError, match="hand_recrop.tflite.*SHA-256"):
        unpack_wheel(_wheel(tmp_path, models, corrupt="hand_recrop.tflite"), tmp_path / "out")
    assert not (tmp_path / "out" / "hand_recrop.tflite").exists()
    with pytest.raises(ModelsNotFoundError, match="not a readable wheel"):
        model_paths(tmp_path / "missing.whl")
    partial = tmp_path / "partial"
    partial.mkdir()
    shutil.copy(models["pose_detection.tflite"], partial / "pose_detection.tflite")
    with pytest.raises(ModelsNotFoundError, match="holds not all of"):
        model_paths(partial)
    (partial / "pose_landmark_full.tflite").write_bytes(b"x")
    for name, path in models.items():
        if name != "pose_landmark_full.tflite":
            shutil.copy(path, partial / name)
    with pytest.raises(ModelsNotFoundError, match="pose_landmark_full.tflite: not the"):
        model_paths(partial)


def test_offline_without_models_says_where_to_put_them(tmp_path, monkeypatch):
    """A real pip download with no index reachable fails; the error names the files, the variable and the cache."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.delenv(tflite_models.ENV_VAR, raising=False)
    monkeypatch.setattr(tflite_models, "_installed_mediapipe", lambda: None)
    monkeypatch.setenv("PIP_NO_INDEX", "1")
    monkeypatch.setenv("PIP_FIND_LINKS", str(tmp_path))
    with pytest.raises(ModelsNotFoundError) as err:
        model_paths(quiet=True)
    msg = str(err.value)
    assert "pose_landmark_full.tflite" in msg and tflite_models.ENV_VAR in msg and str(tmp_path / "cache") in msg
    with pytest.raises(ModelsNotFoundError, match="python -m dancenow_utils.pose.tflite_models"):
        model_paths(fetch=False)
    assert not list((tmp_path / "cache").rglob("*.tflite"))  # nothing half-written left in the cache
