"""One rule for the folders the project writes into (issue 23): names, ownership, one process per run.

- **Names**: a run or results name is one plain folder name: not empty, no path separator, no ``..``, not hidden
  (a leading dot is the project's staging folders), so nothing is ever written outside the chosen folder.
- **Ownership**: every run, results and snapshot folder carries a marker file (:data:`MARKER`, ``{"kind": ...}``).
  A folder is only ever replaced, cleared or moved aside when it is the project's own output of that kind: its
  marker says so, or (a folder written before markers existed) it holds only the files that kind writes. Anything
  else is refused with the path and the fix.
- **One process per run**: :func:`run_lock` holds :data:`LOCK` in a run folder (holder's pid, host and what it is
  doing). A second process is refused with a message naming the holder; a lock whose process has died on this host
  is stale and taken over. The lock is released on return, on exceptions and on Ctrl-C.
"""

from __future__ import annotations

import contextlib
import datetime
import json
import os
import socket
from collections.abc import Iterable, Iterator
from pathlib import Path

from dancenow_utils.io_utils import reporting_write_errors, write_json

MARKER = ".dancenow.json"
LOCK = ".dancenow.lock"
KINDS = ("run", "results", "snapshots")
STAGE_FOLDERS = ("global", "face")  # the sub-stage run folders inside a run (``<name>/global``, ``<name>/face``)
# what each kind writes: a folder without a marker that holds only these is an older version's output of that kind
RUN_FILES = ("config.json", "dataset.json", "latest.pth", "latest_G.pth", "loss_log.jsonl", "loss_curves.png",
             "web", "global", "face", "learning")
RESULTS_FILES = ("frames", "transfer.mp4", "side_by_side.mp4", "transfer.gif", "index.html", "transfer.json")


class FolderError(ValueError):
    """A folder the project was asked to replace or write into is not its own output of that kind."""


class RunInUse(RuntimeError):
    """Another live process holds the run's lock."""


def check_name(name: object, what: str = "name") -> str:
    """``name`` as a single plain folder name, else an error naming ``what`` and the rule."""
    if isinstance(name, int) and not isinstance(name, bool):
        name = str(name)  # papermill's -p name 5
    text = name if isinstance(name, str) else None
    problem = ""
    if text is None:
        problem = f"must be a text, got {type(name).__name__}"
    elif not text.strip():
        problem = "is empty"
    elif text in (".", ".."):
        problem = "is not a folder name"
    elif "/" in text or "\\" in text or os.sep in text or (os.altsep and os.altsep in text):
        problem = "contains a path separator"
    elif text.startswith("."):
        problem = "starts with a dot (hidden folders are the project's staging folders)"
    elif "\0" in text or text != text.strip():
        problem = "has a NUL character or leading/trailing spaces"
    if problem:
        raise ValueError(f"{what} {name!r} {problem}: it must be one plain folder name such as 'demo' or "
                         "'salsa_v2', created inside the chosen folder; choose the parent folder with "
                         "checkpoints_dir / results_dir instead of putting it in the name")
    return text


def check_run_name(name: object, what: str = "name") -> str:
    """A run name, optionally with one sub-stage folder (``demo/face``, ``demo/global``)."""
    if isinstance(name, str) and "/" in name:
        head, _, tail = name.partition("/")
        if tail in STAGE_FOLDERS:
            check_name(head, what)
            return name
    return check_name(name, what)


# ------------------------------------------------------------------------------------------------- ownership
def mark(folder: str | Path, kind: str, **extra: object) -> None:
    """Write ``folder``'s marker: it is the project's output of ``kind`` (``extra``: facts about it)."""
    if kind not in KINDS:
        raise ValueError(f"unknown folder kind {kind!r}; one of {KINDS}")
    write_json(Path(folder) / MARKER, {"kind": kind, "by": "dancenow", **extra})


def marker(folder: str | Path) -> dict:
    """The marker's contents (empty: no marker, or an unreadable one)."""
    path = Path(folder) / MARKER
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) and data.get("by") == "dancenow" else {}


def _entries(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name not in (MARKER, LOCK)) if folder.is_dir() else []


def folder_kind(folder: str | Path) -> str:
    """``"run"``, ``"results"``, ``"snapshots"``, ``"empty"`` (missing or empty), or ``"foreign"``."""
    folder = Path(folder)
    if not folder.exists():
        return "empty"
    if not folder.is_dir():
        return "foreign"
    kind = marker(folder).get("kind")
    if kind in KINDS:
        return kind
    names = _entries(folder)
    if not names:
        return "empty"
    if set(names) <= set(RESULTS_FILES) and _only_images(folder / "frames"):
        return "results"
    if all(n in RUN_FILES or n.endswith(".pth") or n.startswith(".") for n in names):  # e.g. only global/ yet
        return "snapshots" if "learning" in names else "run"
    return "foreign"


def _only_images(folder: Path) -> bool:
    return not folder.exists() or all(p.suffix == ".png" or p.name.startswith(".") for p in folder.iterdir())


