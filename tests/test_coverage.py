"""Pose coverage on hand-made poses and on small keypoint folders; the statistics it reports."""

from __future__ import annotations

import json

import numpy as np
import pytest

from dancenow_utils.evaluation.coverage import (
    BODY_PARTS,
    COVERAGE_JOINTS,
    coverage_report,
    coverage_vs_per_sample,
    coverage_vs_quality,
    load_pose_folder,
    pose_distances,
    reference_height,
    worst_frames,
)
from dancenow_utils.evaluation.stats import average_ranks, pearson, roc_auc, spearman
from dancenow_utils.io_utils import read_image
from dancenow_utils.pose.formats import joint

# A standing figure about 200 px tall (head top y=20, feet y=220), centre x=100, left arm raised, right arm down.
_POINTS = {
    "Nose": (100, 30), "REye": (95, 26), "LEye": (105, 26), "REar": (90, 28), "LEar": (110, 28),
    "Neck": (100, 50), "RShoulder": (80, 52), "LShoulder": (120, 52),
    "RElbow": (75, 85), "RWrist": (72, 115), "LElbow": (140, 30), "LWrist": (150, 5),
    "MidHip": (100, 120), "RHip": (90, 120), "LHip": (110, 120),
    "RKnee": (90, 170), "RAnkle": (90, 215), "LKnee": (110, 170), "LAnkle": (110, 215),
    "LBigToe": (118, 222), "LSmallToe": (120, 221), "LHeel": (108, 220),
    "RBigToe": (82, 222), "RSmallToe": (80, 221), "RHeel": (92, 220),
}


def figure() -> np.ndarray:
    body = np.zeros((25, 3), np.float32)
    for name, (x, y) in _POINTS.items():
        body[joint(name)] = [x, y, 1.0]
    return body


def mirrored(body: np.ndarray, center_x: float = 100.0) -> np.ndarray:
    """Left and right swapped and reflected about the body's vertical axis (the same figure, mirrored)."""
    from dancenow_utils.pose.formats import BODY_25_NAMES

    out = body.copy()
    for i, name in enumerate(BODY_25_NAMES):
        twin = name.replace("L", "#").replace("R", "L").replace("#", "R") if name[0] in "LR" else name
        out[i] = body[BODY_25_NAMES.index(twin)]
        out[i, 0] = 2 * center_x - out[i, 0]
    return out


def train_set() -> np.ndarray:
    """The figure and a few variants (squatting, shifted), never with the right arm raised."""
    base = figure()
    squat = base.copy()
    squat[[joint("RKnee"), joint("LKnee")], 1] -= 10
    shifted = base.copy()
    shifted[:, 0] += 12
    return np.stack([squat, base, shifted])


def test_a_training_pose_scores_zero_and_finds_itself():
    train = train_set()
    res = pose_distances(train, train)
    assert res["nearest"].tolist() == [0, 1, 2]
    assert np.allclose(res["distance"], 0)
    assert all(np.allclose(v, 0) for v in res["parts"].values())
    assert res["scale"] == pytest.approx(196.0)  # eyes (y 26) to toes (y 222): head-to-feet height


def test_a_mirrored_figure_scores_high_in_its_arms():
    res = pose_distances(mirrored(figure())[None], train_set())
    parts = {p: float(v[0]) for p, v in res["parts"].items()}
    assert res["distance"][0] > 0.05  # a raised right arm was never shown
    assert parts["left_arm"] > 0.3 and parts["right_arm"] > 0.3
    assert parts["torso"] < 0.02 and parts["left_leg"] < 0.02 and parts["right_leg"] < 0.02


def test_a_mirrored_limb_shows_in_its_part_only():
    """Swing only the left forearm across the body (arms crossing): only the left arm's distance moves."""
    q = figure()
    for name in ("LElbow", "LWrist"):
        x, y = _POINTS[name]
        q[joint(name), 0] = 2 * 120 - x  # reflected about the left shoulder's vertical line
    res = pose_distances(q[None], train_set())
    assert res["nearest"][0] == 1
    parts = {p: float(v[0]) for p, v in res["parts"].items()}
    assert parts["left_arm"] > 0.15
    assert all(parts[p] == 0 for p in BODY_PARTS if p != "left_arm")
    # the overall distance is the part's excess spread over the counted joints
    assert res["distance"][0] == pytest.approx(parts["left_arm"] * 2 / len(COVERAGE_JOINTS), rel=1e-5)


