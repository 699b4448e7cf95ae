"""Nothing lost, nothing written outside its folder, one process per run (issue 23).

Each case reproduces a fault a new user met: names that leave the chosen folder, folders replaced because of their
name, two processes on one run, papermill's strings, a real full disk or size limit, a read-only folder, and
malformed inputs. Data is tiny (the session's demo, 64 px, the ``tiny`` preset, one or two iterations).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from dancenow_utils.config import make_config
from dancenow_utils.folders import (
    LOCK,
    MARKER,
    FolderError,
    RunInUse,
    check_name,
    folder_kind,
    lock_holder,
    mark,
    run_lock,
)
from dancenow_utils.io_utils import write_image
from dancenow_utils.layout import ResultsLayout, RunLayout
from dancenow_utils.params import check_bool, check_float, check_int, check_optional_bool
from dancenow_utils.training.cli import main as train_cli
from dancenow_utils.training.snapshots import learn_with_snapshots
from dancenow_utils.training.stages import build_trainer
from dancenow_utils.transfer.pose_transfer import run_transfer
from tests.conftest import ROOT


def tiny(**kw):
    return make_config("tiny", {"max_dataset_size": 4, **kw})


def snap(root: Path) -> dict[str, bytes]:
    """Every file under ``root`` (relative path -> bytes)."""
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(Path(root).rglob("*")) if p.is_file()}


def train(data: Path, ck: Path, name: str, iterations: int = 2, resume: bool = False):
    tr = build_trainer(tiny(), data, name, ck, resume=resume, progress=False)
    tr.train(max_iterations=iterations)
    return tr


@pytest.fixture(scope="module")
def trained(tiny_dataset, tmp_path_factory):
    ck = tmp_path_factory.mktemp("ck")
    train(tiny_dataset / "dataset", ck, "m")
    return ck


@pytest.fixture
def poses(tiny_dataset, tmp_path) -> Path:
    """Three ready pose images in ``test_A`` (the original project's flow)."""
    folder = tmp_path / "ready" / "test_A"
    folder.mkdir(parents=True)
    for f in sorted((tiny_dataset / "dataset_test" / "train_A").iterdir())[:3]:
        shutil.copy(f, folder / f.name)
    return folder


# ===================================================================================================== names
@pytest.mark.parametrize("bad", ["", "  ", ".", "..", "../precious", "../../x", "/abs/run", "a/b", "a\\b", ".hidden",
                                 "x/..", None])
def test_names_that_leave_the_folder_are_refused_everywhere(bad):
    with pytest.raises(ValueError, match="one plain folder name"):
        check_name(bad)
    with pytest.raises(ValueError, match="run name .*one plain folder name"):
        RunLayout("checkpoints", bad)
    with pytest.raises(ValueError, match="results name .*one plain folder name"):
        ResultsLayout("results", bad)


def test_stage_folders_and_papermill_numbers_are_names():
    assert RunLayout("ck", "demo/face").dir == Path("ck/demo/face") and RunLayout("ck", 5).name == "5"
    assert RunLayout("ck", "v1.2-final").dir.name == "v1.2-final"
    with pytest.raises(ValueError, match="one plain folder name"):
        RunLayout("ck", "../x/face")


@pytest.mark.parametrize("name", ["../../x", "/tmp/abs_run", ""])
def test_training_with_a_bad_name_writes_nothing_anywhere(tiny_dataset, tmp_path, name):
    ck = tmp_path / "a" / "checkpoints"
    with pytest.raises(ValueError, match="run name .*one plain folder name"):
        build_trainer(tiny(), tiny_dataset / "dataset", name, ck, resume=False, progress=False)
    with pytest.raises(SystemExit):
        train_cli(["--dataroot", str(tiny_dataset / "dataset"), "--name", name, "--preset", "tiny",
                   "--checkpoints_dir", str(ck), "--no-resume"])
    assert not ck.exists() and not (tmp_path / "x").exists() and not Path("/tmp/abs_run").exists()


def test_the_cli_names_the_flag(tiny_dataset, tmp_path, capsys):
    with pytest.raises(SystemExit):
        train_cli(["--dataroot", str(tiny_dataset / "dataset"), "--name", "../x", "--preset", "tiny",
                   "--checkpoints_dir", str(tmp_path)])
    assert "--name '../x' contains a path separator" in capsys.readouterr().err


def test_transfer_names_are_checked_before_any_work(trained, poses, tmp_path):
    (tmp_path / "precious").mkdir()
    (tmp_path / "precious" / "keep.txt").write_text("mine")
    with pytest.raises(ValueError, match="results name '../precious'"):
        run_transfer("../precious", poses, tmp_path / "results", checkpoints_dir=trained, progress=False)
    assert (tmp_path / "precious" / "keep.txt").read_text() == "mine" and not (tmp_path / "results").exists()


# ================================================================================================ ownership
def test_transfer_into_the_checkpoints_folder_never_deletes_the_run(trained, poses):
    before = snap(trained / "m")
    with pytest.raises(FolderError, match=r"m holds a training run \(checkpoints\), not results: refusing to "
                                          "replace it. Choose another name, or a results_dir of its own"):
        run_transfer("m", poses, results_dir=trained, checkpoints_dir=trained, progress=False)
    assert snap(trained / "m") == before and not list(trained.glob(".m.*"))


def test_transfer_replaces_its_own_results_and_refuses_foreign_folders(trained, poses, tmp_path):
    res = run_transfer("m", poses, tmp_path / "results", checkpoints_dir=trained, progress=False)
    assert folder_kind(res.out_dir) == "results" and (res.out_dir / MARKER).exists()
    again = run_transfer("m", poses, tmp_path / "results", checkpoints_dir=trained, progress=False)
    assert again.n_frames == 3 and sorted(p.name for p in (tmp_path / "results").iterdir()) == ["m"]
    # an older version's results (no marker, only a transfer's own files) are still replaced
    (res.out_dir / MARKER).unlink()
    assert folder_kind(res.out_dir) == "results"
    run_transfer("m", poses, tmp_path / "results", checkpoints_dir=trained, progress=False)
    # a folder of the user's own that happens to have the name is not
    own = tmp_path / "mine"
    (own / "m").mkdir(parents=True)
    (own / "m" / "thesis.docx").write_bytes(b"years of work")
    with pytest.raises(FolderError, match=r"holds files the project did not write, not results: refusing"):
        run_transfer("m", poses, own, checkpoints_dir=trained, progress=False)
    assert (own / "m" / "thesis.docx").read_bytes() == b"years of work" and sorted(os.listdir(own)) == ["m"]


def test_a_failed_transfer_leaves_no_staging_folder(trained, poses, tmp_path, monkeypatch):
    from dancenow_utils.transfer import pose_transfer

    def broken(*a, **k):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(pose_transfer, "write_gif", broken)
    with pytest.raises(OSError, match="the disk is full"):
        run_transfer("m", poses, tmp_path / "results", checkpoints_dir=trained, progress=False)
    assert list((tmp_path / "results").iterdir()) == []


def test_snapshots_replace_their_own_run_but_not_one_notebook_02_trained_further(tiny_dataset, tmp_path):
    data = tiny_dataset / "dataset"
    learn_with_snapshots(tiny(), data, "snap", iterations=1, snapshot_every=1, n_samples=1, checkpoints_dir=tmp_path,
                         progress=False)
    assert folder_kind(tmp_path / "snap") == "snapshots"
    learn_with_snapshots(tiny(), data, "snap", iterations=1, snapshot_every=1, n_samples=1, checkpoints_dir=tmp_path,
                         progress=False)  # a fresh snapshot run replaces the earlier one
    tr = build_trainer(tiny(), data, "snap", tmp_path, resume=True, progress=False)  # notebook 02 trains it on
    tr.train(max_iterations=2)
    before = snap(tmp_path / "snap")
    with pytest.raises(FolderError, match="holds a trained run, not learning snapshots.*Choose another name"):
        learn_with_snapshots(tiny(), data, "snap", iterations=1, snapshot_every=1, n_samples=1,
                             checkpoints_dir=tmp_path, progress=False)
    assert snap(tmp_path / "snap") == before
    mark(tmp_path / "snap", "snapshots", iteration=1)  # a marker that still says snapshots: the log goes further
    with pytest.raises(FolderError, match=r"snap began as notebook 05's snapshots but was trained further \(to "
                                          "iteration 2"):
        learn_with_snapshots(tiny(), data, "snap", iterations=1, snapshot_every=1, n_samples=1,
                             checkpoints_dir=tmp_path, progress=False)


def test_an_old_snapshot_run_trained_further_is_recognised_without_a_marker(tiny_dataset, tmp_path):
    data = tiny_dataset / "dataset"
    learn_with_snapshots(tiny(), data, "old", iterations=1, snapshot_every=1, n_samples=1, checkpoints_dir=tmp_path,
                         progress=False)
    run = RunLayout(tmp_path, "old")
    (run.dir / MARKER).unlink()  # as an older version left it
    assert folder_kind(run.dir) == "snapshots"
    os.utime(run.latest, (run.learning_grid.stat().st_mtime + 60,) * 2)  # latest.pth saved after the grid
    before = snap(run.dir)
    with pytest.raises(FolderError, match="was trained further.*Choose another name"):
        learn_with_snapshots(tiny(), data, "old", iterations=1, snapshot_every=1, n_samples=1,
                             checkpoints_dir=tmp_path, progress=False)
    assert snap(run.dir) == before


def test_training_refuses_to_move_a_foreign_folder_aside(tiny_dataset, tmp_path):
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "todo.txt").write_text("keep")
    with pytest.raises(FolderError, match="notes holds files the project did not write.*refusing to train into"):
        build_trainer(tiny(), tiny_dataset / "dataset", "notes", tmp_path, resume=False, progress=False)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes"] and snap(tmp_path / "notes") == {
        "todo.txt": b"keep"}


