"""Execute the numbered notebooks headlessly with papermill (``make demo``) and link their outputs.

``python -m dancenow_utils.notebook.runner --all`` runs 01..05 in order with their default (demo) parameters,
saves the executed copies under ``results/notebooks/`` and writes ``results/index.html`` (one page
with every step's pictures, videos and metrics). A failing notebook stops the run with its failing cell's
source and error: nothing "passes" by being skipped.

The kernels inherit this process's environment; :func:`run_notebook` adds the allocator settings of
:mod:`dancenow_utils.runtime.env` to it first (unless ``GLIBC_TUNABLES`` is already set), so kernels started from
plain ``python -m dancenow_utils.notebook.runner`` train as fast as under ``make demo``.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import nbformat

from dancenow_utils.layout import CHECKPOINTS, LEARNING_RUN, NOTEBOOKS, RESULTS, ResultsLayout, RunLayout
from dancenow_utils.notebook.report_page import write_report
from dancenow_utils.runtime.env import apply_allocator_env


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
        nb = nbformat.read(str(out_path), as_version=4)
        failed = [c for c in nb.cells if c.cell_type == "code"
                  and any(o.get("output_type") == "error" for o in c.get("outputs", []))]
        source = failed[0].source if failed else "(unknown cell)"
        raise NotebookError(f"{path}: cell {exc.exec_count} failed\n--- source ---\n{source}\n--- error ---\n"
                            f"{exc.ename}: {exc.evalue}\n{''.join(exc.traceback[-3:])}") from None


def write_index(root: Path) -> Path:
    """``results/index.html``: one page with every step's pictures, videos and metrics (see report_page)."""
    return write_report(root)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--all", action="store_true", help="run all five notebooks in order")
    ap.add_argument("names", nargs="*", help="notebook names (e.g. 02_training) to run instead of --all")
    ap.add_argument("--root", default=".", help="repository root (notebooks/ and the data folders)")
    a = ap.parse_args(argv)
    root = Path(a.root).resolve()
    names = NOTEBOOKS if a.all or not a.names else a.names
    # MediaPipe's C++ code logs to the kernel's stderr, which it inherits from us: send that to a file
    log_path = root / RESULTS / "notebooks" / "kernel_stderr.log"
    with stderr_to(log_path):
        return _run_all(root, names, log_path)


@contextlib.contextmanager
def stderr_to(log_path: Path) -> Iterator[None]:
    """Send this process's file descriptor 2 (and so the stderr of the kernels it starts, which inherit it) to
    ``log_path``: MediaPipe's C++ code logs there, and the log is shown only when a notebook fails."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(log_path, "w") as log:
            os.dup2(log.fileno(), 2)
            yield
    finally:
        sys.stderr.flush()
        os.dup2(saved, 2)
        os.close(saved)


def _run_all(root: Path, names, log_path: Path) -> int:
    for name in names:
        t0 = time.time()
        print(f"== {name}", flush=True)
        try:
            run_notebook(root / "notebooks" / f"{name}.ipynb", root / RESULTS / "notebooks" / f"{name}.ipynb",
                         cwd=root)
        except NotebookError as exc:
            print(exc, flush=True)
            print(f"(kernel log: {log_path})", flush=True)
            return 1
        print(f"   done in {time.time() - t0:.0f} s", flush=True)
    index = write_index(root)
    run, out = RunLayout(CHECKPOINTS, "demo"), ResultsLayout(RESULTS, "demo")
    print(f"\nDemo finished. Open {index} to see every step's pictures, videos and metrics; the files:\n"
          f"  training visuals  {run.web_page}\n"
          f"  metrics           {run.test.metrics}\n"
          f"  transfer videos   {out.video}, {out.side_by_side}\n"
          f"  puppet page       {out.export.page} (serve it: python -m http.server -d {out.export.dir} 8000)\n"
          f"  learning grid     {RunLayout(CHECKPOINTS, LEARNING_RUN).learning_grid}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
