"""Safe file I/O: atomic writes (temp file, then rename) and image reading with clear errors.

A crash or Ctrl-C in the middle of a write leaves the previous file intact, never a half-written one. A full disk,
a file-size limit or a read-only folder, whichever layer raises it (the OS, OpenCV, torch's zip writer), becomes
one :class:`WriteError` naming the path, the space needed where known and the fix; the temporary file is removed.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np

_UMASK = os.umask(0)
os.umask(_UMASK)
IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".webp", ".tif", ".tiff")
FULL = (errno.ENOSPC, errno.EDQUOT, errno.EFBIG)
READ_ONLY = (errno.EROFS, errno.EACCES, errno.EPERM)
# what torch's zip writer and ffmpeg say when a write fails, without an errno (torch: a short write on a full disk)
_WRITER_FAILURES = {"inline_container": errno.ENOSPC, "unexpected pos": errno.ENOSPC,
                    "file write failed": errno.ENOSPC, "No space left on device": errno.ENOSPC,
                    "Disk quota exceeded": errno.EDQUOT, "File too large": errno.EFBIG,
                    "Read-only file system": errno.EROFS}


class WriteError(OSError):
    """A write failed because the disk is full or the folder cannot be written: the message says where and what
    to do (``errno`` is the OS's, e.g. ``ENOSPC``)."""

    def __str__(self) -> str:
        return str(self.strerror)  # the message alone, without "[Errno 28]"


def format_size(n: float) -> str:
    """``0.25 GB``; in MB below 0.01 GB and in kB below 0.1 MB (a small write would read "0.00 GB")."""
    return f"{n / 1e9:.2f} GB" if n >= 1e7 else f"{n / 1e6:.2f} MB" if n >= 1e5 else f"{n / 1e3:.1f} kB"


def _free_bytes(folder: Path) -> int | None:
    where = next((p for p in (folder, *folder.parents) if p.exists()), None)
    try:
        return shutil.disk_usage(where).free if where is not None else None
    except OSError:
        return None


def write_error(exc: BaseException, path: str | Path, need_bytes: int | None = None) -> WriteError | None:
    """``exc`` as a :class:`WriteError` when it is a full disk or an unwritable folder, else None.

    ``need_bytes``: about how much the write needed (said in the message where known)."""
    if isinstance(exc, WriteError):
        return exc
    path = Path(path)
    code = exc.errno if isinstance(exc, OSError) else None
    if code is None and isinstance(exc, (RuntimeError, OSError)):
        code = next((c for text, c in _WRITER_FAILURES.items() if text in str(exc)), None)
    if code in FULL:
        free = _free_bytes(path.parent)
        need = f"This write needs about {format_size(need_bytes)}" if need_bytes else "More space is needed"
        have = f" ({format_size(free)} free there now)" if free is not None else ""
        limit = (" or the file is larger than this filesystem or process allows (ulimit -f)"
                 if code == errno.EFBIG else "")
        return WriteError(code, f"{path}: the disk is full{limit}. {need} in {path.parent}{have}; free some "
                                "space (old runs, results, the .old-* folders of moved-aside runs) or choose "
                                "another folder, and run again: nothing half-written was kept.")
    if code in READ_ONLY:
        why = "is on a read-only file system" if code == errno.EROFS else "is not writable (permission denied)"
        where = next((p for p in (path.parent, *path.parent.parents) if p.exists()), path.parent)
        return WriteError(code, f"{path}: cannot write there: {where} {why}. Choose a writable folder "
                                "(dataroot / checkpoints_dir / results_dir) or make this one writable "
                                "(chmod u+w, or copy the project off the read-only mount), and run again.")
    return None


@contextlib.contextmanager
def reporting_write_errors(path: str | Path, need_bytes: int | None = None) -> Iterator[None]:
    """Turn a full disk or an unwritable folder inside the block into one :class:`WriteError` about ``path``."""
    try:
        yield
    except (OSError, RuntimeError) as exc:
        clear = write_error(exc, path, need_bytes)
        if clear is None:
            raise
        raise clear from None


@contextlib.contextmanager
def atomic_path(path: str | Path, need_bytes: int | None = None) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success it is renamed onto ``path``, on error removed (a full
    disk or read-only folder is reported as a :class:`WriteError`, ``need_bytes`` the size where known)."""
    path = Path(path)
    with reporting_write_errors(path, need_bytes):
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp" + path.suffix, dir=path.parent)
        os.close(fd)
    tmp_path = Path(tmp)
    try:
        with reporting_write_errors(path, need_bytes):
            yield tmp_path
            os.chmod(tmp_path, 0o666 & ~_UMASK)  # mkstemp makes 0600 files; give the usual permissions
            os.replace(tmp_path, path)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


def sha256_file(path: str | Path) -> str:
    """The SHA-256 of a file's bytes, as hex (read in 1 MiB blocks: memory stays flat for big files)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


_MATCHED: set[tuple[str, int, int, str]] = set()  # (path, size, mtime, hash) of files whose hash matched


def has_sha256(path: str | Path, expected: str) -> bool:
    """Whether the file at ``path`` has the SHA-256 ``expected``; hashed once per process while the file is
    unchanged (same size and modification time), so checking fetched models at every load stays cheap."""
    st = Path(path).stat()
    key = (str(Path(path).resolve()), st.st_size, st.st_mtime_ns, expected)
    if key in _MATCHED:
        return True
    if sha256_file(path) != expected:
        return False
    _MATCHED.add(key)
    return True


def user_cache_dir(*parts: str) -> Path:
    """dancenow's per-user cache, ``$XDG_CACHE_HOME/dancenow`` (default ``~/.cache/dancenow``), joined with
    ``parts``: where things fetched once are kept (the pose models, the browser runtime of the puppet page)."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base, "dancenow", *parts)


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    with atomic_path(path, len(data)) as tmp:
        tmp.write_bytes(data)


def atomic_write_text(path: str | Path, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def write_image(path: str | Path, rgb: np.ndarray) -> None:
    """Write an RGB uint8 image atomically; the format follows the extension."""
    path = Path(path)
    arr = np.ascontiguousarray(rgb)
    if arr.ndim == 3:
        arr = cv2.cvtColor(arr, cv2.COLOR_RGB2BGR)
    ok, buf = cv2.imencode(path.suffix or ".png", arr)
    if not ok:
        raise ValueError(f"{path}: OpenCV could not encode an image with extension {path.suffix!r}")
    atomic_write_bytes(path, buf.tobytes())


BACKGROUND = 255  # transparent pixels are composited on white, a plain background


def _to_uint8(img: np.ndarray, path: Path) -> np.ndarray:
    """Any depth as 8 bits: 16-bit by its range, floats in [0, 1] (the usual convention) times 255, other floats
    as 0..255 (or scaled down to it when larger)."""
    if img.dtype == np.uint8:
        return img
    if img.dtype.kind == "u":
        return (img / max(1, np.iinfo(img.dtype).max) * 255).astype(np.uint8)
    if img.dtype.kind == "i":
        return (np.clip(img, 0, None) / np.iinfo(img.dtype).max * 255).astype(np.uint8)
    if img.dtype.kind == "f":
        img = np.nan_to_num(img.astype(np.float64), nan=0.0, posinf=0.0, neginf=0.0)
        top = float(img.max()) if img.size else 0.0
        scale = 255.0 if top <= 1.0 else 1.0 if top <= 255.0 else 255.0 / top
        return np.clip(img * scale, 0, 255).round().astype(np.uint8)
    if img.dtype.kind == "b":
        return img.astype(np.uint8) * 255
    raise ValueError(f"{path}: images of {img.dtype} pixels are not supported; save it as an 8-bit PNG")


def read_image(path: str | Path) -> np.ndarray:
    """Read an image as RGB uint8 (grayscale becomes RGB; transparency is composited on a plain white
    background; 16-bit and float images are scaled to 8 bits); errors name the file and the fix."""
    return read_image_with_alpha(path)[0]


def read_image_with_alpha(path: str | Path) -> tuple[np.ndarray, bool]:
    """:func:`read_image`, and whether the image had transparent pixels (composited on :data:`BACKGROUND`)."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such image file")
    if path.stat().st_size == 0:
        raise ValueError(f"{path}: the file is empty (0 bytes); delete it or re-run the step that wrote it")
    data = np.fromfile(str(path), dtype=np.uint8)
    img = cv2.imdecode(data, cv2.IMREAD_UNCHANGED)
    if img is None:
        raise ValueError(f"{path}: not a readable image (corrupt or unsupported format); delete or replace it")
    img = _to_uint8(img, path)
    if img.ndim == 2:
        return cv2.cvtColor(img, cv2.COLOR_GRAY2RGB), False
    if img.shape[2] not in (2, 4):
        return cv2.cvtColor(img, cv2.COLOR_BGR2RGB), False
    alpha = img[:, :, -1]
    rgb = cv2.cvtColor(np.ascontiguousarray(img[:, :, 0] if img.shape[2] == 2 else img[:, :, :3]),
                       cv2.COLOR_GRAY2RGB if img.shape[2] == 2 else cv2.COLOR_BGR2RGB)
    if not (alpha < 255).any():
        return rgb, False
    a = alpha[:, :, None].astype(np.float32) / 255.0
    return (rgb.astype(np.float32) * a + BACKGROUND * (1.0 - a)).round().astype(np.uint8), True