# ===================================================================================================== locks
HOLDER = textwrap.dedent("""
    import sys, time
    from dancenow_utils.folders import run_lock
    with run_lock(sys.argv[1], "training of m: training"):
        print("locked", flush=True)
        sys.stdin.readline()
""")


@pytest.fixture
def other_process_holds(tmp_path):
    """Start a second process that holds the lock of a folder until the test ends."""
    procs = []

    def hold(folder: Path) -> subprocess.Popen:
        proc = subprocess.Popen([sys.executable, "-c", HOLDER, str(folder)], stdin=subprocess.PIPE,
                                stdout=subprocess.PIPE, text=True, cwd=ROOT)
        procs.append(proc)
        assert proc.stdout.readline().strip() == "locked"
        return proc

    yield hold
    for proc in procs:
        proc.stdin.close()
        proc.wait(timeout=30)


def test_a_second_training_notebook_05_or_no_resume_on_a_live_run_is_refused(tiny_dataset, tmp_path,
                                                                             other_process_holds, capsys):
    data = tiny_dataset / "dataset"
    train(data, tmp_path, "live")
    before = snap(tmp_path / "live")
    proc = other_process_holds(tmp_path / "live")
    holder = rf"in use by process {proc.pid} on host .*training of m"
    with pytest.raises(RunInUse, match=holder):
        build_trainer(tiny(), data, "live", tmp_path, resume=True, progress=False)
    with pytest.raises(RunInUse, match=holder):
        build_trainer(tiny(), data, "live", tmp_path, resume=False, progress=False)
    with pytest.raises(RunInUse, match=holder):
        learn_with_snapshots(tiny(), data, "live", iterations=2, checkpoints_dir=tmp_path, progress=False)
    capsys.readouterr()
    with pytest.raises(SystemExit) as e:
        train_cli(["--dataroot", str(data), "--name", "live", "--preset", "tiny", "--checkpoints_dir", str(tmp_path),
                   "--no-resume", "--set", "max_dataset_size=4"])
    assert e.value.code == 1 and f"in use by process {proc.pid}" in capsys.readouterr().err
    assert {k: v for k, v in snap(tmp_path / "live").items() if k != LOCK} == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["live"]  # nothing moved aside


