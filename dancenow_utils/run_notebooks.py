"""Execute the numbered notebooks headlessly with papermill (``make demo``) and link their outputs.

``python -m dancenow_utils.run_notebooks --all`` runs 01..05 in order with their default (demo) parameters,
saves the executed copies under ``results/notebooks/`` and writes ``results/index.html``. A failing notebook
stops the run with its failing cell's source and error: nothing "passes" by being skipped.

The kernels inherit this process's environment; :func:`run_notebook` adds the allocator settings of
:mod:`dancenow_utils.runtime_env` to it first (unless ``GLIBC_TUNABLES`` is already set), so kernels started from
plain ``python -m dancenow_utils.run_notebooks`` train as fast as under ``make demo``.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

from dancenow_utils.io_utils import atomic_write_text
from dancenow_utils.runtime_env import apply_allocator_env

NOTEBOOKS = ("01_pose_extraction", "02_training", "03_cross_validation", "04_pose_transfer",
             "05_epoch_visualization")


class NotebookError(RuntimeError):
    """A notebook failed; the message holds the failing cell's source and traceback."""


def run_notebook(path: str | Path, out_path: str | Path, parameters: dict | None = None,
                 cwd: str | Path | None = None, timeout: int = 3600):
    """Execute one notebook with papermill; raise :class:`NotebookError` naming the failing cell."""
    import papermill as pm

    apply_allocator_env()  # glibc reads it at process start: it takes effect in the kernel papermill starts
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    try:
        return pm.execute_notebook(str(path), str(out_path), parameters=parameters or {}, cwd=str(cwd) if cwd else None,
                                   kernel_name="python3", progress_bar=False, execution_timeout=timeout)
    except pm.PapermillExecutionError as exc:
        import nbformat

        nb = nbformat.read(str(out_path), as_version=4)
        failed = [c for c in nb.cells if c.cell_type == "code"
                  and any(o.get("output_type") == "error" for o in c.get("outputs", []))]
        source = failed[0].source if failed else "(unknown cell)"
        raise NotebookError(f"{path}: cell {exc.exec_count} failed\n--- source ---\n{source}\n--- error ---\n"
                            f"{exc.ename}: {exc.evalue}\n{''.join(exc.traceback[-3:])}") from None


def write_index(root: Path) -> Path:
    """``results/index.html``: one link per step's outputs that exist."""
    from dominate import document
    from dominate.tags import a, h1, li, p, ul

    links = [
        ("Step 1: demo contact sheet", "demo_data/contact_sheet.png"),
        ("Step 2: training visuals", "checkpoints/demo/web/index.html"),
        ("Step 2: loss curves", "checkpoints/demo/loss_curves.png"),
        ("Step 3: cross-validation page", "checkpoints/demo_test/index.html"),
        ("Step 3: metrics", "checkpoints/demo_test/metrics.json"),
        ("Step 4: transfer page", "results/demo/index.html"),
        ("Step 4: side-by-side video", "results/demo/side_by_side.mp4"),
        ("Step 4: transfer GIF", "results/demo/transfer.gif"),
        ("Step 5: learning grid", "checkpoints/Initial_epoch/learning/learning_grid.png"),
        ("Step 5: learning GIF", "checkpoints/Initial_epoch/learning/learning.gif"),
    ] + [(f"Executed notebook {n}", f"results/notebooks/{n}.ipynb") for n in NOTEBOOKS]
    doc = document(title="dancenow demo results")
    with doc:
        h1("dancenow demo results")
        p("Everything `make demo` produced, step by step.")
        with ul():
            for text, rel in links:
                if (root / rel).exists():
                    li(a(text, href="../" + rel))
    out = root / "results" / "index.html"
    atomic_write_text(out, doc.render())
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--all", action="store_true", help="run all five notebooks in order")
    ap.add_argument("names", nargs="*", help="notebook names (e.g. 02_training) to run instead of --all")
    ap.add_argument("--root", default=".", help="repository root (notebooks/ and the data folders)")
    a = ap.parse_args(argv)
    root = Path(a.root).resolve()
    names = NOTEBOOKS if a.all or not a.names else a.names
    # MediaPipe's C++ code logs to the kernel's stderr, which it inherits from us: send that to a file
    log_path = root / "results" / "notebooks" / "kernel_stderr.log"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    sys.stderr.flush()
    saved_stderr = os.dup(2)
    with open(log_path, "w") as log:
        os.dup2(log.fileno(), 2)
        try:
            return _run_all(root, names, log_path)
        finally:
            os.dup2(saved_stderr, 2)
            os.close(saved_stderr)


def _run_all(root: Path, names, log_path: Path) -> int:
    for name in names:
        t0 = time.time()
        print(f"== {name}", flush=True)
        try:
            run_notebook(root / "notebooks" / f"{name}.ipynb", root / "results" / "notebooks" / f"{name}.ipynb",
                         cwd=root)
        except NotebookError as exc:
            print(exc, flush=True)
            print(f"(kernel log: {log_path})", flush=True)
            return 1
        print(f"   done in {time.time() - t0:.0f} s", flush=True)
    index = write_index(root)
    print(f"\nDemo finished. Open {index} for links to every step's outputs:\n"
          f"  training visuals  checkpoints/demo/web/index.html\n"
          f"  metrics           checkpoints/demo_test/metrics.json\n"
          f"  transfer videos   results/demo/transfer.mp4, results/demo/side_by_side.mp4\n"
          f"  learning grid     checkpoints/Initial_epoch/learning/learning_grid.png")
    return 0


if __name__ == "__main__":
    sys.exit(main())
