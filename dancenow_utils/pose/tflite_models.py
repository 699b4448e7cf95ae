"""The BlazePose, face-mesh and hand models the ``mediapipe`` backend runs: where they are, and fetching them once.

The backend runs MediaPipe's own ``.tflite`` models (Apache-2.0) on LiteRT. They ship inside the mediapipe 0.10.14
wheel, the last release with its legacy models, which no longer installs on Python 3.13; its model files are the
same on every platform and Python version. They are looked for, in order:

1. ``models_dir`` (an argument, or the ``DANCENOW_POSE_MODELS`` environment variable): a folder holding the six
   files (flat or in the wheel's ``mediapipe/modules/...`` layout), or a mediapipe 0.10.14 ``.whl`` file;
2. an installed mediapipe package of that era (its ``mediapipe/modules`` folder);
3. the cache, ``$XDG_CACHE_HOME/dancenow/pose_models`` (``~/.cache/...``);
4. else the wheel is fetched once from the package index with ``pip download`` (about 36 MB, no install) and the six
   files are unpacked into the cache, each checked against its SHA-256.

Offline without any of these, the error says which files to put where.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

from dancenow_utils.io_utils import has_sha256, user_cache_dir

WHEEL = "mediapipe==0.10.14"
# name -> (path inside the wheel, SHA-256 of the file)
MODEL_FILES: dict[str, tuple[str, str]] = {
    "pose_detection.tflite": ("mediapipe/modules/pose_detection/pose_detection.tflite",
                              "9ba9dd3d42efaaba86b4ff0122b06f29c4122e756b329d89dca1e297fd8f866c"),
    "pose_landmark_full.tflite": ("mediapipe/modules/pose_landmark/pose_landmark_full.tflite",
                                  "e9a5c5cb17f736fafd4c2ec1da3b3d331d6edbe8a0d32395855aeb2cdfd64b9f"),
    "face_detection_short_range.tflite": ("mediapipe/modules/face_detection/face_detection_short_range.tflite",
                                          "bbff11cebd1eb27a1e004cae0b0e63ec8c551cbf34a4451148b4908b8db3eca8"),
    "face_landmark.tflite": ("mediapipe/modules/face_landmark/face_landmark.tflite",
                             "1055cb9d4a9ca8b8c688902a3a5194311138ba256bcc94e336d8373a5f30c814"),
    "hand_recrop.tflite": ("mediapipe/modules/holistic_landmark/hand_recrop.tflite",
                           "67d996ce96f9d36fe17d2693022c6da93168026ab2f028f9e2365398d8ac7d5d"),
    "hand_landmark_full.tflite": ("mediapipe/modules/hand_landmark/hand_landmark_full.tflite",
                                  "11c272b891e1a99ab034208e23937a8008388cf11ed2a9d776ed3d01d0ba00e3"),
}
ENV_VAR = "DANCENOW_POSE_MODELS"


class ModelsNotFoundError(FileNotFoundError):
    """The pose models are nowhere to be found and could not be fetched."""


def cache_dir() -> Path:
    """Where fetched models are kept: ``$XDG_CACHE_HOME/dancenow/pose_models`` (default ``~/.cache``)."""
    return user_cache_dir("pose_models")


def _locate(folder: Path) -> dict[str, Path] | None:
    """The six files in ``folder`` (flat or in the wheel's layout), or None when one is missing."""
    found = {}
    for name, (inner, _) in MODEL_FILES.items():
        for candidate in (folder / name, folder / inner, folder / Path(inner).relative_to("mediapipe")):
            if candidate.is_file():
                found[name] = candidate
                break
        else:
            return None
    return found


def _check(files: dict[str, Path], origin: str) -> dict[str, Path]:
    """Each file's SHA-256 against the wheel's, once per process for a file that has not changed since."""
    for name, path in files.items():
        if not has_sha256(path, MODEL_FILES[name][1]):
            raise ModelsNotFoundError(f"{path}: not the {name} of {WHEEL} (its SHA-256 differs); delete it, or "
                                      f"point {ENV_VAR} / models_dir at the files of {WHEEL} ({origin})")
    return files


def unpack_wheel(wheel: str | Path, dest: str | Path) -> dict[str, Path]:
    """Unpack the six model files of a mediapipe 0.10.14 wheel into ``dest`` (each written whole, then renamed)."""
    wheel, dest = Path(wheel), Path(dest)
    try:
        archive = zipfile.ZipFile(wheel)
    except (zipfile.BadZipFile, FileNotFoundError) as exc:
        raise ModelsNotFoundError(f"{wheel}: not a readable wheel ({exc}); download it again with "
                                  f"`pip download {WHEEL} --no-deps`") from None
    dest.mkdir(parents=True, exist_ok=True)
    out = {}
    with archive:
        names = set(archive.namelist())
        for name, (inner, digest) in MODEL_FILES.items():
            if inner not in names:
                raise ModelsNotFoundError(f"{wheel}: has no {inner}; use the wheel of {WHEEL}")
            data = archive.read(inner)
            if hashlib.sha256(data).hexdigest() != digest:
                raise ModelsNotFoundError(f"{wheel}: its {inner} is not {WHEEL}'s (SHA-256 differs)")
            tmp = dest / f".{name}.part"
            tmp.write_bytes(data)
            os.replace(tmp, dest / name)
            out[name] = dest / name
    return out


def fetch_wheel(dest: str | Path, quiet: bool = False) -> Path:
    """Download (not install) the mediapipe 0.10.14 wheel with pip; any platform's wheel holds the same models."""
    dest = Path(dest)
    cmd = [sys.executable, "-m", "pip", "download", WHEEL, "--no-deps", "--only-binary=:all:", "--python-version",
           "3.12", "--platform", "manylinux_2_17_x86_64", "--dest", str(dest), "--disable-pip-version-check"]
    if quiet:
        cmd.append("-q")
    proc = subprocess.run(cmd, capture_output=quiet, text=True)
    wheels = sorted(dest.glob("mediapipe-0.10.14-*.whl"))
    if proc.returncode != 0 or not wheels:
        detail = (proc.stderr or "").strip().splitlines()[-1:] if quiet else []
        raise ModelsNotFoundError(
            f"could not download {WHEEL} to get the pose models ({'; '.join(detail) or 'pip failed'}). Offline, put "
            f"the files {', '.join(MODEL_FILES)} (from that wheel's mediapipe/modules folder, or the wheel file "
            f"itself) in a folder and pass it as models_dir or set {ENV_VAR}; or copy them into {cache_dir()}")
    return wheels[-1]


def _installed_mediapipe() -> Path | None:
    import importlib.util

    spec = importlib.util.find_spec("mediapipe")
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations))).parent