def test_a_trainer_built_before_another_process_trained_refuses_to_overwrite(tiny_dataset, tmp_path):
    data = tiny_dataset / "dataset"
    train(data, tmp_path, "two", iterations=1)
    first = build_trainer(tiny(), data, "two", tmp_path, resume=True, progress=False)
    train(data, tmp_path, "two", iterations=2, resume=True)  # someone else trains on meanwhile
    with pytest.raises(RuntimeError, match="was written by another process or trainer since this trainer was "
                                           "built.*Build the trainer again"):
        first.train(max_iterations=3)


def test_a_stale_lock_is_taken_over_and_locks_go_on_exceptions_and_ctrl_c(tiny_dataset, tmp_path, capsys):
    data = tiny_dataset / "dataset"
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    run = tmp_path / "s"
    run.mkdir()
    (run / LOCK).write_text(json.dumps({"pid": int(dead.stdout), "host": os.uname().nodename, "what": "old"}))
    tr = build_trainer(tiny(), data, "s", tmp_path, resume=False, progress=False)
    assert "taking over a stale lock of process" in capsys.readouterr().out and not (run / LOCK).exists()

    def stop(t):
        assert lock_holder(run)["pid"] == os.getpid()  # held while training
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        tr.train(max_iterations=2, callback=stop)
    assert not (run / LOCK).exists()
    with pytest.raises(ZeroDivisionError), run_lock(run, "test"):
        raise ZeroDivisionError
    assert not (run / LOCK).exists()