def test_distances_are_scale_free():
    q = mirrored(figure())[None]
    a = pose_distances(q, train_set())
    b = pose_distances(q * [3, 3, 1], train_set() * [3, 3, 1])
    assert b["scale"] == pytest.approx(3 * a["scale"])
    assert np.allclose(a["distance"], b["distance"]) and np.allclose(a["parts"]["left_arm"], b["parts"]["left_arm"])


def test_missing_joints():
    train = train_set()
    empty = np.zeros((1, 25, 3), np.float32)
    res = pose_distances(empty, train)
    assert res["nearest"][0] == -1 and np.isnan(res["distance"][0])
    no_left_arm = figure()
    no_left_arm[[joint("LElbow"), joint("LWrist")], 2] = 0
    res = pose_distances(no_left_arm[None], train)
    assert res["parts"]["left_arm"][0] == pytest.approx(0.25)  # missing on one side: MISSING_COST each
    assert res["parts"]["torso"][0] == 0
    with pytest.raises(ValueError, match=r"\(N, 25, 3\)"):
        pose_distances(np.zeros((2, 18, 3)), train)
    with pytest.raises(ValueError, match="no training pose"):
        reference_height(empty)


def test_worst_frames_skip_neighbours():
    d = np.array([0.1, 0.9, 0.8, 0.7, 0.05, 0.6, np.nan, 0.2])
    assert worst_frames(d, k=3, min_gap=1) == [1, 3, 5]
    assert worst_frames(d, k=10, min_gap=0) == [1, 2, 3, 5, 7, 0, 4]


def test_statistics_match_their_definitions():
    assert average_ranks(np.array([10, 20, 20, 5])).tolist() == [2, 3.5, 3.5, 1]
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=50), rng.normal(size=50)
    assert pearson(x, y) == pytest.approx(np.corrcoef(x, y)[0, 1])
    assert spearman(x, np.exp(x)) == pytest.approx(1.0)
    assert roc_auc([0, 0, 1, 1], [0.1, 0.2, 0.3, 0.4]) == 1.0
    assert roc_auc([0, 0, 1, 1], [0.4, 0.3, 0.2, 0.1]) == 0.0
    assert roc_auc([0, 1, 0, 1], [0.5, 0.5, 0.5, 0.5]) == 0.5
    assert roc_auc([0, 0, 1], [0.1, 0.3, 0.2]) == 0.5
    out = coverage_vs_quality([0.1, 0.2, np.nan, 0.3, 0.4], [0.9, 0.8, 0.5, 0.75, 0.3])
    assert out["n"] == 4 and out["spearman"] == -1.0 and out["pearson"] < -0.8
    assert coverage_vs_quality([1, 1, 1], [1, 2, 3])["pearson"] is None


# ------------------------------------------------------------------------------------------ keypoint folders
def _write_folder(root, phase, bodies, crop, frames=False):
    """A ``{phase}_keypoints`` folder as pose extraction writes it (and ``{phase}_B`` frames if asked)."""
    from dancenow_utils.io_utils import write_image
    from dancenow_utils.pose.keypoints import Person, write_openpose_json

    kdir = root / f"{phase}_keypoints"
    names = [f"frame_{i:06d}" for i in range(len(bodies))]
    for n, b in zip(names, bodies):
        write_openpose_json(kdir / f"{n}_keypoints.json", [Person(b)])
        if frames:
            write_image(root / f"{phase}_B" / f"{n}.png", np.full((64, 64, 3), 90, np.uint8))
    crop.save(kdir / "crop.json")
    return kdir


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    """Training poses of the synthetic dancer, and a query: 6 training poses then 10 held-out ones."""
    from dancenow_utils.pose.crop import Crop
    from dancenow_utils.synthetic.character import TARGET_STYLE, skeleton
    from dancenow_utils.synthetic.dance import dance_trajectory

    def bodies(n, seed, combos):
        return [skeleton(TARGET_STYLE, p, 256, 256).person().body for p in dance_trajectory(n, seed, combos)]

    root = tmp_path_factory.mktemp("cov")
    train = bodies(60, 0, "train")
    crop = Crop(20.0, 10.0, 64 / 230, 64, 64)  # a 230 px square of the 256 px frames, drawn at 64 px
    tk = _write_folder(root / "dataset", "train", train, crop, frames=True)
    qk = _write_folder(root / "dataset_transfer", "test", train[:6] + bodies(10, 1, "heldout"), crop)
    return tk, qk


