"""Safe file I/O: atomic writes (temp file, then rename) and image reading with clear errors.

A crash or Ctrl-C in the middle of a write leaves the previous file intact, never a half-written one.
"""

from __future__ import annotations

import contextlib
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


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success it is renamed onto ``path``, on error removed."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp" + path.suffix, dir=path.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
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


def user_cache_dir(*parts: str) -> Path:
    """dancenow's per-user cache, ``$XDG_CACHE_HOME/dancenow`` (default ``~/.cache/dancenow``), joined with
    ``parts``: where things fetched once are kept (the pose models, the browser runtime of the puppet page)."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base, "dancenow", *parts)


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    with atomic_path(path) as tmp:
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


def read_image(path: str | Path) -> np.ndarray:
    """Read an image as RGB uint8 (grayscale and RGBA become RGB); errors name the file and the fix."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such image file")
    if path.stat().st_size == 0:
        raise ValueError(f"{path}: the file is empty (0 bytes); delete it or re-run the step that wrote it")
    data = np.fromfile(str(path), dtype=np.uint8)
    img = cv2.imdecode(data, cv2.IMREAD_UNCHANGED)
    if img is None:
        raise ValueError(f"{path}: not a readable image (corrupt or unsupported format); delete or replace it")
    if img.dtype != np.uint8:
        img = (img / max(1, np.iinfo(img.dtype).max) * 255).astype(np.uint8) if img.dtype.kind == "u" else \
            np.clip(img, 0, 255).astype(np.uint8)
    if img.ndim == 2:
        return cv2.cvtColor(img, cv2.COLOR_GRAY2RGB)
    if img.shape[2] == 4:
        return cv2.cvtColor(img, cv2.COLOR_BGRA2RGB)
    return cv2.cvtColor(img, cv2.COLOR_BGR2RGB)


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
    with open(path, "a") as f:
        f.write(json.dumps(row) + "\n")


def write_jsonl(path: str | Path, rows: list[dict]) -> None:
    """Replace a JSON-lines file atomically."""
    atomic_write_text(path, "".join(json.dumps(r) + "\n" for r in rows))


def write_json(path: str | Path, data: dict) -> None:
    """Write a JSON object atomically, indented for people."""
    atomic_write_text(path, json.dumps(data, indent=2) + "\n")
