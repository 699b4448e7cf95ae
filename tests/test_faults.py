"""Bad input and faults, as a new user meets them (issue 11): every case asserts the message the user reads and,
where something was written before, that it is still byte-identical afterwards.

Sections follow the issue's numbered items. Data is tiny: the session's 128 px demo, 64 px training images, the
``tiny`` preset, one or two iterations; the demo generator's hard footage at 128 px, 24 frames per clip.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import signal
from pathlib import Path

import numpy as np
import pytest
import torch

from dancenow_utils import checkpoint as checkpoint_module
from dancenow_utils.checkpoint import load_checkpoint, save_checkpoint
from dancenow_utils.config import make_config, parse_key_values
from dancenow_utils.data.datasets import AlignedDataset
from dancenow_utils.evaluation.crossval import evaluate
from dancenow_utils.io_utils import write_image
from dancenow_utils.layout import DatasetLayout, RunLayout, checkpoint_tag
from dancenow_utils.models.inference import load_generator
from dancenow_utils.pose import extract as extract_module
from dancenow_utils.pose.crop import Crop, normalisation_target, people_in_image
from dancenow_utils.pose.cuts import CUT_MARGIN, find_cuts
from dancenow_utils.pose.extract import ExtractionWarning, extract
from dancenow_utils.pose.keypoints import read_openpose_json, write_openpose_json
from dancenow_utils.pose.settings import PoseSettings
from dancenow_utils.synthetic.hard import make_hard_footage
from dancenow_utils.training.cli import main as train_cli
from dancenow_utils.training.snapshots import learn_with_snapshots
from dancenow_utils.training.stages import build_trainer
from dancenow_utils.training.trainer import Trainer
from dancenow_utils.transfer.pose_transfer import run_transfer
from dancenow_utils.video import read_frames

HARD_FRAMES = 24


# ------------------------------------------------------------------------------------------------------ helpers
def snap(root: Path) -> dict[str, bytes]:
    """Every file under ``root`` (relative path -> bytes): what must stay byte-identical."""
    root = Path(root)
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def tiny(**kw):
    return make_config("tiny", {"max_dataset_size": 4, **kw})


def train(dataroot: Path, ck: Path, name: str, iterations: int = 2, **kw) -> Trainer:
    tr = build_trainer(tiny(**kw), dataroot, name, ck, resume=False, progress=False)
    tr.train(max_iterations=iterations)
    return tr


def gt_extract(video: Path, keypoints: Path, dataroot: Path, **kw):
    """Extraction from ground-truth JSON (the openpose_json backend: no detector, fast and exact)."""
    return extract(video, dataroot, backend="openpose_json", keypoints_dir=str(keypoints), image_size=64,
                   progress=False, **kw)


def json_person(values) -> dict:
    return {"people": [{"pose_keypoints_2d": values}]}


@pytest.fixture(scope="module")
def hard(tmp_path_factory):
    """The demo generator's hard footage, small."""
    return make_hard_footage(tmp_path_factory.mktemp("hard"), size=128, n_frames=HARD_FRAMES, seed=0,
                             progress=False)


@pytest.fixture(scope="module")
def trained(tiny_dataset, tmp_path_factory):
    """A tiny trained run ``m`` (2 iterations) for the transfer and evaluation cases."""
    ck = tmp_path_factory.mktemp("ck")
    train(tiny_dataset / "dataset", ck, "m")
    return ck


@pytest.fixture(scope="module")
def gt_frames(tiny_demo, tmp_path_factory):
    """Six demo frames as PNG images with their ground-truth JSON (names f0..f5)."""
    root = tmp_path_factory.mktemp("gt")
    frames, kp = root / "frames", root / "json"
    kp.mkdir()
    for i, rgb in read_frames(tiny_demo.video("target_train"), max_frames=6):
        write_image(frames / f"f{i}.png", rgb)
        shutil.copy(tiny_demo.keypoints("target_train") / f"frame_{i:06d}_keypoints.json", kp / f"f{i}_keypoints.json")
    return frames, kp


# ============================================================================ 1. notebook 05 and existing runs
def test_1_snapshots_refuse_a_trained_run_and_leave_it_byte_identical(tiny_dataset, tmp_path):
    train(tiny_dataset / "dataset", tmp_path, "mine")
    before = snap(tmp_path / "mine")
    with pytest.raises(ValueError, match="holds a trained run.*Choose another name"):
        learn_with_snapshots(tiny(), tiny_dataset / "dataset", "mine", iterations=2, snapshot_every=1,
                             checkpoints_dir=tmp_path, progress=False)
    assert snap(tmp_path / "mine") == before


@pytest.mark.parametrize("kw,name", [({"iterations": 0}, "iterations"), ({"snapshot_every": 0}, "snapshot_every"),
                                     ({"iterations": 2.5}, "iterations"), ({"n_samples": 0}, "n_samples")])
def test_1_snapshot_parameters_are_checked_before_any_work(tiny_dataset, tmp_path, kw, name):
    args = {"iterations": 2, "snapshot_every": 1, **kw}
    with pytest.raises(ValueError, match=f"^{name} must be"):
        learn_with_snapshots(tiny(), tiny_dataset / "dataset", "snap", checkpoints_dir=tmp_path, progress=False,
                             **args)
    assert not (tmp_path / "snap").exists()