def test_nested_holds_in_one_process_share_the_lock(tmp_path):
    with run_lock(tmp_path / "r", "outer"):
        with run_lock(tmp_path / "r", "inner"):
            pass
        assert lock_holder(tmp_path / "r")["what"] == "outer"
    assert not (tmp_path / "r").exists()  # created for the lock only: removed with it


def test_locks_work_where_the_file_system_has_no_hard_links(tmp_path, monkeypatch):
    def no_links(src, dst):
        raise PermissionError(1, "Operation not permitted")  # e.g. a cloud drive's FUSE mount

    monkeypatch.setattr(os, "link", no_links)
    with run_lock(tmp_path, "training of d: training"):
        assert lock_holder(tmp_path)["what"] == "training of d: training"
        assert sorted(p.name for p in tmp_path.iterdir()) == [LOCK]  # no temporary file left
    assert list(tmp_path.iterdir()) == []


# ================================================================================================ parameters
@pytest.mark.parametrize("value,expected", [("false", False), ("False", False), ("0", False), ("true", True),
                                            ("True", True), ("1", True), (True, True), (False, False)])
def test_papermill_strings_are_booleans(value, expected):
    assert check_bool("resume", value) is expected


@pytest.mark.parametrize("value", ["yes", "fals", 1, 0.0, None, "", [True]])
def test_anything_else_is_refused_naming_the_parameter(value):
    with pytest.raises(ValueError, match="^resume must be True or False"):
        check_bool("resume", value)


def test_numbers_from_papermill_strings():
    assert check_int("iterations", "5", 1) == 5 and check_int("iterations", 5.0, 1) == 5
    assert check_float("lambda_l1", "0.5", 0) == 0.5 and check_optional_bool("sequence", "None") is None
    for bad in ("five", "2.5", True):
        with pytest.raises(ValueError, match="^iterations must be a whole number"):
            check_int("iterations", bad, 1)
    for bad in ("nan", float("inf"), "fast", None):
        with pytest.raises(ValueError, match="^lambda_l1 must be a finite number"):
            check_float("lambda_l1", bad, 0)
    for bad in (0, -1, float("nan"), "30"):  # fps takes numbers only (tests/test_faults.py)
        with pytest.raises(ValueError, match="^fps must be a positive number of frames per second"):
            check_float("fps", bad, meaning=" of frames per second", positive=True, text=False)
    with pytest.raises(ValueError, match="^lambda_l1 must be at least 0"):
        check_float("lambda_l1", -1, 0)