def model_paths(models_dir: str | Path | None = None, fetch: bool = True, quiet: bool = False) -> dict[str, Path]:
    """Paths of the six model files (module docstring for where they are looked for)."""
    given = models_dir or os.environ.get(ENV_VAR) or None
    if given:
        given = Path(given).expanduser()
        if given.suffix == ".whl":
            return unpack_wheel(given, cache_dir())
        files = _locate(given) if given.is_dir() else None
        if files is None:
            raise ModelsNotFoundError(f"{given}: holds not all of {', '.join(MODEL_FILES)} (nor is it a {WHEEL} "
                                      "wheel); put the files there, or leave models_dir empty to use the cache")
        return _check(files, f"given as {given}")
    installed = _installed_mediapipe()
    if installed is not None and (files := _locate(installed)) is not None:
        try:
            return _check(files, "the installed mediapipe")
        except ModelsNotFoundError:
            pass  # another mediapipe release: use the cache instead
    cached = _locate(cache_dir())
    if cached is not None:
        return _check(cached, f"the cache {cache_dir()}")
    if not fetch:
        raise ModelsNotFoundError(f"the pose models are not in {cache_dir()}; run "
                                  "`python -m dancenow_utils.pose.tflite_models` to fetch them once")
    if not quiet:
        print(f"fetching the pose models once ({WHEEL}'s wheel, about 36 MB) into {cache_dir()}", file=sys.stderr)
    with tempfile.TemporaryDirectory() as tmp:
        wheel = fetch_wheel(tmp, quiet=quiet)
        return unpack_wheel(wheel, cache_dir())


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description="Fetch (once) or check the pose models of the mediapipe backend")
    ap.add_argument("--from", dest="source", default="",
                    help=f"a folder with the files or a {WHEEL} wheel; default: installed mediapipe, cache, download")
    ap.add_argument("--copy-to", default="", help="also copy the six files into this folder (to carry them offline)")
    a = ap.parse_args(argv)
    files = model_paths(a.source or None)
    for name, path in files.items():
        print(f"{name}: {path}")
    if a.copy_to:
        Path(a.copy_to).mkdir(parents=True, exist_ok=True)
        for name, path in files.items():
            shutil.copy2(path, Path(a.copy_to) / name)
        print(f"copied to {a.copy_to}")


if __name__ == "__main__":
    main()
