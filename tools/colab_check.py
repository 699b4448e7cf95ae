"""Mimic today's Colab runtime and run the notebooks' first cell and notebook 01 there (issue 22).

    .venv/bin/python tools/colab_check.py [--python python3.13] [--keep DIR]

(any interpreter with jupyter_client runs it: it drives the kernel of the environment it builds).

1. A fresh virtual environment of ``--python`` (Colab's default runtime: Python 3.13) with Colab's preinstalled
   versions of the packages the project shares with it (:data:`COLAB_PACKAGES`: torch 2.11, torchvision 0.26,
   numpy 2.1, protobuf 5.29) and ipykernel, Colab's kernel.
2. A kernel of that environment, driven as Colab's page drives it (execute requests with stdin allowed: a person's
   frontend, not papermill), with ``COLAB_RELEASE_TAG`` set as on Colab, ``/content`` replaced by a folder of the
   check's own, and empty caches (pip's, the pose models'). The kernel imports torch, numpy and protobuf first, as
   a session that used them has, so that an install changing any of them would make the first cell restart the
   kernel (the check then fails).
3. Notebook 01's first cell exactly as committed, with ``DANCENOW_REPO`` set to this repository (``file://``): it
   clones the committed HEAD and installs it into the kernel.
4. Notebook 01's other cells twice in the same kernel, with parameters set after its parameters cell as papermill
   would: on a small demo, then on two photos of real people (skimage's astronaut, matplotlib's Grace Hopper).
5. Checks: the four versions are what they were before the install, the kernel was not restarted, the demo's
   frames and both photos have a person (``summary.json``).

Prints a report (what ``bench/RESULTS.md`` records) and exits 0 only when every check passes. Needs the network
that PyPI is reachable through (torch is a download of a few GB, cached by pip after the first run).
"""

from __future__ import annotations

import argparse
import json
import os
import queue
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK = ROOT / "notebooks" / "01_pose_extraction.ipynb"
# what Colab's default runtime preinstalls (September 2026) of the packages dancenow depends on
COLAB_PACKAGES = {"torch": "2.11.*", "torchvision": "0.26.*", "numpy": "2.1.*", "protobuf": "5.29.*"}
KERNEL_PACKAGES = ["ipykernel"]  # Colab's kernel (this script drives it with its own jupyter_client)
DEMO = {"demo_frames": [40, 16, 16], "image_size": 64, "smooth_window": 3}
PHOTOS = {"source": "photos", "dataroot": "dataset_photos", "lesson_frames": 3}
CELL_TIMEOUT = 3600  # seconds: the first cell downloads and installs dancenow's dependencies


def versions(python: Path, names) -> dict[str, str | None]:
    """The installed versions of ``names`` in the environment of ``python`` (None: not installed)."""
    code = ("import importlib.metadata as m, json, sys\n"
            "def v(n):\n    try: return m.version(n)\n    except m.PackageNotFoundError: return None\n"
            "print(json.dumps({n: v(n) for n in sys.argv[1:]}))")
    out = subprocess.run([str(python), "-c", code, *names], capture_output=True, text=True, check=True).stdout
    return json.loads(out)


def find_python(name: str) -> str:
    """The interpreter the Makefile would use for ``name`` (tools/find_python.sh), or exit with its message."""
    found = subprocess.run(["sh", str(ROOT / "tools" / "find_python.sh"), name], capture_output=True, text=True)
    if found.returncode:
        sys.exit(found.stderr.strip())
    return found.stdout.strip()


def build_env(python: str, env_dir: Path) -> Path:
    """A fresh venv of ``python`` with Colab's preinstalled versions; returns its interpreter."""
    subprocess.run([python, "-m", "venv", str(env_dir)], check=True)
    py = env_dir / "bin" / "python"
    subprocess.run([str(py), "-m", "pip", "install", "-q", "--upgrade", "pip"], check=True)
    specs = [f"{name}=={version}" for name, version in COLAB_PACKAGES.items()] + KERNEL_PACKAGES
    print(f"preinstalling Colab's set: {' '.join(specs)}", flush=True)
    subprocess.run([str(py), "-m", "pip", "install", "-q", *specs], check=True)
    return py


class KernelStopped(RuntimeError):
    """The kernel exited while running a cell (the first cell restarting the session does this)."""


