"""Colab and fresh runtimes: what the notebooks' first cell does, importable straight from a clone.

The first cell of every notebook (``tools/build_notebooks.py``) clones the repository when the package cannot be
imported, puts the clone on ``sys.path`` and calls :func:`bootstrap`, which

- installs dancenow into the running kernel's interpreter (what ``%pip install -e`` does) where it is not installed;
- restarts the kernel only when the install changed the version of a package this kernel had already imported,
  and only on Colab with a person at the frontend: never under papermill (:func:`headless_kernel`) nor elsewhere;
- moves into the repository on Colab, also after "Restart session" (the kernel starts again in ``/content``, the
  install is still there), so that data folders do not land in ``/content``;
- with ``keep_on_drive=True`` links every data folder (:data:`~dancenow_utils.layout.DATA_FOLDERS`) to Google
  Drive (:func:`keep_on_drive`).

This module imports only the standard library and :mod:`dancenow_utils.layout`, so it runs before the install.
"""

from __future__ import annotations

import filecmp
import importlib
import importlib.metadata as metadata
import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from dancenow_utils.layout import DATA_FOLDERS, NOTEBOOKS

# The repository the notebooks' first cell clones and README's "Open in Colab" badges open: the one place that
# names it. A fork changes it here and runs `python tools/build_notebooks.py` (notebooks and README follow).
REPO_URL = "https://github.com/dancenow/dancenow"
BRANCH = "main"  # the branch the badges open
DISTRIBUTION = "dancenow"  # the name pip installs the package under (pyproject's [project] name)
DRIVE_MOUNT = Path("/content/drive")
DRIVE_FOLDER = DRIVE_MOUNT / "MyDrive" / "dancenow"
PACKAGE_DIR = Path(__file__).resolve().parents[1]  # dancenow_utils/ (this file is in dancenow_utils/notebook/)


def colab_url(notebook: str, repo_url: str = REPO_URL, branch: str = BRANCH) -> str:
    """The address that opens ``notebooks/<notebook>.ipynb`` of the GitHub repository ``repo_url`` in Colab."""
    match = re.fullmatch(r"https://github\.com/([\w.-]+)/([\w.-]+?)(?:\.git)?/?", repo_url)
    if match is None:
        raise ValueError(f"Colab opens notebooks from GitHub: REPO_URL must look like https://github.com/OWNER/NAME, "
                         f"got {repo_url!r} (dancenow_utils/notebook/colab.py)")
    owner, name = match.groups()
    return f"https://colab.research.google.com/github/{owner}/{name}/blob/{branch}/notebooks/{notebook}.ipynb"


def colab_badges(repo_url: str = REPO_URL, branch: str = BRANCH) -> str:
    """README's table of "Open in Colab" badges, one per notebook."""
    rows = ["| notebook | |", "| --- | --- |"]
    for name in NOTEBOOKS:
        rows.append(f"| `{name}.ipynb` | [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)]"
                    f"({colab_url(name, repo_url, branch)}) |")
    return "\n".join(rows)


def on_colab() -> bool:
    """True in a Colab runtime (its kernel imports ``google.colab``; its processes carry ``COLAB_RELEASE_TAG``)."""
    return "google.colab" in sys.modules or "COLAB_RELEASE_TAG" in os.environ


def headless_kernel() -> bool:
    """True where no person drives this interpreter: outside a Jupyter kernel, or in a kernel run by papermill
    (nbclient, nbconvert), which executes every cell with stdin off, as no one could answer ``input()``; Colab's
    and Jupyter's frontends allow it. A ``papermill`` process among the kernel's ancestors also counts."""
    try:
        from IPython import get_ipython
    except ImportError:
        return True
    kernel = getattr(get_ipython(), "kernel", None)
    if kernel is None or not getattr(kernel, "_allow_stdin", True):
        return True
    return _papermill_ancestor()


def _papermill_ancestor(pid: int | None = None) -> bool:
    """Whether a process above ``pid`` (default: this one) runs papermill (Linux ``/proc``; False elsewhere)."""
    pid = os.getpid() if pid is None else pid
    for _ in range(64):
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
            pid = int(stat.rsplit(")", 1)[1].split()[1])
            if pid <= 1:
                return False
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except (OSError, ValueError, IndexError):
            return False
        if any(Path(part.decode(errors="replace")).name.startswith("papermill") for part in cmdline[:3]):
            return True
    return False


def _module_key(path: PurePosixPath) -> str:
    """``google/protobuf/__init__.py`` -> ``google.protobuf`` (the first two levels of a file's module)."""
    parts = list(path.parts[:2])
    parts[-1] = parts[-1].removesuffix(".py")
    return ".".join(parts)


