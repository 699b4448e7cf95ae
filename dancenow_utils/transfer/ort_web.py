"""onnxruntime-web, the browser build of ONNX Runtime the puppet page runs its model with: fetched once from the npm
registry, kept in the user cache, copied into each export so the page works offline.

The page needs three files of the ``onnxruntime-web`` npm package (:data:`VERSION`, MIT licence): the WebAssembly
build's script ``ort.wasm.min.js``, its loader ``ort-wasm-simd-threaded.mjs`` and the runtime itself
``ort-wasm-simd-threaded.wasm`` (about 15 MB). They are looked for, in order:

1. ``source`` (an argument, or the ``DANCENOW_ORT_WEB`` environment variable): the package's ``.tgz`` (what
   ``npm pack onnxruntime-web@1.31.1`` downloads) or a folder holding the files (flat, in ``dist/`` or in
   ``package/dist/``, e.g. an unpacked tarball or ``node_modules/onnxruntime-web``);
2. the cache, ``$XDG_CACHE_HOME/dancenow/npm/onnxruntime-web-<version>`` (``~/.cache/...``);
3. else the package is fetched once with ``npm pack`` (the npm registry) and the files unpacked into the cache.

Every file is checked against its SHA-256 (:data:`FILES`), wherever it comes from. Offline without any of these,
the error says which files to put where.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import subprocess
import tarfile
import tempfile
from pathlib import Path

from dancenow_utils.io_utils import atomic_path, atomic_write_text, has_sha256, sha256_file, user_cache_dir

PACKAGE = "onnxruntime-web"
VERSION = "1.31.1"
# file of the package's dist/ folder -> its SHA-256
FILES: dict[str, str] = {
    "ort.wasm.min.js": "b8a78c408c40da65fdc8ba0846f7b2948e92a4c6d6b23cc8e4165e428ad95443",
    "ort-wasm-simd-threaded.mjs": "30ed0b5cd1182ede931fea448afb567d4dc705ec957af09f108a2be5f770dac3",
    "ort-wasm-simd-threaded.wasm": "4b884c203b0fa48d057be3332c65513ff85aa3c5bddd6946acc0fab7ecda001d",
}
SCRIPT = "ort.wasm.min.js"  # what the page loads with a <script> tag; it loads the other two
ENV_VAR = "DANCENOW_ORT_WEB"
LICENSE = "MIT"


class RuntimeNotFoundError(FileNotFoundError):
    """onnxruntime-web's files are nowhere to be found and could not be fetched."""


def cache_dir() -> Path:
    """Where the files are kept once fetched: ``~/.cache/dancenow/npm/onnxruntime-web-<version>``."""
    return user_cache_dir("npm", f"{PACKAGE}-{VERSION}")


def _hint() -> str:
    return (f"Offline: run `npm pack {PACKAGE}@{VERSION}` where there is a network and pass the .tgz (or a folder "
            f"with {', '.join(FILES)}) as ort_web= / --ort-web, or set {ENV_VAR}; or copy the files into {cache_dir()}")


def _locate(folder: Path) -> dict[str, Path] | None:
    for sub in (folder, folder / "dist", folder / "package" / "dist"):
        if all((sub / name).is_file() for name in FILES):
            return {name: sub / name for name in FILES}
    return None


def _check(files: dict[str, Path], origin: str) -> dict[str, Path]:
    for name, path in files.items():
        if not has_sha256(path, FILES[name]):
            raise RuntimeNotFoundError(f"{path}: not the {name} of {PACKAGE} {VERSION} (its SHA-256 differs; "
                                       f"{origin}); delete it, or give the files of {PACKAGE}@{VERSION}")
    return files