# ================================================================================ 2. resume=False moves aside
def test_2_resume_false_moves_the_previous_run_aside(tiny_dataset, tmp_path, capsys):
    train(tiny_dataset / "dataset", tmp_path, "r")
    (tmp_path / "r" / "global").mkdir()  # a local enhancer's global stage stays where it is
    (tmp_path / "r" / "global" / "latest_G.pth").write_bytes(b"global stage")
    before = snap(tmp_path / "r")
    capsys.readouterr()
    tr = build_trainer(tiny(), tiny_dataset / "dataset", "r", tmp_path, resume=False, progress=False)
    assert f"moved to {tr.moved_aside}" in capsys.readouterr().out
    moved = snap(tr.moved_aside)
    assert moved == {k: v for k, v in before.items() if not k.startswith("global")}
    assert (tmp_path / "r" / "global" / "latest_G.pth").read_bytes() == b"global stage"
    assert not (tmp_path / "r" / "latest.pth").exists()


# ======================================================================= 3. another dataset under a run's name
@pytest.fixture(scope="module")
def finished(tiny_dataset, tmp_path_factory):
    """A run trained to its end (1 epoch of 2 batches) on the tiny dataset."""
    ck = tmp_path_factory.mktemp("finished")
    build_trainer(tiny(niter=1, niter_decay=0), tiny_dataset / "dataset", "demo", ck, resume=False,
            progress=False).train()
    return ck


def test_3_another_dataset_under_a_finished_runs_name_is_refused(tiny_dataset, finished, tmp_path):
    other = tmp_path / "mine"
    shutil.copytree(tiny_dataset / "dataset", other)
    for sub in ("train_A", "train_B"):
        for f in sorted((other / sub).iterdir())[:3]:
            f.unlink()
    before = snap(finished / "demo")
    with pytest.raises(ValueError, match="was trained on .*not on .*mine.*new name.*resume=False"):
        build_trainer(tiny(niter=1, niter_decay=0), other, "demo", finished, resume=True, progress=False)
    assert snap(finished / "demo") == before


def test_3_a_finished_run_says_there_is_nothing_left_to_do(tiny_dataset, finished, capsys):
    before = snap(finished / "demo")
    tr = build_trainer(tiny(niter=1, niter_decay=0), tiny_dataset / "dataset", "demo", finished, resume=True,
                 progress=False)
    assert tr.train() == {}
    assert "nothing left to do" in capsys.readouterr().out
    assert snap(finished / "demo") == before


# ============================================================================= 4. independent image folders
PLACEMENTS = {"a": ((128, 128), 1.0, (0, 0)), "b": ((240, 140), 1.0, (100, 6)), "c": ((100, 180), 0.75, (2, 80)),
              "d": ((200, 200), 1.5, (5, 5))}


@pytest.fixture(scope="module")
def mixed(tiny_demo, tmp_path_factory):
    """Demo frames pasted into images of four sizes and framings, with their ground truth, extracted as
    independent images (MediaPipe, still-image mode)."""
    import cv2

    root = tmp_path_factory.mktemp("mixed")
    frames = [rgb for _, rgb in read_frames(tiny_demo.video("target_train"), frame_step=9, max_frames=4)]
    truth = {}
    for (name, ((w, h), s, (ox, oy))), rgb, i in zip(PLACEMENTS.items(), frames, range(0, 36, 9)):
        canvas = np.full((h, w, 3), rgb[0, 0], np.uint8)
        small = cv2.resize(rgb, None, fx=s, fy=s, interpolation=cv2.INTER_AREA)
        canvas[oy: oy + small.shape[0], ox: ox + small.shape[1]] = small[: h - oy, : w - ox]
        write_image(root / "photos" / f"{name}.png", canvas)
        gt = read_openpose_json(tiny_demo.keypoints("target_train") / f"frame_{i:06d}_keypoints.json")[0]
        truth[name] = gt.transformed(s, (ox, oy))
    summary = extract(root / "photos", root / "ds", image_size=64, workers=1, progress=False)
    return root, truth, summary


def test_4_image_folders_are_independent_images_each_with_its_own_crop(mixed):
    root, truth, summary = mixed
    layout = DatasetLayout(root / "ds")
    assert summary.written == 4 and not summary.sequence and "as independent images" in str(summary)
    assert layout.crops.exists() and not layout.crop.exists()
    assert PoseSettings.load(layout.settings).sequence is False
    assert PoseSettings.load(layout.settings).smooth_window == 1
    crops = json.loads(layout.crops.read_text())
    assert sorted(crops) == sorted(PLACEMENTS) and len({round(c["scale"], 3) for c in crops.values()}) > 1


def test_4_stick_figures_sit_on_the_body_in_images_of_mixed_sizes(mixed):
    """Keypoints read back in training-image pixels (as training, evaluation and the face stage read them) land
    on the ground truth mapped with each image's own crop."""
    root, truth, _ = mixed
    layout = DatasetLayout(root / "ds")
    names = sorted(PLACEMENTS)
    found = people_in_image(layout, names, 64, 64)
    crops = json.loads(layout.crops.read_text())
    for name, p in zip(names, found):
        gt = Crop(**crops[name]).apply_person(truth[name])
        err = np.linalg.norm(p.body[:15, :2] - gt.body[:15, :2], axis=1)
        assert np.median(err) < 3.0, (name, np.median(err))  # pixels of a 64 px image