def list_images(folder: str | Path) -> list[Path]:
    """Sorted image files in ``folder`` (other files are ignored)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder}: no such folder")
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS)


def swap_folders_into_place(staging: dict[str, Path], final: dict[str, Path]) -> None:
    """Replace each ``final`` folder by its ``staging`` twin (same keys); the old ones are removed only after all
    renames, so an error leaves either the old folders or the new ones."""
    backups = {}
    for key, dst in final.items():
        if dst.exists():
            backups[key] = dst.with_name(f".{dst.name}.old")
            if backups[key].exists():
                shutil.rmtree(backups[key])
            os.replace(dst, backups[key])
    for key, src in staging.items():
        os.replace(src, final[key])
    for b in backups.values():
        shutil.rmtree(b, ignore_errors=True)


def read_jsonl(path: str | Path) -> list[dict]:
    """Rows of a JSON-lines file (missing file: no rows; a torn last line from a crash is ignored)."""
    path = Path(path)
    if not path.exists():
        return []
    rows = []
    for line in path.read_text().splitlines():
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return rows


def append_jsonl(path: str | Path, row: dict) -> None:
    """Append one JSON object as a line (a crash can at most tear this line, which readers skip)."""
    with reporting_write_errors(path), open(path, "a") as f:
        f.write(json.dumps(row) + "\n")


def write_jsonl(path: str | Path, rows: list[dict]) -> None:
    """Replace a JSON-lines file atomically."""
    atomic_write_text(path, "".join(json.dumps(r) + "\n" for r in rows))


def write_json(path: str | Path, data: dict) -> None:
    """Write a JSON object atomically, indented for people."""
    atomic_write_text(path, json.dumps(data, indent=2) + "\n")