def test_load_pose_folder_maps_through_the_crop(folders):
    tk, _ = folders
    ps = load_pose_folder(tk)
    assert ps.size == (64, 64) and len(ps.names) == 60 and ps.bodies.shape == (60, 25, 3)
    assert ps.bodies[:, :19, :2].max() <= 64 and ps.sibling("_B") is not None and ps.sibling("_A") is None
    big = load_pose_folder(tk, size=(128, 128))
    assert np.allclose(big.bodies[..., :2], 2 * ps.bodies[..., :2], atol=1e-3)
    with pytest.raises(ValueError, match="_keypoints"):
        load_pose_folder(tk.parent / "train_B")


def test_coverage_report_writes_valid_files(folders, tmp_path):
    tk, qk = folders
    rep = coverage_report(qk, tk, tmp_path / "out", threshold=0.02, n_worst=4, min_gap=1)
    data = json.loads(rep.json_path.read_text())
    assert data["n_frames"] == 16 and len(data["frames"]) == 16 and data["unit"].startswith("fraction")
    first = data["frames"][0]
    assert set(first) == {"name", "distance", "parts", "worst_part", "nearest", "flagged"}
    assert set(first["parts"]) == set(BODY_PARTS)
    assert [f["distance"] for f in data["frames"][:6]] == [0.0] * 6  # training poses are covered
    assert [f["nearest"] for f in data["frames"][:6]] == [f"frame_{i:06d}" for i in range(6)]
    assert all(f["flagged"] == (f["distance"] > 0.02) for f in data["frames"])
    assert data["n_flagged"] == int(rep.flagged.sum()) > 0 and not rep.flagged[:6].any()
    assert len(data["worst"]) == 4 and all(n >= "frame_000006" for n in data["worst"])
    curve, sheet = read_image(rep.curve_path), read_image(rep.sheet_path)
    assert curve.shape[0] > 300 and sheet.shape == (2 * 128 + 2, 6 * 128 + 5 * 2, 3)
    assert not [p for p in rep.out_dir.iterdir() if p.name.startswith(".")]  # no temp files left behind
    assert "frames" in rep.summary() and "worst part" in rep.summary()


def test_coverage_against_per_sample_quality(folders, tmp_path):
    tk, qk = folders
    rep = coverage_report(qk, tk, tmp_path / "out", threshold=0.02)
    # a made-up per-sample CSV whose quality falls with the distance (and one frame the report lacks)
    rows = ["name,ssim,body_ssim"] + [f"{n},0.9,{0.9 - d:.5f}" for n, d in zip(rep.names, rep.distance)]
    (tmp_path / "per_sample.csv").write_text("\n".join(rows + ["other,0.5,0.5"]) + "\n")
    out = coverage_vs_per_sample(rep, tmp_path / "per_sample.csv")
    assert out["n"] == 16 and out["spearman"] == -1.0 and out["pearson"] == -1.0
    assert out["above_threshold_n"] == int(rep.flagged.sum())
    assert out["above_threshold_mean"] < out["below_threshold_mean"]
    with pytest.raises(KeyError, match="no column"):
        coverage_vs_per_sample(rep, tmp_path / "per_sample.csv", column="lpips")


def test_a_wide_crop_keeps_its_aspect_in_the_sheet(tmp_path):
    """EDN presets train on 2:1 images: poses map through the wide crop, and sheet tiles are 2:1 too."""
    from dancenow_utils.pose.crop import Crop

    bodies = [figure(), mirrored(figure())]
    crop = Crop(-100.0, 0.0, 0.25, 128, 64)  # a 512 x 256 region of the frame, drawn at 128 x 64
    tk = _write_folder(tmp_path / "dataset", "train", bodies[:1], crop)
    qk = _write_folder(tmp_path / "dataset_transfer", "test", bodies, crop)
    rep = coverage_report(qk, tk, tmp_path / "out", tile=64, n_worst=2, min_gap=0)
    assert rep.distance[0] == 0 and rep.distance[1] > 0.05 and rep.flagged.tolist() == [False, True]
    assert read_image(rep.sheet_path).shape == (64, 6 * 128 + 5 * 2, 3)