@pytest.mark.parametrize("sequence,same", [(False, True), (True, False)])
def test_4_neighbouring_images_change_nothing_unless_a_sequence(gt_frames, tmp_path, sequence, same):
    """Independent images are not smoothed together: replacing one image's keypoints leaves the others' JSON
    byte-identical; as a sequence (sequence=True) the neighbours' smoothed keypoints change."""
    frames, kp = gt_frames
    other = tmp_path / "json2"
    shutil.copytree(kp, other)
    moved = read_openpose_json(kp / "f2_keypoints.json")[0].transformed(1.0, (9.0, -7.0))
    write_openpose_json(other / "f2_keypoints.json", [moved])
    for folder, out in ((kp, "one"), (other, "two")):
        extract(frames, tmp_path / out, backend="openpose_json", keypoints_dir=str(folder), image_size=64,
                smooth_window=7, sequence=sequence, progress=False)
    a = (tmp_path / "one" / "train_keypoints" / "f1_keypoints.json").read_bytes()
    b = (tmp_path / "two" / "train_keypoints" / "f1_keypoints.json").read_bytes()
    assert (a == b) is same


def test_4_a_sequence_of_images_of_different_sizes_is_refused(mixed, tmp_path):
    root, _, _ = mixed
    with pytest.raises(ValueError, match=r"sequence=True, but the images differ in size \(a is 128x128, b is 240x1"):
        extract(root / "photos", tmp_path / "ds", image_size=64, sequence=True, progress=False)
    assert not (tmp_path / "ds").exists()


def test_4_normalising_independent_images_is_refused(gt_frames, tiny_dataset, tmp_path):
    frames, kp = gt_frames
    with pytest.raises(ValueError, match="normalize_to needs the frames of one video.*sequence=True"):
        extract(frames, tmp_path / "ds", backend="openpose_json", keypoints_dir=str(kp),
                normalize_to=str(tiny_dataset / "dataset" / "train_keypoints"), progress=False)


def test_4_temporal_training_on_independent_images_is_refused(mixed, tmp_path):
    root, _, _ = mixed
    with pytest.raises(ValueError, match="temporal=True learns from consecutive frames.*sequence=False"):
        build_trainer(tiny(temporal=True), root / "ds", "t", tmp_path, resume=False, progress=False)


def test_4_a_target_of_independent_images_normalises_in_image_pixels(mixed):
    root, _, _ = mixed
    people, crop = normalisation_target(root / "ds" / "train_keypoints")
    assert (crop.x0, crop.y0, crop.scale, crop.size) == (0.0, 0.0, 1.0, (64, 64))
    pts = np.concatenate([p.body[p.body[:, 2] > 0.5, :2] for p in people if p is not None])
    assert pts.min() > -8 and pts.max() < 72  # every image's pose inside its own 64 px image


def test_4_pose_coverage_reads_per_image_crops(mixed):
    from dancenow_utils.evaluation.coverage import load_pose_folder

    root, _, _ = mixed
    poses = load_pose_folder(root / "ds" / "train_keypoints")
    assert poses.size == (64, 64) and len(poses.names) == 4
    found = poses.bodies[:, :15]
    assert (found[found[..., 2] > 0.5][:, :2] > -8).all() and (found[found[..., 2] > 0.5][:, :2] < 72).all()


@pytest.mark.parametrize("value", ["yes", 1, 0.0])
def test_4_sequence_must_be_true_or_false(gt_frames, tmp_path, value):
    frames, _ = gt_frames
    with pytest.raises(ValueError, match="^sequence must be True or False"):
        extract(frames, tmp_path / "ds", sequence=value, progress=False)


# ======================================================================== 5. several people, cuts, close-ups
def test_5_the_demo_generator_makes_the_hard_footage_deterministically(hard, tmp_path):
    again = make_hard_footage(tmp_path / "again", size=128, n_frames=HARD_FRAMES, seed=0, progress=False)
    assert snap(again.root) == snap(hard.root)
    people = {clip: hard.truth(clip)["people"] for clip in ("two_people", "crowd", "cuts", "closeup")}
    assert people["two_people"][0] == 1 and people["two_people"][-1] == 2
    assert min(people["crowd"]) >= 5 and set(people["cuts"]) == set(people["closeup"]) == {1}
    assert len(hard.truth("cuts")["cuts"]) == 3
    closeup = read_openpose_json(hard.keypoints("closeup") / "frame_000000_keypoints.json")[0]
    assert closeup.body[[11, 14], 2].tolist() == [0, 0] and closeup.body[[2, 5], 2].tolist() == [1, 1]


def _people_with_head(hard, clip: str, i: int) -> int:
    """People in frame ``i`` with their head and at least 8 body joints in view."""
    people = read_openpose_json(hard.keypoints(clip) / f"frame_{i:06d}_keypoints.json")
    return sum(int((p.body[:, 2] > 0).sum()) >= 8 and p.body[0, 2] > 0 for p in people)


def test_5_frames_with_two_people_are_never_written(hard, tmp_path):
    """People are counted from bodies; a second person counts once its head is in view (bench/RESULTS.md)."""
    truth = hard.truth("two_people")["people"]
    s = extract(hard.video("two_people"), tmp_path / "ds", image_size=64, workers=1, progress=False)
    written = [int(p.stem.split("_")[1]) for p in (tmp_path / "ds" / "train_A").iterdir()]
    assert written and all(_people_with_head(hard, "two_people", i) == 1 for i in written)
    assert s.multiple >= HARD_FRAMES - truth.index(2) - 1 and "several people" in str(s)
    assert len(written) >= 0.5 * truth.count(1)


