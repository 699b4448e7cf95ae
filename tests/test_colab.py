"""The notebooks' first cell (dancenow_utils.notebook.colab): restart decision, finding the repository, Drive, the
one URL."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import types
from pathlib import Path

import nbformat
import pytest

from dancenow_utils.layout import DATA_FOLDERS, NOTEBOOKS, PARTS_DATASET, PARTS_DATASET_TEST, PARTS_DATASET_TRANSFER
from dancenow_utils.notebook import colab
from tests.notebook_helper import ROOT

# ---- the restart decision -----------------------------------------------------------------------------------------


def test_unchanged_versions_never_restart():
    for on_colab in (True, False):
        for headless in (True, False):
            decision = colab.decide_restart({}, on_colab, headless)
            assert not decision.restart and "no restart" in decision.why


def test_a_changed_imported_package_restarts_only_on_colab_with_a_person_at_the_page():
    changed = {"protobuf": ("5.29.6", "4.25.8")}
    decision = colab.decide_restart(changed, colab=True, headless=False)
    assert decision.restart and "protobuf 5.29.6 -> 4.25.8" in decision.why and "run this cell again" in decision.why
    under_papermill = colab.decide_restart(changed, colab=True, headless=True)
    assert not under_papermill.restart and "papermill" in under_papermill.why
    elsewhere = colab.decide_restart(changed, colab=False, headless=False)
    assert not elsewhere.restart and "restart the kernel yourself" in elsewhere.why


def _fake_distribution(site: Path, dist: str, version: str, files: list[str]) -> None:
    """An installed distribution as pip leaves it: the files, and a dist-info with METADATA and RECORD."""
    stem = dist.replace("-", "_")  # pip's dist-info folder names, which importlib.metadata looks for
    for old in site.glob(f"{stem}-*.dist-info"):
        for f in old.iterdir():
            f.unlink()
        old.rmdir()
    info = site / f"{stem}-{version}.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: {version}\n")
    (info / "RECORD").write_text("".join(f"{f},,\n" for f in [*files, f"{info.name}/METADATA", f"{info.name}/RECORD"]))
    for f in files:
        (site / f).parent.mkdir(parents=True, exist_ok=True)
        (site / f).write_text("")


@pytest.fixture
def site(tmp_path, monkeypatch):
    """A folder on sys.path where distributions are 'installed'; the modules imported from it are forgotten after."""
    site = tmp_path / "site"
    site.mkdir()
    monkeypatch.syspath_prepend(str(site))
    yield site
    for name in [n for n in sys.modules if n.partition(".")[0] in ("dnfake", "dnns", "dnnotimported")]:
        del sys.modules[name]


def test_versions_of_imported_distributions_are_read_before_and_after_an_install(site):
    _fake_distribution(site, "dnfake", "1.0", ["dnfake/__init__.py"])
    _fake_distribution(site, "dnnotimported", "1.0", ["dnnotimported/__init__.py"])
    import dnfake  # noqa: F401

    before = colab.imported_distributions()
    assert before["dnfake"] == "1.0" and "dnnotimported" not in before
    _fake_distribution(site, "dnnotimported", "2.0", ["dnnotimported/__init__.py"])  # not imported: no restart
    assert colab.changed_distributions(before, colab.imported_distributions()) == {}
    _fake_distribution(site, "dnfake", "2.0", ["dnfake/__init__.py"])  # what pip does on an upgrade
    changed = colab.changed_distributions(before, colab.imported_distributions())
    assert changed == {"dnfake": ("1.0", "2.0")}
    assert colab.decide_restart(changed, colab=True, headless=False).restart


def test_a_new_distribution_writing_over_an_imported_module_counts_as_a_change(site):
    """Like opencv-contrib-python installed over an imported opencv-python: both provide cv2."""
    _fake_distribution(site, "dnfake", "1.0", ["dnfake/__init__.py"])
    import dnfake  # noqa: F401

    before = colab.imported_distributions()
    _fake_distribution(site, "dnfake-contrib", "3.0", ["dnfake/__init__.py", "dnfake/extra.py"])
    assert colab.changed_distributions(before, colab.imported_distributions()) == {"dnfake-contrib": (None, "3.0")}


def test_a_namespace_package_counts_only_the_distributions_of_its_imported_parts(site):
    """``google.protobuf`` imported: protobuf counts, another ``google.*`` distribution does not."""
    _fake_distribution(site, "dnns-a", "1.0", ["dnns/a/__init__.py"])
    _fake_distribution(site, "dnns-b", "1.0", ["dnns/b/__init__.py"])
    import dnns.a  # noqa: F401

    found = colab.imported_distributions()
    assert found.get("dnns-a") == "1.0" and "dnns-b" not in found


def test_bootstrap_installs_and_restarts_when_the_install_changed_an_imported_package(site, monkeypatch, capsys):
    _fake_distribution(site, "dnfake", "1.0", ["dnfake/__init__.py"])
    import dnfake  # noqa: F401

    restarts = []
    monkeypatch.setattr(colab, "installed", lambda distribution=colab.DISTRIBUTION: False)
    upgrade = ["dnfake", "2.0", ["dnfake/__init__.py"]]
    monkeypatch.setattr(colab, "install", lambda repo: _fake_distribution(site, *upgrade))
    monkeypatch.setattr(colab, "on_colab", lambda: True)
    monkeypatch.setattr(colab, "headless_kernel", lambda: False)
    monkeypatch.setattr(colab, "restart_kernel", lambda: restarts.append(True))
    assert colab.bootstrap() is None and restarts == [True]
    assert "dnfake 1.0 -> 2.0" in capsys.readouterr().out
    monkeypatch.setattr(colab, "headless_kernel", lambda: True)  # the same under papermill: no restart
    _fake_distribution(site, "dnfake", "1.0", ["dnfake/__init__.py"])
    monkeypatch.chdir(ROOT)
    assert colab.bootstrap() == ROOT and restarts == [True]


def test_installing_dancenow_itself_never_restarts(site, monkeypatch, capsys):
    """The cell imported dancenow_utils from the clone it then installs: that is no changed package."""
    restarts = []
    monkeypatch.setattr(colab, "installed", lambda distribution=colab.DISTRIBUTION: False)
    itself = [colab.DISTRIBUTION, "9.9", ["dancenow_utils/__init__.py"]]
    monkeypatch.setattr(colab, "install", lambda repo: _fake_distribution(site, *itself))
    monkeypatch.setattr(colab, "on_colab", lambda: True)
    monkeypatch.setattr(colab, "headless_kernel", lambda: False)
    monkeypatch.setattr(colab, "restart_kernel", lambda: restarts.append(True))
    monkeypatch.chdir(ROOT)
    assert colab.bootstrap() == ROOT and restarts == []
    assert "no restart needed" in capsys.readouterr().out


def test_bootstrap_where_installed_changes_nothing(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("COLAB_RELEASE_TAG", raising=False)
    assert colab.bootstrap() == tmp_path  # papermill and the tests run notebooks in a folder of their own
    assert "working in" in capsys.readouterr().out


# ---- telling papermill from a person -------------------------------------------------------------------------------


def test_plain_python_is_headless():
    assert colab.headless_kernel()


def test_a_kernel_run_by_papermill_is_headless(tmp_path):
    from dancenow_utils.notebook.runner import run_notebook

    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell("from dancenow_utils.notebook.colab import headless_kernel\n"
                                          "assert headless_kernel(), 'papermill not recognised'")]
    nbformat.write(nb, str(tmp_path / "check.ipynb"))
    run_notebook(tmp_path / "check.ipynb", tmp_path / "out.ipynb", cwd=tmp_path, timeout=120)


def _run_in_kernel(kc, code: str) -> str:
    """Execute ``code`` as a frontend with a person would (stdin allowed); returns its stdout."""
    msg_id = kc.execute(code, allow_stdin=True)
    out = []
    while True:
        msg = kc.get_iopub_msg(timeout=120)
        if msg["parent_header"].get("msg_id") != msg_id:
            continue
        if msg["msg_type"] == "stream":
            out.append(msg["content"]["text"])
        elif msg["msg_type"] == "error":
            raise AssertionError("\n".join(msg["content"]["traceback"]))
        elif msg["msg_type"] == "status" and msg["content"]["execution_state"] == "idle":
            return "".join(out)


def test_an_interactive_kernel_is_not_headless_and_restart_kernel_stops_it(tmp_path):
    from jupyter_client.manager import start_new_kernel

    km, kc = start_new_kernel(kernel_name="python3", cwd=str(tmp_path))
    try:
        code = "from dancenow_utils.notebook import colab\nprint(colab.headless_kernel())"
        assert _run_in_kernel(kc, code).strip() == "False"
        kc.execute("colab.restart_kernel()")
        for _ in range(600):  # the kernel stops its loop and exits; the frontend (Colab) would start a new one
            if not km.is_alive():
                break
            time.sleep(0.1)
        assert not km.is_alive()
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=True)


def test_a_papermill_process_above_counts_as_papermill(tmp_path):
    """`papermill in.ipynb out.ipynb` from a shell: its kernel finds the papermill process among its ancestors."""
    script = tmp_path / "papermill"
    script.write_text(f"#!/bin/sh\n'{sys.executable}' -c "
                      "'from dancenow_utils.notebook.colab import _papermill_ancestor; "
                      "print(_papermill_ancestor())'\n")
    script.chmod(0o755)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    assert subprocess.run([str(script)], capture_output=True, text=True, env=env).stdout.strip() == "True"
    plain = subprocess.run([sys.executable, "-c", "from dancenow_utils.notebook.colab import _papermill_ancestor; "
                            "print(_papermill_ancestor())"], capture_output=True, text=True, env=env, cwd=ROOT)
    assert plain.stdout.strip() == "False"


def test_colab_is_recognised_by_its_kernel_module_or_environment(monkeypatch):
    monkeypatch.delenv("COLAB_RELEASE_TAG", raising=False)
    monkeypatch.delitem(sys.modules, "google.colab", raising=False)
    assert not colab.on_colab()
    monkeypatch.setenv("COLAB_RELEASE_TAG", "release-colab_20260901")
    assert colab.on_colab()
    monkeypatch.delenv("COLAB_RELEASE_TAG")
    monkeypatch.setitem(sys.modules, "google.colab", types.ModuleType("google.colab"))
    assert colab.on_colab()


# ---- finding the repository, also after "Restart session" ----------------------------------------------------------


def _checkout(path: Path) -> Path:
    (path / "dancenow_utils").mkdir(parents=True)
    (path / "dancenow_utils" / "notebook").mkdir(parents=True, exist_ok=True)
    (path / "dancenow_utils" / "notebook" / "colab.py").write_text("")
    (path / "pyproject.toml").write_text("")
    (path / "notebooks").mkdir()
    return path


def test_find_repository_from_inside_it_or_from_the_installed_package(tmp_path):
    repo = _checkout(tmp_path / "content" / "dancenow")
    content = tmp_path / "content"
    assert colab.find_repository(repo) == repo
    assert colab.find_repository(repo / "notebooks") == repo
    # after Colab's "Restart session": the kernel is in /content, the editable install points at the clone
    assert colab.find_repository(content, repo / "dancenow_utils") == repo
    site = tmp_path / "site-packages" / "dancenow_utils"  # a plain (not editable) install: no checkout to find
    site.mkdir(parents=True)
    assert colab.find_repository(content, site) is None


def test_after_a_restart_on_colab_the_notebook_works_in_the_clone(tmp_path, monkeypatch):
    repo = _checkout(tmp_path / "content" / "dancenow")
    monkeypatch.chdir(tmp_path / "content")
    assert colab.work_in_repository(colab=True, package_dir=repo / "dancenow_utils") == repo
    assert Path.cwd() == repo


def test_off_colab_the_working_folder_is_kept_except_notebooks(tmp_path, monkeypatch):
    repo = _checkout(tmp_path / "repo")
    elsewhere = tmp_path / "run"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)  # papermill's cwd: the data belongs there
    assert colab.work_in_repository(colab=False, package_dir=repo / "dancenow_utils") == elsewhere
    monkeypatch.chdir(repo / "notebooks")  # `make lab`: Jupyter starts in notebooks/
    assert colab.work_in_repository(colab=False, package_dir=repo / "dancenow_utils") == repo


# ---- Drive ---------------------------------------------------------------------------------------------------------


def test_every_data_folder_is_kept_on_drive_from_the_layout():
    assert {PARTS_DATASET, PARTS_DATASET_TEST, PARTS_DATASET_TRANSFER, "dataset", "dataset_test", "dataset_transfer",
            "demo_data", "checkpoints", "results"} <= set(DATA_FOLDERS)
    sys.path.insert(0, str(ROOT / "tools"))
    import build_notebooks

    for name, cells in build_notebooks.NOTEBOOKS.items():  # every folder a notebook writes by default
        params: dict = {}
        exec(next(src for kind, src in cells if kind == "params"), params)
        for key, value in params.items():
            if (key.endswith("dataroot") or key.endswith("_dir")) and isinstance(value, str) and value:
                assert value in DATA_FOLDERS, f"{name}: {key}={value!r} is not in layout.DATA_FOLDERS"


def test_keep_on_drive_moves_links_and_is_idempotent(tmp_path):
    work, drive = tmp_path / "work", tmp_path / "drive"
    (work / "checkpoints" / "demo").mkdir(parents=True)
    (work / "checkpoints" / "demo" / "latest.pth").write_bytes(b"weights")
    (work / "dataset_parts" / "train_A").mkdir(parents=True)
    (work / "dataset_parts" / "train_A" / "0001.png").write_bytes(b"png")
    assert colab.keep_on_drive(drive, mount=False, root=work) == [drive / name for name in DATA_FOLDERS]
    for name in DATA_FOLDERS:
        assert (work / name).is_symlink() and (work / name).resolve() == (drive / name).resolve()
    assert (drive / "checkpoints" / "demo" / "latest.pth").read_bytes() == b"weights"
    assert (work / "dataset_parts" / "train_A" / "0001.png").read_bytes() == b"png"
    before = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*"))
    assert colab.keep_on_drive(drive, mount=False, root=work) == [drive / name for name in DATA_FOLDERS]
    assert sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*")) == before  # again: nothing changes


def test_keep_on_drive_loses_nothing_when_drive_already_has_the_folder(tmp_path, capsys):
    work, drive = tmp_path / "work", tmp_path / "drive"
    (drive / "checkpoints" / "demo").mkdir(parents=True)  # an earlier runtime's run on Drive
    (drive / "checkpoints" / "demo" / "latest.pth").write_bytes(b"from drive")
    (drive / "checkpoints" / "demo" / "config.json").write_text("{}")
    (work / "checkpoints" / "demo").mkdir(parents=True)  # this runtime's files of the same names
    (work / "checkpoints" / "demo" / "latest.pth").write_bytes(b"from this runtime")
    (work / "checkpoints" / "demo" / "config.json").write_text("{}")
    (work / "checkpoints" / "demo" / "loss_log.jsonl").write_text("{}\n")
    colab.keep_on_drive(drive, folders=("checkpoints",), mount=False, root=work)
    run = work / "checkpoints" / "demo"
    assert (run / "latest.pth").read_bytes() == b"from drive"
    assert (run / "latest.pth.local").read_bytes() == b"from this runtime"
    assert (run / "loss_log.jsonl").exists() and not (run / "config.json.local").exists()  # identical: one copy
    assert "latest.pth.local" in capsys.readouterr().out


def test_keep_on_drive_refuses_what_it_cannot_link(tmp_path):
    work, drive, other = tmp_path / "work", tmp_path / "drive", tmp_path / "other"
    other.mkdir()
    work.mkdir()
    (work / "results").symlink_to(other, target_is_directory=True)
    with pytest.raises(RuntimeError, match="already links to .*remove the link"):
        colab.keep_on_drive(drive, folders=("results",), mount=False, root=work)
    (work / "checkpoints").write_text("not a folder")
    with pytest.raises(NotADirectoryError, match="move it away"):
        colab.keep_on_drive(drive, folders=("checkpoints",), mount=False, root=work)


def test_keep_on_drive_off_colab_says_how_to_use_it(tmp_path, monkeypatch):
    if Path("/content/drive/MyDrive").is_dir():
        pytest.skip("a Drive is mounted here")
    monkeypatch.setitem(sys.modules, "google.colab", None)  # importing it fails, as everywhere but Colab
    with pytest.raises(RuntimeError, match="only on Colab.*mount=False"):
        colab.keep_on_drive(tmp_path / "drive", root=tmp_path)


def test_pipeline_keep_on_drive_is_the_same_function():
    from dancenow_utils.notebook import pipeline

    assert pipeline.keep_on_drive is colab.keep_on_drive


# ---- the repository URL, in one place ------------------------------------------------------------------------------


def test_readme_badges_and_notebooks_name_the_one_repository_url():
    readme = (ROOT / "README.md").read_text()
    assert colab.colab_badges() in readme, "README's Colab badges are stale: run `python tools/build_notebooks.py`"
    for name in NOTEBOOKS:
        assert f"({colab.colab_url(name)})" in readme
        nb = nbformat.read(str(ROOT / "notebooks" / f"{name}.ipynb"), as_version=4)
        first = next(c for c in nb.cells if c.cell_type == "code")
        assert f'"{colab.REPO_URL}"' in first.source and "colab.bootstrap(keep_on_drive=KEEP_ON_DRIVE)" in first.source
    assert readme.count("colab.research.google.com/github/") == len(NOTEBOOKS)


def test_colab_url_needs_a_github_repository():
    assert colab.colab_url("02_training", "https://github.com/me/dancenow.git") == \
        "https://colab.research.google.com/github/me/dancenow/blob/main/notebooks/02_training.ipynb"
    with pytest.raises(ValueError, match="github.com/OWNER/NAME"):
        colab.colab_url("02_training", "git@example.org:me/dancenow")


def test_the_first_cell_is_importable_before_the_install():
    """The cell imports dancenow_utils.notebook.colab from a bare clone: it may need nothing beyond the standard
    library."""
    code = ("import sys; import dancenow_utils.notebook.colab; "
            "heavy = {'torch', 'numpy', 'cv2', 'nbformat', 'IPython'} & set(sys.modules); print(sorted(heavy))")
    out = subprocess.run([sys.executable, "-S", "-c", code], capture_output=True, text=True, cwd=ROOT, check=True)
    assert out.stdout.strip() == "[]"


def test_a_failed_install_shows_pips_message_in_the_cell_and_names_the_fix(tmp_path, capsys):
    """pip's output goes through sys.stdout (a kernel's file descriptors do not reach the notebook)."""
    with pytest.raises(RuntimeError, match="installing dancenow failed .*run this cell again"):
        colab.install(tmp_path / "no-such-clone")
    assert "no-such-clone" in capsys.readouterr().out