def unpack_tarball(tgz: str | Path, dest: str | Path) -> dict[str, Path]:
    """Unpack the three files of an ``npm pack`` tarball into ``dest`` (each checked, written whole, renamed)."""
    tgz, dest = Path(tgz), Path(dest)
    try:
        with tarfile.open(tgz, "r:gz") as archive:
            blobs = {name: _read_member(archive, f"package/dist/{name}") for name in FILES}
    except (tarfile.TarError, OSError, EOFError) as exc:
        raise RuntimeNotFoundError(f"{tgz}: not a readable npm package ({exc}); fetch it again with "
                                   f"`npm pack {PACKAGE}@{VERSION}`") from None
    out = {}
    for name, data in blobs.items():
        if data is None:
            raise RuntimeNotFoundError(f"{tgz}: has no package/dist/{name}; use {PACKAGE}@{VERSION}'s tarball")
        if hashlib.sha256(data).hexdigest() != FILES[name]:
            raise RuntimeNotFoundError(f"{tgz}: its dist/{name} is not {PACKAGE} {VERSION}'s (SHA-256 differs)")
        with atomic_path(dest / name) as tmp:
            tmp.write_bytes(data)
        out[name] = dest / name
    return out


def _read_member(archive: tarfile.TarFile, name: str) -> bytes | None:
    try:
        member = archive.extractfile(name)
    except KeyError:
        return None
    return member.read() if member is not None else None


def fetch_tarball(dest: str | Path) -> Path:
    """Download (not install) the package's tarball with ``npm pack`` into ``dest``."""
    npm = shutil.which("npm")
    if npm is None:
        raise RuntimeNotFoundError(f"the puppet page needs {PACKAGE} {VERSION} and npm is not installed to fetch it "
                                   f"(install Node.js, e.g. `apt-get install npm`). {_hint()}")
    proc = subprocess.run([npm, "pack", f"{PACKAGE}@{VERSION}", "--pack-destination", str(dest), "--silent"],
                          capture_output=True, text=True, timeout=600)
    tgz = Path(dest) / f"{PACKAGE}-{VERSION}.tgz"
    if proc.returncode != 0 or not tgz.exists():
        detail = (proc.stderr or proc.stdout or "").strip().splitlines()[-1:]
        raise RuntimeNotFoundError(f"could not fetch {PACKAGE}@{VERSION} with npm ({'; '.join(detail) or 'failed'})."
                                   f" {_hint()}")
    return tgz


def runtime_files(source: str | Path | None = None, fetch: bool = True, quiet: bool = False) -> dict[str, Path]:
    """Paths of the three files (module docstring for where they are looked for)."""
    given = source or os.environ.get(ENV_VAR) or None
    if given:
        given = Path(given).expanduser()
        if given.is_file() and given.name.endswith((".tgz", ".tar.gz")):
            return unpack_tarball(given, cache_dir())
        files = _locate(given) if given.is_dir() else None
        if files is None:
            raise RuntimeNotFoundError(f"{given}: holds not all of {', '.join(FILES)} (flat, in dist/ or "
                                       f"package/dist/), nor is it a {PACKAGE} .tgz. {_hint()}")
        return _check(files, f"given as {given}")
    cached = _locate(cache_dir())
    if cached is not None:
        return _check(cached, f"the cache {cache_dir()}")
    if not fetch:
        raise RuntimeNotFoundError(f"{PACKAGE} {VERSION} is not in {cache_dir()}; run "
                                   f"`python -m dancenow_utils.transfer.ort_web` to fetch it once. {_hint()}")
    if not quiet:
        print(f"fetching {PACKAGE} {VERSION} once from the npm registry (about 35 MB) into {cache_dir()}")
    with tempfile.TemporaryDirectory() as tmp:
        return unpack_tarball(fetch_tarball(tmp), cache_dir())


def vendor(dest: str | Path, source: str | Path | None = None) -> dict[str, Path]:
    """Copy the three files into ``dest`` (the export's ``ort/`` folder); returns their new paths."""
    dest = Path(dest)
    out = {}
    for name, path in runtime_files(source).items():
        target = dest / name
        if not (target.exists() and sha256_file(target) == FILES[name]):
            with atomic_path(target) as tmp:
                shutil.copyfile(path, tmp)
        out[name] = target
    atomic_write_text(dest / "README.txt", f"{PACKAGE} {VERSION} ({LICENSE} licence, Microsoft), from the npm "
                                           "registry: the files of its dist/ folder the puppet page loads.\n")
    return out


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=f"Fetch (once) or check {PACKAGE} {VERSION} for the puppet page")
    ap.add_argument("--from", dest="source", default="", help="a .tgz from npm pack or a folder with the files")
    a = ap.parse_args(argv)
    for name, path in runtime_files(a.source or None).items():
        print(f"{name}: {path}")


if __name__ == "__main__":
    main()