def test_resume_false_as_a_string_starts_over_and_normalize_false_is_false(tiny_dataset, tmp_path, trained, poses):
    data = tiny_dataset / "dataset"
    train(data, tmp_path, "r")
    tr = build_trainer(tiny(), data, "r", tmp_path, resume="false", progress=False)
    assert tr.iteration == 0 and tr.moved_aside is not None  # "false" was not taken as true
    with pytest.raises(ValueError, match="^resume must be True or False"):
        build_trainer(tiny(), data, "r", tmp_path, resume="nein", progress=False)
    from dancenow_utils.transfer.pose_transfer import prepare_poses

    with pytest.raises(ValueError, match="^normalize must be True or False"):
        prepare_poses(poses, tmp_path / "dt", "maybe", data / "train_keypoints", progress=False)
    with pytest.raises(ValueError, match="^fps must be a positive number"):
        run_transfer("m", poses, tmp_path / "results", checkpoints_dir=trained, fps=float("nan"), progress=False)


@pytest.mark.parametrize("key", ["lr", "face_lr", "lambda_l1", "beta1", "save_latest_seconds"])
def test_every_config_float_must_be_finite(key):
    for bad in (float("nan"), "nan", float("inf"), "-inf"):
        with pytest.raises(ValueError, match=f"config key '{key}' must be a finite number"):
            make_config("tiny", {key: bad})


def test_demo_frame_counts_name_the_flag(tmp_path):
    run = subprocess.run([sys.executable, "-m", "dancenow_utils.synthetic", "--out", str(tmp_path / "d"),
                          "--train-frames", "0"], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert run.returncode == 2 and "--train-frames must be at least 1, got 0" in run.stderr
    assert not (tmp_path / "d").exists()


# ===================================================================================== full disk, read-only
def _namespaces() -> bool:
    """Whether this machine lets a test mount a private tmpfs (``unshare -rm``: user and mount namespaces)."""
    if not shutil.which("unshare") or sys.platform != "linux":
        return False
    return subprocess.run(["unshare", "-rm", "true"], capture_output=True, timeout=30).returncode == 0


NO_NAMESPACES = "needs `unshare -rm` (user and mount namespaces) to mount a small or read-only tmpfs"
FSIZE_LIMIT = """
import resource, signal
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails with EFBIG instead of killing us
resource.setrlimit(resource.RLIMIT_FSIZE, ({limit}, {limit}))
"""


def run_script(script: str, disk: Path, *args: str, mount: str = "", limit: int = 0) -> str:
    """Run ``script`` in a fresh Python with ``sys.argv[1] = disk``: on a private tmpfs mounted with ``mount``
    options (``size=16k``, ``ro``), or under a file-size limit of ``limit`` bytes; returns its output."""
    disk.mkdir(parents=True, exist_ok=True)
    code = (FSIZE_LIMIT.format(limit=limit) if limit else "") + textwrap.dedent(script)
    cmd = [sys.executable, "-c", code, str(disk), *args]
    if mount:
        cmd = ["unshare", "-rm", "sh", "-c", f'mount -t tmpfs -o {mount} tmpfs "$0" && exec "$@"', str(disk), *cmd]
    run = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, timeout=240)
    assert run.returncode == 0, run.stdout + run.stderr
    return run.stdout


SAVE = """
import sys
from pathlib import Path
import torch
from dancenow_utils.checkpoint import save_checkpoint
from dancenow_utils.io_utils import WriteError
path = Path(sys.argv[1]) / "latest.pth"
save_checkpoint(path, {"G": {"w": torch.zeros(10)}, "config": {}})
before = path.read_bytes()
try:
    save_checkpoint(path, {"G": {"w": torch.zeros(1_000_000)}, "config": {}})  # 4 MB
except WriteError as e:
    print("ERROR", e)
print("KEPT", path.read_bytes() == before, sorted(p.name for p in path.parent.iterdir()))
"""