class Kernel:
    """A kernel of the Colab-like environment, driven as Colab's page drives it (stdin allowed)."""

    def __init__(self, python: Path, cwd: Path, env: dict[str, str]) -> None:
        from jupyter_client import KernelManager
        from jupyter_client.kernelspec import KernelSpecManager

        spec_dir = cwd.parent / "kernels" / "colab"
        spec_dir.mkdir(parents=True, exist_ok=True)
        (spec_dir / "kernel.json").write_text(json.dumps({
            "argv": [str(python), "-m", "ipykernel_launcher", "-f", "{connection_file}"],
            "display_name": "Python 3 (Colab-like)", "language": "python"}))
        specs = KernelSpecManager(kernel_dirs=[str(spec_dir.parent)])
        self.km = KernelManager(kernel_name="colab", kernel_spec_manager=specs)
        self.km.start_kernel(cwd=str(cwd), env=env)
        self.kc = self.km.client()
        self.kc.start_channels()
        self.kc.wait_for_ready(timeout=120)

    def run(self, code: str, label: str, timeout: float = CELL_TIMEOUT) -> str:
        """Execute one cell; returns its text output, raises with the traceback when it fails."""
        t0 = time.time()
        msg_id = self.kc.execute(code, allow_stdin=True)
        out: list[str] = []
        while True:
            try:
                msg = self.kc.get_iopub_msg(timeout=5)
            except queue.Empty:
                if not self.km.is_alive():
                    raise KernelStopped(f"{label}: the kernel stopped; its output:\n{''.join(out)}") from None
                if time.time() - t0 > timeout:
                    raise RuntimeError(f"{label}: no reply for {timeout:.0f} s") from None
                continue
            if msg["parent_header"].get("msg_id") != msg_id:
                continue
            kind, content = msg["msg_type"], msg["content"]
            if kind == "stream":
                out.append(content["text"])
            elif kind in ("execute_result", "display_data") and "text/plain" in content.get("data", {}):
                if "image/png" not in content["data"]:
                    out.append(content["data"]["text/plain"] + "\n")
            elif kind == "error":
                trace = re.sub(r"\x1b\[[0-9;]*m", "", "\n".join(content["traceback"]))  # no terminal colours
                raise RuntimeError(f"{label} failed; its output:\n{''.join(out)}{trace}")
            elif kind == "status" and content["execution_state"] == "idle":
                print(f"   {label}: {time.time() - t0:.0f} s", flush=True)
                return "".join(out)

    def alive(self) -> bool:
        return self.km.is_alive()

    def close(self) -> None:
        self.kc.stop_channels()
        if self.km.has_kernel:
            self.km.shutdown_kernel(now=True)


def notebook_cells() -> tuple[str, str, list[str]]:
    """Notebook 01's first cell, its parameters cell and the code cells after it, as committed."""
    nb = json.loads(NOTEBOOK.read_text())
    code = [("".join(c["source"]), c["metadata"].get("tags", [])) for c in nb["cells"] if c["cell_type"] == "code"]
    params = next(i for i, (_, tags) in enumerate(code) if "parameters" in tags)
    return code[0][0], code[params][0], [src for src, _ in code[params + 1:]]


def run_notebook_01(kernel: Kernel, parameters: dict, label: str) -> None:
    """Notebook 01's cells after the first, with ``parameters`` set after its parameters cell (as papermill does)."""
    _, params, rest = notebook_cells()
    kernel.run(params, f"{label}: parameters")
    kernel.run("\n".join(f"{k} = {v!r}" for k, v in parameters.items()), f"{label}: injected parameters")
    for i, src in enumerate(rest, 1):
        kernel.run(src, f"{label}: cell {i}/{len(rest)}")


PHOTOS_CODE = """import cv2, matplotlib, os
from pathlib import Path
from skimage import data
os.makedirs("photos", exist_ok=True)
cv2.imwrite("photos/astronaut.png", cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2BGR))
hopper = Path(matplotlib.get_data_path()) / "sample_data" / "grace_hopper.jpg"
cv2.imwrite("photos/grace_hopper.png", cv2.imread(str(hopper)))
print(sorted(os.listdir("photos")))
"""
SUMMARY_CODE = """import json, os
print(json.dumps({"cwd": os.getcwd(), **{root: json.load(open(f"{root}/train_keypoints/summary.json"))
                  for root in ("dataset", "dataset_photos")}}))
"""