def test_5_a_crowd_of_small_people_is_not_taken_for_one_person(hard, tiny_demo, tmp_path):
    gt_extract(tiny_demo.video("target_heldout"), tiny_demo.keypoints("target_heldout"), tmp_path / "ds")
    before = snap(tmp_path / "ds")
    with pytest.raises(ValueError, match=rf"Of {HARD_FRAMES} frames: several people \d+.*"
                                         "learns one person"):
        extract(hard.video("crowd"), tmp_path / "ds", image_size=64, workers=1, progress=False)
    assert snap(tmp_path / "ds") == before


def test_5_shot_cuts_are_found_skipped_and_reported(hard, tmp_path):
    cuts = hard.truth("cuts")["cuts"]
    with pytest.warns(ExtractionWarning, match=rf"{len(cuts)} shot cut\(s\) found.*cut the video into shots"):
        s = extract(hard.video("cuts"), tmp_path / "ds", image_size=64, workers=1, progress=False)
    assert s.cuts == [f"frame_{c:06d}" for c in cuts]
    assert s.near_cut == CUT_MARGIN * len(cuts) and f"next to a shot cut: {s.near_cut}" in str(s)
    written = {p.stem for p in (tmp_path / "ds" / "train_A").iterdir()}
    assert not written & {f"frame_{c + k:06d}" for c in cuts for k in range(CUT_MARGIN)}
    assert json.loads((tmp_path / "ds" / "train_keypoints" / "summary.json").read_text())["cuts"] == s.cuts


def test_5_upper_body_close_ups_are_kept(hard, tmp_path):
    s = extract(hard.video("closeup"), tmp_path / "ds", image_size=64, workers=1, progress=False)
    assert s.written >= 0.9 * HARD_FRAMES and not s.cuts


@pytest.mark.parametrize("changes,cuts", [
    ([np.nan, 0.01, 0.012, 0.011, 0.2, 0.01, 0.012, 0.01], [4]),  # one jump
    ([np.nan] + [0.06 + 0.002 * k for k in range(10)], []),  # steady big motion (someone walking in)
    ([np.nan, 0.01, 0.3, 0.01, 0.01, 0.01, 0.25, 0.01], [2, 6]),  # two cuts
    ([np.nan, 0.01, 0.04, 0.01], []),  # a small jump
])
def test_5_cut_detection_on_known_change_series(changes, cuts):
    assert find_cuts(changes) == cuts


# ======================================================================================= 6. poses off the crop
def _target_with_crop(tiny_dataset, tmp_path, shift_x: float, shift_y: float) -> Path:
    target = tmp_path / "target" / "train_keypoints"
    shutil.copytree(tiny_dataset / "dataset" / "train_keypoints", target)
    crop = Crop.load(target / "crop.json")
    region = crop.height / crop.scale
    Crop(crop.x0 + shift_x * region, crop.y0 + shift_y * region, crop.scale, crop.width, crop.height).save(
        target / "crop.json")
    return target


def test_6_poses_landing_outside_the_targets_crop_are_refused_with_counts(tiny_demo, tiny_dataset, tmp_path):
    video, kp = tiny_demo.video("source_dancer"), tiny_demo.keypoints("source_dancer")
    gt_extract(video, kp, tmp_path / "dt", phase="test", write_frames=False,
               normalize_to=str(tiny_dataset / "dataset" / "train_keypoints"))
    before = snap(tmp_path / "dt")
    far = _target_with_crop(tiny_dataset, tmp_path, 5.0, 0.0)
    with pytest.raises(ValueError, match=r"24 of 24 normalised poses fall entirely outside the target's crop.*"
                                         r"first: frame_000000.*nothing was written.*normalize_method='project'"):
        gt_extract(video, kp, tmp_path / "dt", phase="test", write_frames=False, normalize_to=str(far))
    assert snap(tmp_path / "dt") == before


def test_6_poses_partly_outside_the_crop_are_counted_in_a_warning(tiny_demo, tiny_dataset, tmp_path):
    low = _target_with_crop(tiny_dataset, tmp_path, 0.0, 0.35)  # the crop moves down: heads leave it
    with pytest.warns(ExtractionWarning, match=r"0 of 24 normalised poses fall entirely outside.*and \d+ partly"):
        s = gt_extract(tiny_demo.video("source_dancer"), tiny_demo.keypoints("source_dancer"), tmp_path / "dt",
                       phase="test", write_frames=False, normalize_to=str(low))
    assert s.partly_outside > 0 and s.written == 24
    assert "partly" in json.loads((tmp_path / "dt" / "test_keypoints" / "summary.json").read_text())["warnings"][0]


def test_6_black_pose_images_are_refused_by_transfer(trained, tmp_path):
    for i in range(3):
        write_image(tmp_path / "ready" / "test_A" / f"frame_{i:06d}.png", np.zeros((64, 64, 3), np.uint8))
    with pytest.raises(ValueError, match="all 3 pose images are entirely black.*frame_000000.png"):
        run_transfer("m", tmp_path / "ready" / "test_A", tmp_path / "results", checkpoints_dir=trained,
                     progress=False)
    assert not (tmp_path / "results" / "m").exists()