def imported_distributions(modules: dict | None = None) -> dict[str, str]:
    """The installed distributions behind the modules in ``modules`` (default ``sys.modules``), by name -> version.

    A namespace package (``google``) counts only the distributions that provide one of its imported subpackages
    (``google.protobuf`` -> protobuf), not every distribution installed under that name."""
    modules = sys.modules if modules is None else modules
    names = {name for name, module in list(modules.items()) if module is not None}
    tops = {name.partition(".")[0] for name in names}
    importlib.invalidate_caches()
    out: dict[str, str] = {}
    for top, dists in metadata.packages_distributions().items():
        if top not in tops:
            continue
        module = modules.get(top)
        namespace = getattr(module, "__file__", None) is None and hasattr(module, "__path__")
        for dist_name in dict.fromkeys(dists):
            try:
                dist = metadata.distribution(dist_name)
            except metadata.PackageNotFoundError:
                continue
            if namespace and not any(_module_key(PurePosixPath(f)) in names for f in dist.files or ()):
                continue
            out[dist.metadata["Name"]] = dist.version
    return out


def changed_distributions(before: dict[str, str], after: dict[str, str]) -> dict[str, tuple[str | None, str | None]]:
    """Distributions whose version differs between two :func:`imported_distributions` (None: absent then)."""
    return {name: (before.get(name), after.get(name)) for name in sorted(before.keys() | after.keys())
            if before.get(name) != after.get(name)}


@dataclass(frozen=True)
class RestartDecision:
    """Whether the first cell restarts the kernel after installing, and why (printed for the user)."""

    restart: bool
    why: str


def decide_restart(changed: dict[str, tuple[str | None, str | None]], colab: bool, headless: bool) -> RestartDecision:
    """Restart only when the install changed an imported package, on Colab, with a person at the frontend."""
    if not changed:
        return RestartDecision(False, "the install changed no package this kernel had imported: no restart needed")
    listed = ", ".join(f"{name} {old or '(none)'} -> {new or '(removed)'}" for name, (old, new) in changed.items())
    if headless:
        return RestartDecision(False, f"the install changed imported packages ({listed}); a headless run (papermill) "
                                      "is not restarted: run it again in a fresh kernel")
    if not colab:
        return RestartDecision(False, f"the install changed imported packages ({listed}): restart the kernel "
                                      "yourself, then run this cell again")
    return RestartDecision(True, f"the install changed imported packages ({listed}): restarting the session; "
                                 "run this cell again when it is back (it finds the install)")


def restart_kernel() -> None:
    """Stop this kernel so that its frontend (Colab, Jupyter) starts a fresh one."""
    from IPython import get_ipython

    kernel = getattr(get_ipython(), "kernel", None)
    if kernel is not None:
        kernel.do_shutdown(True)  # stops the kernel's loop; Colab starts a fresh kernel
    else:
        os._exit(0)


def is_repository(path: Path) -> bool:
    """Whether ``path`` is a dancenow checkout (its package and pyproject.toml)."""
    return (path / "dancenow_utils" / "notebook" / "colab.py").is_file() and (path / "pyproject.toml").is_file()


def find_repository(cwd: Path, package_dir: Path = PACKAGE_DIR) -> Path | None:
    """The checkout to work in: the one ``cwd`` is in (its root, ``notebooks/`` or deeper), else the one the
    package was imported from (an editable install, as after Colab's "Restart session"); None for neither."""
    cwd = Path(cwd).resolve()
    for candidate in (cwd, *cwd.parents):
        if is_repository(candidate):
            return candidate
    repo = Path(package_dir).resolve().parent
    return repo if is_repository(repo) else None


def work_in_repository(colab: bool | None = None, package_dir: Path = PACKAGE_DIR) -> Path:
    """Move to the repository root, where the data folders belong, from its ``notebooks/`` folder (JupyterLab's
    start), and on Colab from anywhere outside it (``/content`` after a restart); elsewhere the working directory
    is kept (papermill runs in the folder it is given). Returns the working directory."""
    colab = on_colab() if colab is None else colab
    cwd = Path.cwd().resolve()
    repo = find_repository(cwd, package_dir)
    if repo is not None and (cwd == repo / "notebooks" or (colab and not cwd.is_relative_to(repo))):
        os.chdir(repo)
    return Path.cwd()


def installed(distribution: str = DISTRIBUTION) -> bool:
    """Whether pip has installed ``distribution`` into this interpreter."""
    importlib.invalidate_caches()
    try:
        metadata.distribution(distribution)
    except metadata.PackageNotFoundError:
        return False
    return True


def install(repo: Path) -> None:
    """``pip install -e repo`` into this kernel's interpreter (what ``%pip install -e repo`` runs)."""
    cmd = [sys.executable, "-m", "pip", "install", "-q", "-e", str(repo)]
    # pip's output through this process's sys.stdout: a kernel's own file descriptors do not reach the notebook
    with subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, errors="replace") as pip:
        for line in pip.stdout:
            print(line, end="", flush=True)
    if pip.returncode:
        raise RuntimeError(f"installing dancenow failed (pip exited with {pip.returncode}; its messages are above): "
                           f"fix what pip names, then run this cell again. The command: {' '.join(cmd)}")
    importlib.invalidate_caches()