@pytest.mark.parametrize("how", ["file-size limit", "full tmpfs"])
def test_a_real_full_disk_during_a_checkpoint_save_says_how_much_it_needs(tmp_path, how):
    """torch's own writer fails (``inline_container.cc ... unexpected pos``): the message is still ours."""
    if how == "full tmpfs" and not _namespaces():
        pytest.skip(NO_NAMESPACES)
    out = run_script(SAVE, tmp_path / "disk", **({"limit": 200_000} if how == "file-size limit" else
                                                 {"mount": "size=256k"}))
    assert "the disk is full" in out and "This save needs about 4.00 MB free in" in out
    assert "resumes from the last checkpoint" in out and "inline_container" not in out
    assert "KEPT True ['latest.pth']" in out  # the previous checkpoint intact, no temporary file left


TRANSFER = """
import sys
from pathlib import Path
from dancenow_utils.io_utils import WriteError
from dancenow_utils.transfer.pose_transfer import run_transfer
results = Path(sys.argv[1]) / "results"
try:
    run_transfer("m", sys.argv[2], results, checkpoints_dir=sys.argv[3], progress=False)
except WriteError as e:
    print("ERROR", e)
print("LEFT", sorted(p.name for p in results.iterdir()) if results.exists() else None)
"""


def test_a_full_disk_during_transfer_leaves_no_staging_folder(trained, poses, tmp_path):
    mount = {"mount": "size=24k"} if _namespaces() else {"limit": 3000}  # a real full tmpfs, else a size limit
    out = run_script(TRANSFER, tmp_path / "disk", str(poses), str(trained), **mount)
    assert "ERROR" in out and "the disk is full" in out and "free some space" in out, out
    assert f"staging folder {tmp_path / 'disk' / 'results' / '.m.staging'} was removed" in out
    assert "LEFT []" in out or "LEFT None" in out


READ_ONLY = """
import sys
from pathlib import Path
from dancenow_utils.config import make_config
from dancenow_utils.io_utils import WriteError
from dancenow_utils.training.stages import build_trainer
from dancenow_utils.transfer.pose_transfer import run_transfer
disk = Path(sys.argv[1])
try:
    build_trainer(make_config("tiny", {"max_dataset_size": 4}), sys.argv[2], "ro", disk / "ck", progress=False)
except WriteError as e:
    print("TRAIN", e)
try:
    run_transfer("m", sys.argv[3], disk / "results", checkpoints_dir=sys.argv[4], progress=False)
except WriteError as e:
    print("TRANSFER", e)
"""


def test_a_read_only_folder_is_one_clear_message(tiny_dataset, trained, poses, tmp_path):
    disk = tmp_path / "disk"
    args = (str(tiny_dataset / "dataset"), str(poses), str(trained))
    if _namespaces():
        out = run_script(READ_ONLY, disk, *args, mount="ro,size=64k")
        why = "is on a read-only file system"
    elif os.geteuid() != 0:
        disk.mkdir()
        disk.chmod(0o555)
        try:
            out = run_script(READ_ONLY, disk, *args)
        finally:
            disk.chmod(0o755)
        why = "is not writable"
    else:
        pytest.skip("running as root without user namespaces: chmod does not stop root and no read-only mount "
                    "can be made")
    for what in ("TRAIN", "TRANSFER"):
        line = next(x for x in out.splitlines() if x.startswith(what))
        assert f"cannot write there: {disk} {why}. Choose a writable folder" in line and "Errno" not in line