def test_6_some_black_pose_images_are_counted(trained, tiny_dataset, tmp_path):
    poses = tmp_path / "ready" / "test_A"
    poses.mkdir(parents=True)
    files = [poses / f.name for f in sorted((tiny_dataset / "dataset_test" / "train_A").iterdir())[:4]]
    for f in files:
        shutil.copy(tiny_dataset / "dataset_test" / "train_A" / f.name, f)
    write_image(files[1], np.zeros((64, 64, 3), np.uint8))
    with pytest.warns(ExtractionWarning, match=rf"1 of 4 pose images are entirely black \(first: {files[1].name}"):
        res = run_transfer("m", poses, tmp_path / "results", checkpoints_dir=trained, progress=False)
    assert json.loads((res.out_dir / "transfer.json").read_text())["blank_poses"] == 1


# ============================================================================================ 7. openpose_json
NAN_BODY = [float("nan")] * 75


@pytest.mark.parametrize("content,reason", [
    (json_person(NAN_BODY), "all 25 pose_keypoints_2d keypoints are NaN or infinite"),
    (json_person([float("inf")] * 75), "all 25 pose_keypoints_2d keypoints are NaN or infinite"),
    (json_person([None] * 75), "all 25 pose_keypoints_2d keypoints are NaN or infinite"),
    (json_person([float("nan")] * 54), "all 18 pose_keypoints_2d keypoints are NaN or infinite"),
    (json_person(["x"] * 75), "holds values that are not numbers"),
    (json_person([0.0] * 42), "has 42 pose numbers; expected 75 (BODY_25) or 54 (COCO-18)"),
    ({"version": 1.3}, "not an OpenPose JSON file"),
])
def test_7_bad_keypoints_are_rejected_with_a_reason(gt_frames, tmp_path, content, reason):
    frames, kp = gt_frames
    folder = tmp_path / "json"
    shutil.copytree(kp, folder)
    (folder / "f3_keypoints.json").write_text(json.dumps(content))
    s = extract(frames, tmp_path / "ds", backend="openpose_json", keypoints_dir=str(folder), image_size=64,
                progress=False)
    assert s.written == 5 and s.bad_json == 1 and s.no_person == 0
    assert "f3_keypoints.json" in s.messages[0] and reason in s.messages[0]


def test_7_some_nan_keypoints_become_missing_keypoints(gt_frames, tmp_path):
    frames, kp = gt_frames
    folder = tmp_path / "json"
    shutil.copytree(kp, folder)
    data = json.loads((folder / "f0_keypoints.json").read_text())
    data["people"][0]["pose_keypoints_2d"][3 * 4: 3 * 5] = [float("nan")] * 3  # the right wrist
    (folder / "f0_keypoints.json").write_text(json.dumps(data))
    s = extract(frames, tmp_path / "ds", backend="openpose_json", keypoints_dir=str(folder), image_size=64,
                progress=False)
    assert s.written == 6
    body = read_openpose_json(tmp_path / "ds" / "train_keypoints" / "f0_keypoints.json")[0].body
    assert body[4].tolist() == [0, 0, 0] and np.isfinite(body).all()


def test_7_missing_json_files_are_counted_as_missing_not_as_nobody(gt_frames, tmp_path):
    frames, kp = gt_frames
    folder = tmp_path / "json"
    shutil.copytree(kp, folder)
    (folder / "f2_keypoints.json").unlink()
    (folder / "f4_keypoints.json").write_text(json.dumps({"people": []}))
    s = extract(frames, tmp_path / "ds", backend="openpose_json", keypoints_dir=str(folder), image_size=64,
                progress=False)
    assert (s.written, s.missing_json, s.no_person) == (4, 1, 1)
    assert "skipped, missing JSON: 1" in str(s) and "f2: no f2_keypoints.json in" in str(s)


def test_7_openposes_own_names_for_a_videos_frames_are_matched(tiny_demo, tmp_path):
    folder = tmp_path / "json"
    folder.mkdir()
    for f in sorted(tiny_demo.keypoints("target_heldout").glob("*.json"))[:10]:
        index = int(f.name.split("_")[1])
        shutil.copy(f, folder / f"target_heldout_{index:012d}_keypoints.json")
        shutil.copy(f, folder / f"another_video_{index + 1:012d}_keypoints.json")  # other videos' files: unused
    s = gt_extract(tiny_demo.video("target_heldout"), folder, tmp_path / "ds", max_frames=12, smooth_window=1)
    assert s.written == 10 and s.missing_json == 2
    assert "frame_000010: no frame_000010_keypoints.json or <video>_000000000010_keypoints.json" in s.messages[0]
    ours = read_openpose_json(tmp_path / "ds" / "train_keypoints" / "frame_000003_keypoints.json")[0].body
    theirs = read_openpose_json(tiny_demo.keypoints("target_heldout") / "frame_000003_keypoints.json")[0].body
    assert np.abs(ours - theirs).max() < 1e-2


