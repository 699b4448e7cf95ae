"""Run a notebook through papermill into a temporary folder; failures show the failing cell and traceback."""

from __future__ import annotations

from pathlib import Path

from dancenow_utils.notebook.runner import NotebookError, run_notebook

ROOT = Path(__file__).resolve().parents[1]


def execute(name: str, workdir: Path, **parameters):
    """Execute ``notebooks/<name>.ipynb`` with ``parameters`` in ``workdir``; returns the executed notebook."""
    try:
        return run_notebook(ROOT / "notebooks" / f"{name}.ipynb", workdir / "executed" / f"{name}.ipynb",
                            parameters, cwd=workdir, timeout=300)
    except NotebookError as exc:
        raise AssertionError(str(exc)) from None