def check(python_name: str, work: Path) -> int:
    """The whole check in ``work``; returns the exit code."""
    python = find_python(python_name)
    head = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                          check=True).stdout.strip()
    dirty = subprocess.run(["git", "-C", str(ROOT), "status", "--porcelain", "--untracked-files=no"],
                           capture_output=True, text=True, check=True).stdout.strip()
    print(f"== colab_check: {python}, the committed HEAD {head} of {ROOT}"
          + (" (uncommitted changes are not part of the check)" if dirty else ""), flush=True)
    t0 = time.time()
    py = build_env(python, work / "env")
    names = list(COLAB_PACKAGES)
    before = versions(py, names)
    print(f"== Colab-like environment in {time.time() - t0:.0f} s: {before}", flush=True)
    content = work / "content"  # Colab's /content
    content.mkdir()
    # a new runtime's empty caches (pip's, the pose models'), as on Colab; torch & co. came with the environment
    env = {**os.environ, "COLAB_RELEASE_TAG": "dancenow-colab-check", "DANCENOW_REPO": f"file://{ROOT}",
           "XDG_CACHE_HOME": str(work / "cache"),
           "MPLBACKEND": "module://matplotlib_inline.backend_inline", "PYTHONUNBUFFERED": "1"}
    env.pop("VIRTUAL_ENV", None)
    first, _, _ = notebook_cells()
    kernel = Kernel(py, content, env)
    results: dict[str, object] = {}
    try:
        kernel.run("import torch, numpy, google.protobuf  # a session that used them", "the session's imports")
        try:
            first_out = kernel.run(first, "first cell")
            results["restart"] = False
        except KernelStopped as exc:  # the cell restarted the session: Colab starts a new kernel in /content
            first_out, results["restart"] = str(exc), True
        print("\n".join("   | " + line for line in first_out.strip().splitlines()), flush=True)
        if results["restart"] or "restarting the session" in first_out:
            results["restart"] = True
            for _ in range(600):
                if not kernel.alive():
                    break
                time.sleep(0.1)
            kernel.close()
            print("== the session restarted, as on Colab: a new kernel in content/, the first cell again", flush=True)
            kernel = Kernel(py, content, env)
            again = kernel.run(first, "first cell, after the restart")
            print("\n".join("   | " + line for line in again.strip().splitlines()), flush=True)
        run_notebook_01(kernel, DEMO, "notebook 01 on the demo")
        kernel.run(PHOTOS_CODE, "the photos")
        run_notebook_01(kernel, PHOTOS, "notebook 01 on the photos")
        results.update(json.loads(kernel.run(SUMMARY_CODE, "summaries").strip().splitlines()[-1]))
        results["kernel_python"] = kernel.run("import sys; print(sys.version.split()[0])", "python").strip()
    except RuntimeError as exc:
        print(f"\nFAILED: {exc}", flush=True)
        return 1
    finally:
        kernel.close()
    after = versions(py, names)
    return report(before, after, results, time.time() - t0)


def report(before: dict, after: dict, results: dict, seconds: float) -> int:
    """Print the outcome as RESULTS.md records it; returns the exit code."""
    demo, photos = results["dataset"], results["dataset_photos"]
    checks = {f"{name} unchanged ({before[name]} -> {after[name]})": before[name] == after[name] for name in before}
    checks["the first cell did not restart the kernel"] = not results["restart"]
    checks[f"the demo: a person in {demo['written']} of {demo['total']} frames"] = \
        demo["written"] >= 0.9 * demo["total"] > 0
    checks[f"the photos: a person in {photos['written']} of {photos['total']}"] = \
        photos["written"] == photos["total"] == 2
    checks[f"the notebook worked in the clone ({results['cwd']})"] = Path(results["cwd"]).name == "dancenow"
    print(f"\n== colab_check (Python {results['kernel_python']}, {seconds / 60:.1f} min)")
    for text, ok in checks.items():
        print(f"   {'ok  ' if ok else 'FAIL'} {text}")
    return 0 if all(checks.values()) else 1


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--python", default="python3.13", help="the interpreter (command or path) of the runtime")
    ap.add_argument("--keep", default="", help="work in this folder (it must not exist) and keep it afterwards")
    a = ap.parse_args(argv)
    if a.keep:
        work = Path(a.keep).resolve()
        if work.exists():
            sys.exit(f"--keep {work}: the folder exists; the check starts from nothing, so give a new one")
        work.mkdir(parents=True)
        return check(a.python, work)
    work = Path(tempfile.mkdtemp(prefix="dancenow-colab-check-"))
    try:
        return check(a.python, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