# =================================================================================================== readers
@pytest.fixture(scope="module")
def demo_frames(tiny_demo, tmp_path_factory):
    """Four demo frames as PNG images with their ground-truth OpenPose JSON."""
    from dancenow_utils.video import read_frames

    root = tmp_path_factory.mktemp("frames")
    for i, rgb in read_frames(tiny_demo.video("target_train"), max_frames=4):
        write_image(root / "png" / f"f{i}.png", rgb)
        data = json.loads((tiny_demo.keypoints("target_train") / f"frame_{i:06d}_keypoints.json").read_text())
        (root / "json").mkdir(exist_ok=True)
        (root / "json" / f"f{i}_keypoints.json").write_text(json.dumps(data))
    return root


def _body(folder: Path, name: str) -> list[float]:
    return json.loads((folder / f"{name}_keypoints.json").read_text())["people"][0]["pose_keypoints_2d"]


def test_malformed_openpose_json_and_legs_only_frames_are_skipped_one_by_one(demo_frames, tmp_path):
    from dancenow_utils.pose.extract import extract

    frames, kp = tmp_path / "png", tmp_path / "json"
    shutil.copytree(demo_frames / "png", frames)
    shutil.copytree(demo_frames / "json", kp)
    for i in (4, 5, 6, 7, 8):
        shutil.copy(frames / "f0.png", frames / f"f{i}.png")
    body = _body(kp, "f0")
    far = list(body)
    far[3] = 1e12  # the neck's x
    legs = list(body)
    for j in (0, 1, 2, 3, 4, 5, 6, 7, 15, 16, 17, 18):  # head, neck, shoulders, arms: not seen
        legs[3 * j: 3 * j + 3] = [0.0, 0.0, 0.0]
    invented = list(body)
    for j in (0, 1, 2, 5, 15, 16, 17, 18):  # a confident upper body guessed above the frame
        invented[3 * j + 1] = -300.0
    bad = {"f4": {"people": [5]}, "f5": {"people": [{"pose_keypoints_2d": 7}]},
           "f6": {"people": [{"pose_keypoints_2d": far}]}, "f7": {"people": [{"pose_keypoints_2d": legs}]},
           "f8": {"people": [{"pose_keypoints_2d": invented}]}}
    for name, data in bad.items():
        (kp / f"{name}_keypoints.json").write_text(json.dumps(data))
    summary = extract(frames, tmp_path / "ds", backend="openpose_json", keypoints_dir=str(kp), image_size=64,
                      progress=False)
    assert (summary.total, summary.written, summary.bad_json, summary.no_upper_body) == (9, 4, 3, 2)
    text = " | ".join(summary.messages)
    assert "f4_keypoints.json: person 0 is int 5, not an object" in text
    assert "f5_keypoints.json: person 0 pose_keypoints_2d is int 7, not a list" in text
    assert "f6_keypoints.json: person 0 pose_keypoints_2d has a coordinate of 1e+12 pixels" in text
    assert "f7: no head or shoulders in the frame (legs only)" in text and "f8: no head or shoulders" in text
    saved = json.loads((tmp_path / "ds" / "train_keypoints" / "summary.json").read_text())
    assert saved["no_upper_body"] == 2 and saved["bad_json"] == 3
    assert sorted(p.stem for p in (tmp_path / "ds" / "train_A").iterdir()) == ["f0", "f1", "f2", "f3"]


def test_a_one_frame_video_reads(tmp_path):
    from dancenow_utils.video import count_frames, read_frames, write_video

    frame = np.full((32, 48, 3), 120, np.uint8)
    write_video(tmp_path / "one.mp4", [frame])
    frames = list(read_frames(tmp_path / "one.mp4"))
    assert len(frames) == 1 and frames[0][1].shape == (32, 48, 3) and count_frames(tmp_path / "one.mp4") == 1


