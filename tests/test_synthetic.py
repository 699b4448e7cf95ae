import numpy as np

from dancenow_utils.pose.keypoints import read_openpose_json
from dancenow_utils.synthetic import make_demo
from dancenow_utils.synthetic.dance import HELDOUT_COMBOS, LOWER_MOVES, TRAIN_COMBOS, UPPER_MOVES, dance_trajectory


def _files(root):
    return {p.relative_to(root): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_same_seed_gives_byte_identical_outputs(tmp_path):
    a = make_demo(tmp_path / "a", size=96, n_train=12, n_heldout=6, n_source=6, seed=5, progress=False)
    b = make_demo(tmp_path / "b", size=96, n_train=12, n_heldout=6, n_source=6, seed=5, progress=False)
    fa, fb = _files(a.root), _files(b.root)
    assert fa.keys() == fb.keys() and all(fa[k] == fb[k] for k in fa)
    c = make_demo(tmp_path / "c", size=96, n_train=12, n_heldout=6, n_source=6, seed=6, progress=False)
    video = a.video("target_train").relative_to(a.root)
    assert _files(c.root)[video] != fa[video]


def test_demo_layout_and_ground_truth(tiny_demo):
    for clip in ("target_train", "target_heldout", "source_dancer"):
        assert tiny_demo.video(clip).exists()
        people = read_openpose_json(tiny_demo.keypoints(clip) / "frame_000000_keypoints.json")
        assert len(people) == 1
        p = people[0]
        assert p.face is not None and p.left_hand is not None and p.right_hand is not None
        assert (p.body[:, 2] == 1).all()
    assert len(list(tiny_demo.frames("target_heldout").glob("*.png"))) == 24
    assert len(list(tiny_demo.masks("target_train").glob("*.png"))) == 64
    assert tiny_demo.contact_sheet.exists()


def test_heldout_uses_unseen_combinations_of_seen_moves():
    assert not set(HELDOUT_COMBOS) & set(TRAIN_COMBOS)
    assert {u for u, _ in TRAIN_COMBOS} == set(UPPER_MOVES) and {lo for _, lo in TRAIN_COMBOS} == set(LOWER_MOVES)


def test_trajectories_are_smooth_and_within_limits():
    traj = dance_trajectory(300, seed=1)
    step = np.abs(np.diff(traj, axis=0)).max()
    assert step < 0.35, step  # no jumps between consecutive frames (radians / leg fractions)
    assert np.isfinite(traj).all()


def test_source_dancer_differs_from_target(tiny_demo):
    t = read_openpose_json(tiny_demo.keypoints("target_train") / "frame_000000_keypoints.json")[0]
    s = read_openpose_json(tiny_demo.keypoints("source_dancer") / "frame_000000_keypoints.json")[0]
    from dancenow_utils.pose.normalize import body_height

    assert body_height(s) < 0.85 * body_height(t)
    assert abs(s.ankle_y() - t.ankle_y()) > 5


def test_a_demo_without_part_maps_is_written_again(tmp_path):
    """A demo folder from a version before the part maps is completed, not used as it is."""
    import shutil

    from dancenow_utils.notebook.pipeline import ensure_demo

    paths = ensure_demo(tmp_path / "demo", 4, 2, 2, size=64, progress=False)
    shutil.rmtree(paths.parts("target_train"))
    first = paths.manifest.stat().st_mtime_ns
    ensure_demo(tmp_path / "demo", 4, 2, 2, size=64, progress=False)
    assert paths.parts("target_train").is_dir() and paths.manifest.stat().st_mtime_ns >= first
    stamp = paths.manifest.stat().st_mtime_ns
    ensure_demo(tmp_path / "demo", 4, 2, 2, size=64, progress=False)  # complete now: nothing is written
    assert paths.manifest.stat().st_mtime_ns == stamp