def test_7_no_json_for_any_frame_lists_counts_files_and_the_naming_rule(tiny_demo, tmp_path):
    (tmp_path / "json").mkdir()
    (tmp_path / "json" / "notes_keypoints.json").write_text("{}")
    with pytest.raises(ValueError, match=r"Of 5 frames: missing JSON 5\. First files: frame_000000: no "
                                         r"frame_000000_keypoints.json.*<video name>_<12-digit frame number>"):
        gt_extract(tiny_demo.video("target_heldout"), tmp_path / "json", tmp_path / "ds", max_frames=5)


# =============================================================================== 8. truncated video, counts
def test_8_a_truncated_video_warns_with_both_counts(tiny_demo, tmp_path):
    data = tiny_demo.video("target_heldout").read_bytes()
    cut = tmp_path / "cut.mp4"

    def decodable(fraction: float) -> int:
        """Frames OpenCV decodes from the first ``fraction`` of the file (0 where the first keyframe is cut)."""
        cut.write_bytes(data[: int(len(data) * fraction)])
        try:
            return sum(1 for _ in read_frames(cut))
        except ValueError:
            return 0

    # cut inside the frames that follow the first keyframe (how far in that is depends on the clip's content)
    decoded = next((n for f in (0.5, 0.6, 0.7, 0.8, 0.9) if 0 < (n := decodable(f)) < 24), 0)
    assert 0 < decoded < 24
    with pytest.warns(ExtractionWarning, match=rf"header announces 24 frames .* but only {decoded} could be "
                                               "decoded.*truncated"):
        s = gt_extract(cut, tiny_demo.keypoints("target_heldout"), tmp_path / "ds")
    assert s.total == s.written == decoded and "truncated" in str(s)


@pytest.mark.parametrize("kw,message", [
    ({"frame_step": 0}, "frame_step must be at least 1"),
    ({"frame_step": -2}, "frame_step must be at least 1"),
    ({"frame_step": 1.5}, "frame_step must be a whole number"),
    ({"frame_step": True}, "frame_step must be a whole number"),
    ({"max_frames": -1}, "max_frames must be at least 0"),
    ({"max_frames": 2.5}, "max_frames must be a whole number"),
    ({"smooth_window": 0}, "smooth_window must be at least 1"),
    ({"workers": -1}, "workers must be at least 0"),
    ({"draw_face": "no"}, "draw_face must be True or False"),
    ({"backend": "openpos"}, "unknown backend 'openpos'"),
    ({"normalize_method": "xyz", "normalize_to": "x"}, "method='xyz' is unknown"),
])
def test_8_extraction_parameters_are_checked_before_any_work(tiny_demo, tmp_path, monkeypatch, kw, message):
    monkeypatch.setattr(extract_module, "detect", lambda *a, **k: pytest.fail("detection ran"))
    with pytest.raises(ValueError, match=message):
        extract(tiny_demo.video("target_heldout"), tmp_path / "ds", progress=False, **kw)
    assert not (tmp_path / "ds").exists()


@pytest.mark.parametrize("kw,message", [({"max_samples": -1}, "max_samples must be at least 0"),
                                        ({"max_samples": 1.5}, "max_samples must be a whole number"),
                                        ({"batch_size": 0}, "batch_size must be at least 1")])
def test_8_evaluation_parameters_are_checked(trained, tiny_dataset, tmp_path, kw, message):
    with pytest.raises(ValueError, match=message):
        evaluate("m", tiny_dataset / "dataset_test", checkpoints_dir=trained, train_dataroot=tiny_dataset / "dataset",
                 progress=False, **kw)
    assert not (trained / "m_test").exists()


# ============================================================================ 9. nothing usable: why, and where
def test_9_every_frame_rejected_lists_counts_by_reason_and_the_first_files(tiny_demo, tmp_path):
    folder = tmp_path / "photos"
    write_image(folder / "a_blank.png", np.full((96, 96, 3), 200, np.uint8))
    write_image(folder / "b_blank.png", np.full((96, 96, 3), 90, np.uint8))
    (folder / "c_corrupt.png").write_bytes(b"\x89PNG broken")
    (folder / "d_empty.png").write_bytes(b"")
    earlier = tmp_path / "ds"
    gt_extract(tiny_demo.video("target_heldout"), tiny_demo.keypoints("target_heldout"), earlier, max_frames=3)
    before = snap(earlier)
    with pytest.raises(ValueError) as e:
        extract(folder, earlier, image_size=64, workers=1, progress=False)
    msg = str(e.value)
    assert "Of 4 frames: no person 2, unreadable image 2." in msg
    assert "a_blank: nobody found; b_blank: nobody found; c_corrupt: unreadable image" in msg
    assert "try another backend" in msg and snap(earlier) == before


def test_9_wrong_keypoint_counts_everywhere_say_bad_json_and_how_to_fix(gt_frames, tmp_path):
    frames, _ = gt_frames
    folder = tmp_path / "json"
    folder.mkdir()
    for f in sorted(frames.iterdir()):
        (folder / f"{f.stem}_keypoints.json").write_text(json.dumps(json_person([1.0] * 30)))
    with pytest.raises(ValueError, match=r"Of 6 frames: bad JSON 6\. First files: .*f0_keypoints.json: person 0 "
                                         r"has 30 pose numbers.*\(1 more\).*re-export the keypoints"):
        extract(frames, tmp_path / "ds", backend="openpose_json", keypoints_dir=str(folder), progress=False)