def test_an_audio_only_file_is_not_told_to_re_encode(tmp_path):
    from dancenow_utils.pose.extract import extract
    from dancenow_utils.video import ffmpeg_exe

    audio = tmp_path / "song.mp4"
    subprocess.run([ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-f", "lavfi", "-i",
                    "sine=frequency=440:duration=0.2", "-c:a", "aac", str(audio)], check=True, timeout=60)
    with pytest.raises(ValueError, match=r"song.mp4: this file has no video stream, only audio; give a video of "
                                         "the dancer") as e:
        extract(audio, tmp_path / "ds", progress=False)
    assert "re-encode" not in str(e.value) and not (tmp_path / "ds").exists()


def test_float_and_transparent_images_read_as_a_user_expects(demo_frames, tmp_path):
    import cv2

    from dancenow_utils.io_utils import read_image, read_image_with_alpha
    from dancenow_utils.pose.extract import extract

    rgb = read_image(demo_frames / "png" / "f0.png")
    folder = tmp_path / "in"
    folder.mkdir()
    assert cv2.imwrite(str(folder / "a_float.tiff"), (rgb[:, :, ::-1] / 255.0).astype(np.float32))
    noisy = np.random.default_rng(0).integers(0, 256, rgb.shape, dtype=np.uint8)
    alpha = np.full(rgb.shape[:2], 255, np.uint8)
    alpha[:, :20] = 0  # noise under a transparent band
    rgba = np.dstack([np.where(alpha[:, :, None] == 0, noisy, rgb), alpha])
    assert cv2.imwrite(str(folder / "b_rgba.png"), cv2.cvtColor(rgba, cv2.COLOR_RGBA2BGRA))
    back = read_image(folder / "a_float.tiff")
    assert back.dtype == np.uint8 and np.abs(back.astype(int) - rgb).max() <= 1  # not black
    flat, transparent = read_image_with_alpha(folder / "b_rgba.png")
    assert transparent and (flat[:, :20] == 255).all() and (flat[:, 20:] == rgb[:, 20:]).all()
    summary = extract(folder, tmp_path / "ds", image_size=64, progress=False)
    assert summary.written == 2 and summary.no_person == 0 and summary.transparent == 1
    assert "transparent images: 1, composited on a plain white background" in str(summary)
    assert json.loads((tmp_path / "ds" / "train_keypoints" / "summary.json").read_text())["transparent"] == 1


class _Payload:
    def __reduce__(self):
        return (os.system, ("echo pwned",))


@pytest.mark.parametrize("content", ["random", "pickle"])
def test_every_weights_loader_wraps_torchs_refusal(tmp_path, content):
    import torch

    from dancenow_utils.evaluation.forensics import Detector
    from dancenow_utils.models.losses import VGGLoss
    from dancenow_utils.pose.openpose_backend import load_body_net

    path = tmp_path / "body_pose_model.pth"
    if content == "random":
        path.write_bytes(np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8).tobytes())
    else:
        torch.save({"w": _Payload()}, path)
    for load, what in ((lambda: VGGLoss(path), "torchvision VGG19 weights"),
                       (lambda: load_body_net(path), "CMU OpenPose BodyPoseNet weights"),
                       (lambda: Detector.load(path), "a dancenow forensic detector")):
        with pytest.raises(ValueError) as e:
            load()
        assert f"cannot be read as {what}" in str(e.value) and "is never run" in str(e.value)
        assert "weights_only" not in str(e.value) and e.value.__cause__ is None


def test_a_deleted_config_json_is_read_from_the_checkpoint(trained, poses, tmp_path):
    from dancenow_utils.checkpoint import describe_stages, run_config

    ck = tmp_path / "ck"
    shutil.copytree(trained / "m", ck / "m")
    (ck / "m" / "config.json").unlink()
    assert run_config("m", ck).preset == "tiny"
    assert describe_stages("m", ck).startswith("m: generator: global")
    res = run_transfer("m", poses, tmp_path / "results", checkpoints_dir=ck, progress=False)
    assert "no trained generator" not in json.loads(res.out_dir.joinpath("transfer.json").read_text())["stages"]
    with pytest.raises(FileNotFoundError, match=r"empty: no trained run here \(no config.json and no latest_G"):
        (ck / "empty").mkdir()
        run_config("empty", ck)