def require_kind(folder: str | Path, kinds: Iterable[str], action: str, fix: str) -> str:
    """``folder``'s kind if it is one of ``kinds`` (or empty); else a :class:`FolderError` saying what it holds,
    what would have happened (``action``) and ``fix``."""
    kinds = tuple(kinds)
    kind = folder_kind(folder)
    if kind == "empty" or kind in kinds:
        return kind
    held = {"run": "a training run (checkpoints)", "results": "transfer results",
            "snapshots": "notebook 05's learning snapshots",
            "foreign": "files the project did not write"}[kind]
    raise FolderError(f"{folder} holds {held}, not {' or '.join(kinds)}: refusing to {action} it. {fix}")


def clear_folder(folder: str | Path, keep: Iterable[str] = (LOCK,)) -> None:
    """Remove everything in ``folder`` but ``keep`` (the caller checked it is the project's own)."""
    import shutil

    for p in Path(folder).iterdir():
        if p.name in keep:
            continue
        if p.is_dir() and not p.is_symlink():
            shutil.rmtree(p)
        else:
            p.unlink()


# ------------------------------------------------------------------------------------------------------ locks
_HELD: dict[str, int] = {}  # lock files this process holds -> how many holds (nested holds share one file)


def _start_time(pid: int) -> str:
    """The process's start time (Linux ``/proc``; empty elsewhere): tells a reused pid from the holder."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return ""
    return stat.rsplit(")", 1)[-1].split()[19]


def _alive(pid: int, started: str) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    except OSError:
        return False
    now = _start_time(pid)
    return not (started and now and now != started)


def lock_holder(folder: str | Path) -> dict | None:
    """Who holds ``folder``'s lock (pid, host, what, since), if a live process does; None when free or stale."""
    info = _read_lock(Path(folder) / LOCK)
    if info is None:
        return None
    if info.get("host") == socket.gethostname() and not _alive(int(info.get("pid", -1)), info.get("started", "")):
        return None
    return info


def _read_lock(path: Path) -> dict | None:
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        return None
    except (OSError, ValueError):
        return {"pid": -1, "host": socket.gethostname(), "what": "unknown (unreadable lock file)"}
    return data if isinstance(data, dict) else {"pid": -1, "host": socket.gethostname(), "what": "unknown"}


def describe_holder(info: dict) -> str:
    return (f"process {info.get('pid')} on host {info.get('host')!r} ({info.get('what', 'unknown')}, since "
            f"{info.get('since', '?')})")


def _create(path: Path, tmp: Path, text: str) -> None:
    """Create ``path`` holding ``text`` unless it exists (FileExistsError): a hard link of a complete temporary
    file, so a reader never sees a half-written lock; where the file system has no hard links (some network and
    cloud drives), an exclusive create."""
    tmp.write_text(text)
    try:
        os.link(tmp, path)
    except FileExistsError:
        raise
    except OSError:
        fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        with os.fdopen(fd, "w") as f:
            f.write(text)
    finally:
        tmp.unlink(missing_ok=True)


def _acquire(path: Path, what: str) -> None:
    me = {"pid": os.getpid(), "host": socket.gethostname(), "started": _start_time(os.getpid()), "what": what,
          "since": datetime.datetime.now().isoformat(timespec="seconds")}
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    for _ in range(3):
        try:
            _create(path, tmp, json.dumps(me) + "\n")
            return
        except FileExistsError:
            info = _read_lock(path)
            if info is None:
                continue
            mine = info.get("pid") == me["pid"] and info.get("host") == me["host"]
            if not mine and lock_holder(path.parent) is not None:
                raise RunInUse(
                    f"{path.parent} is in use by {describe_holder(info)}: one process per run. Wait for it to "
                    f"finish or stop it (or use another name); if that process is gone, delete {path}.") from None
            if _read_lock(path) == info:  # still the stale one (not just taken by another process)
                print(f"{path}: taking over a stale lock of {describe_holder(info)} (that process is gone)")
                path.unlink(missing_ok=True)
    raise RunInUse(f"{path}: could not take the lock (other processes keep taking it); try again")


@contextlib.contextmanager
def run_lock(folder: str | Path, what: str) -> Iterator[Path]:
    """Hold ``folder``'s lock for the block (created with the folder if missing); nested holds by this process
    share it. Refused with :class:`RunInUse`, naming the holder, when another live process holds it."""
    folder = Path(folder)
    created = not folder.exists()
    path = folder / LOCK
    with reporting_write_errors(folder):
        folder.mkdir(parents=True, exist_ok=True)
        key = str(path.resolve())
        if _HELD.get(key):
            _HELD[key] += 1
        else:
            _acquire(path, what)
            _HELD[key] = 1
    try:
        yield path
    finally:
        _HELD[key] -= 1
        if not _HELD[key]:
            del _HELD[key]
            info = _read_lock(path)
            if info is not None and info.get("pid") == os.getpid() and info.get("host") == socket.gethostname():
                path.unlink(missing_ok=True)
            if created:
                with contextlib.suppress(OSError):
                    folder.rmdir()  # only when nothing was written into it