def _free_name(path: Path) -> Path:
    """``path`` with a ``.local``, ``.local2``, ... suffix that does not exist yet."""
    for n in range(1, 10_000):
        candidate = path.with_name(f"{path.name}.local{n if n > 1 else ''}")
        if not candidate.exists() and not candidate.is_symlink():
            return candidate
    raise FileExistsError(f"no free name next to {path}")


def _merge_into(src: Path, dst: Path, kept: list[Path]) -> None:
    """Move everything in ``src`` into ``dst`` and remove ``src``. Identical files are dropped from ``src``; a file
    that differs from Drive's copy is kept beside it as ``<name>.local`` (listed in ``kept``): nothing is lost."""
    for item in sorted(src.iterdir()):
        dest = dst / item.name
        if not dest.exists() and not dest.is_symlink():
            shutil.move(str(item), str(dest))
        elif item.is_dir() and not item.is_symlink() and dest.is_dir():
            _merge_into(item, dest, kept)
        elif item.is_file() and dest.is_file() and filecmp.cmp(item, dest, shallow=False):
            item.unlink()
        else:
            dest = _free_name(dest)
            shutil.move(str(item), str(dest))
            kept.append(dest)
    src.rmdir()


def mount_drive(mount_point: Path = DRIVE_MOUNT) -> None:
    """Mount Google Drive at ``mount_point`` unless it is mounted (Colab only)."""
    if (mount_point / "MyDrive").is_dir():
        return
    try:
        from google.colab import drive
    except ImportError:
        raise RuntimeError("Google Drive can be mounted only on Colab: elsewhere call keep_on_drive(folder, "
                           "mount=False) with a folder that is already there") from None
    drive.mount(str(mount_point))


def keep_on_drive(drive_folder: str | Path = DRIVE_FOLDER, folders: tuple[str, ...] = DATA_FOLDERS,
                  mount: bool = True, root: str | Path | None = None) -> list[Path]:
    """Keep the data folders (default: every one the notebooks write, :data:`~dancenow_utils.layout.DATA_FOLDERS`)
    on Google Drive, so that they outlive the runtime; returns the Drive folders.

    Mounts Drive (with ``mount``; Colab only), moves what each folder under ``root`` (default: the working
    directory) holds into ``drive_folder/<folder>`` and replaces it by a link there. Where Drive already holds a
    file of the same name with other content, both are kept (the local one as ``<name>.local``, with a warning).
    Running it again changes nothing."""
    if mount:
        mount_drive()
    root = Path.cwd() if root is None else Path(root)
    out, kept = [], []
    for name in folders:
        target, local = Path(drive_folder) / name, root / name
        target.mkdir(parents=True, exist_ok=True)
        if local.is_symlink():
            if local.resolve() != target.resolve():
                raise RuntimeError(f"{local} already links to {os.readlink(local)}, not to {target}: remove the "
                                   f"link (its content stays where it points) or pass that folder as drive_folder")
        elif local.exists() and not local.is_dir():
            raise NotADirectoryError(f"{local} is a file, not a folder: move it away, then call keep_on_drive again")
        else:
            if local.is_dir():
                _merge_into(local, target, kept)
            local.symlink_to(target.resolve(), target_is_directory=True)
        out.append(target)
    if kept:
        print(f"keep_on_drive: Drive already held other files of these names; the local ones are kept beside them: "
              f"{', '.join(str(p) for p in kept)}")
    return out


def bootstrap(keep_on_drive: bool = False, drive_folder: str | Path = DRIVE_FOLDER) -> Path | None:
    """The notebooks' first cell: install where needed (restarting only as :func:`decide_restart` says), move into
    the repository (:func:`work_in_repository`) and, with ``keep_on_drive``, link the data folders to Drive.
    Returns the working directory, or None when the kernel is being restarted."""
    repo = find_repository(PACKAGE_DIR.parent, PACKAGE_DIR)
    colab = on_colab()
    if not installed():
        if repo is None:
            raise RuntimeError(f"dancenow is not installed and {PACKAGE_DIR} is not in a clone of its repository: "
                               f"clone {REPO_URL} and run this cell from the clone")
        before = imported_distributions()
        print(f"installing dancenow from {repo} into {sys.executable} ...", flush=True)
        install(repo)
        changed = changed_distributions(before, imported_distributions())
        changed.pop(DISTRIBUTION, None)  # this package: imported from the very clone that was installed
        decision = decide_restart(changed, colab, headless_kernel())
        print(decision.why, flush=True)
        if decision.restart:
            restart_kernel()
            return None
    if repo is not None and str(repo) not in sys.path:
        sys.path.insert(0, str(repo))  # an editable install is seen by new processes; this kernel needs the path
    where = work_in_repository(colab)
    if keep_on_drive:
        links = _keep_on_drive(drive_folder, root=where)
        print(f"data folders kept on Drive in {Path(links[0]).parent}")
    print(f"dancenow {metadata.version(DISTRIBUTION)}, working in {where}")
    return where


_keep_on_drive = keep_on_drive  # bootstrap's parameter of the same name hides the function