def test_9_several_people_everywhere_say_so(gt_frames, tmp_path):
    frames, kp = gt_frames
    folder = tmp_path / "json"
    folder.mkdir()
    for f in sorted(kp.iterdir()):
        p = read_openpose_json(f)[0]
        write_openpose_json(folder / f.name, [p, p.transformed(1.0, (40.0, 0.0))])
    with pytest.raises(ValueError, match=r"Of 6 frames: several people 6\. First files: f0: 2 people.*"
                                         "dancenow learns one person"):
        extract(frames, tmp_path / "ds", backend="openpose_json", keypoints_dir=str(folder), progress=False)


# ==================================================================================== 10. raw errors, unclear
@pytest.mark.parametrize("size,message", [
    (0, "at least 16 px"), (-64, "at least 16 px"), ([64, 8], "at least 16 px"), ([64], "a number .* or \\[width"),
    ("256", "a number .* or \\[width"), (True, "a number .* or \\[width"), (12.5, "a number .* or \\[width"),
])
def test_10_image_size_is_checked_before_detection(tiny_demo, tmp_path, monkeypatch, size, message):
    monkeypatch.setattr(extract_module, "detect", lambda *a, **k: pytest.fail("detection ran"))
    with pytest.raises(ValueError, match=f"^image_size must be {message}"):
        extract(tiny_demo.video("target_heldout"), tmp_path / "ds", image_size=size, progress=False)


@pytest.mark.parametrize("overrides,message", [
    ({"batch_size": 0}, "'batch_size' must be at least 1"),
    ({"device": "gpu"}, "'device' must be 'auto', 'cpu', 'cuda' or 'cuda:<index>', got 'gpu'"),
    ({"amp": "fast"}, "amp='fast' is not valid; choose one of 'auto'"),
    ({"netG": "big"}, "'netG' must be one of"),
    ({"width": 100}, "must be multiples of 8"),
    ({"lr": -1}, "'lr' must be 0 or more"),
    ({"niter": "five"}, "'niter' expects int, got 'five'"),
    ({"niterr": 5}, "unknown config key.*niterr.*valid keys are"),
])
def test_10_config_values_are_checked_and_named(overrides, message):
    with pytest.raises((ValueError, KeyError), match=message):
        make_config("tiny", overrides)


def test_10_overrides_given_as_a_json_string_are_parsed():
    assert make_config("tiny", '{"niter": 3, "lr": 0.001}').niter == 3
    assert make_config("tiny", "").niter == make_config("tiny").niter
    with pytest.raises(ValueError, match="overrides .* is not a JSON object.*'\\{\"niter\": 5\\}'"):
        make_config("tiny", "{niter: 3}")
    with pytest.raises(ValueError, match="overrides must be a dict of config keys, got list"):
        make_config("tiny", "[1, 2]")


def test_10_set_without_equals_names_the_fix(capsys):
    with pytest.raises(ValueError, match="--set 'niter': write KEY=VALUE"):
        parse_key_values(["lr=1e-4", "niter"])
    with pytest.raises(SystemExit) as e:
        train_cli(["--preset", "tiny", "--set", "niter"])
    assert e.value.code == 2 and "write KEY=VALUE, e.g. --set niter=5" in capsys.readouterr().err


@pytest.mark.parametrize("value,tag", [(5, "epoch_5"), ("5", "epoch_5"), ("epoch_5", "epoch_5"),
                                       ("latest", "latest"), (np.int64(3), "epoch_3")])
def test_10_which_epoch_as_papermill_passes_it(value, tag):
    assert checkpoint_tag(value) == tag


@pytest.mark.parametrize("value", [0, -1, True, "five", "epoch_x", 2.5])
def test_10_bad_which_epoch_names_the_valid_forms(value):
    with pytest.raises(ValueError, match="which_epoch must be 'latest' or an epoch number such as 5"):
        checkpoint_tag(value)


def test_10_a_missing_epoch_lists_the_available_checkpoints(trained):
    with pytest.raises(FileNotFoundError, match=r"epoch_7_G.pth: no such checkpoint. Available for 'm': "
                                                r"\['latest'\]"):
        load_generator("m", 7, trained)


@pytest.mark.parametrize("fps", [0, -5, float("nan"), "30", None])
def test_10_fps_is_checked_before_the_model_loads(tmp_path, fps):
    with pytest.raises(ValueError, match="fps must be a positive number of frames per second"):
        run_transfer("no_such_run", tmp_path, tmp_path / "results", fps=fps, checkpoints_dir=tmp_path)


def test_10_device_gpu_is_not_a_device_name(trained, tmp_path):
    with pytest.raises(ValueError, match="device 'gpu' is not a device name; use 'auto', 'cpu', 'cuda'"):
        run_transfer("m", tmp_path, tmp_path / "results", device="gpu", checkpoints_dir=trained)


def test_10_a_pose_and_frame_of_different_shapes_are_named(tmp_path):
    for name, a, b in (("x", (64, 64), (64, 64)), ("y", (64, 64), (48, 64))):
        write_image(tmp_path / "train_A" / f"{name}.png", np.zeros((*a, 3), np.uint8))
        write_image(tmp_path / "train_B" / f"{name}.png", np.zeros((*b, 3), np.uint8))
    with pytest.raises(ValueError, match=r"1 pose\(s\) do not have their frame's shape.*y.png \(pose 64x64, "
                                         r"frame 64x48\).*Re-run pose extraction"):
        AlignedDataset(tmp_path, "train", 64, 64)


def test_10_a_full_disk_says_how_much_space_a_save_needs(tmp_path, monkeypatch):
    path = tmp_path / "latest.pth"
    save_checkpoint(path, {"G": {"w": torch.zeros(10)}, "config": {}})
    before = path.read_bytes()

    def full(obj, f):
        Path(f).write_bytes(b"partial")
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(checkpoint_module.torch, "save", full)
    with pytest.raises(OSError, match=r"the disk is full. This save needs about 0.25 GB free in .*resumes from the "
                                      "last checkpoint"):
        save_checkpoint(path, {"G": {"w": torch.zeros(1).expand(62_500_000)}, "config": {}})  # 0.25 GB, not allocated
    assert path.read_bytes() == before and [p.name for p in tmp_path.iterdir()] == ["latest.pth"]


class _Payload:
    def __reduce__(self):
        return (os.system, ("echo pwned",))


@pytest.mark.parametrize("content", ["random", "pickle"])
def test_10_bad_weights_never_suggest_weights_only_false(tmp_path, content):
    path = tmp_path / "latest_G.pth"
    if content == "random":
        path.write_bytes(np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8).tobytes())
    else:
        torch.save({"G": _Payload(), "config": {}}, path)
    before = path.read_bytes()
    with pytest.raises(ValueError) as e:
        load_checkpoint(path)
    assert "cannot be read as a dancenow checkpoint" in str(e.value) and "damaged or not a checkpoint" in str(e.value)
    assert "weights_only" not in str(e.value) and e.value.__cause__ is None and path.read_bytes() == before


def test_10_a_nan_loss_before_any_save_says_no_checkpoint_exists(tiny_dataset, tmp_path):
    tr = build_trainer(tiny(save_latest_freq=100), tiny_dataset / "dataset", "nan", tmp_path, resume=False,
    progress=False)
    with torch.no_grad():
        for p in tr.model.G.parameters():
            p.fill_(float("nan"))
    with pytest.raises(FloatingPointError, match="training stopped. No checkpoint was saved yet; lower lr"):
        tr.train(max_iterations=2)
    assert not (tmp_path / "nan" / "latest.pth").exists()


def test_10_ctrl_c_saves_latest_and_says_so(tiny_dataset, tmp_path):
    handler = signal.getsignal(signal.SIGINT)
    tr = build_trainer(tiny(save_latest_freq=100), tiny_dataset / "dataset", "ctrlc", tmp_path, resume=False,
                 progress=False)

    def press_ctrl_c(t: Trainer) -> None:
        if t.iteration == 1:
            os.kill(os.getpid(), signal.SIGINT)

    with pytest.raises(KeyboardInterrupt, match=r"interrupted: saved .*latest.pth at iteration 1; run again with "
                                                "resume=True"):
        tr.train(max_iterations=4, callback=press_ctrl_c)
    assert load_checkpoint(tmp_path / "ctrlc" / "latest.pth")["iteration"] == 1
    again = build_trainer(tiny(save_latest_freq=100), tiny_dataset / "dataset", "ctrlc", tmp_path, progress=False)
    assert again.iteration == 1
    assert signal.getsignal(signal.SIGINT) is handler  # the user's Ctrl-C works as before once training stops


# ===================================================================================== 11. orphan temp files
def test_11_temporary_checkpoints_left_by_a_killed_save_are_removed_at_start(tiny_dataset, tmp_path):
    train(tiny_dataset / "dataset", tmp_path, "k")
    run = RunLayout(tmp_path, "k")
    orphans = [run.dir / ".latest.pth.abc123.tmp.pth", run.dir / ".latest_G.pth.x9.tmp.pth"]
    for o in orphans:
        o.write_bytes(b"\0" * 1000)
    before = snap(run.dir)
    build_trainer(tiny(), tiny_dataset / "dataset", "k", tmp_path, resume=True, progress=False)
    after = snap(run.dir)
    assert not any(o.exists() for o in orphans)
    assert {k: v for k, v in before.items() if ".tmp." not in k} == after


def test_10_unpaired_names_are_listed(tmp_path):
    for name in ("a", "b", "c"):
        write_image(tmp_path / "train_A" / f"{name}.png", np.zeros((64, 64, 3), np.uint8))
    for name in ("a", "z"):
        write_image(tmp_path / "train_B" / f"{name}.png", np.zeros((64, 64, 3), np.uint8))
    with pytest.raises(ValueError, match=r"Only in train_A: \['b', 'c'\]; only in train_B: \['z'\]"):
        AlignedDataset(tmp_path, "train", 64, 64)


def test_10_poses_drawn_differently_from_the_training_data_are_refused(trained, tiny_dataset, tmp_path):
    poses = tmp_path / "t" / "test_A"
    shutil.copytree(tiny_dataset / "dataset_test" / "train_A", poses)
    PoseSettings(draw_hands=False, width=64, height=64).save(tmp_path / "t" / "test_keypoints" / "settings.json")
    with pytest.raises(ValueError, match="drawn with pose_format=BODY_25, draw_face=True, draw_hands=False, but "
                                         ".*latest_G.pth was trained on poses drawn with .*draw_hands=True"):
        run_transfer("m", poses, tmp_path / "results", checkpoints_dir=trained, progress=False)
    assert not (tmp_path / "results" / "m").exists()
