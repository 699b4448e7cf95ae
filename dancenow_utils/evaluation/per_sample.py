"""The cross-validation's per-sample table (``checkpoints/<name>_test/per_sample.csv``), read in one place.

:mod:`~dancenow_utils.evaluation.crossval` writes it (one row of metrics per held-out sample); notebook 03's
picks, pose coverage's comparison with measured quality and the bench scripts read it here.
"""

from __future__ import annotations

import contextlib
import csv
from pathlib import Path

from dancenow_utils.layout import EvaluationLayout


def per_sample_file(path: str | Path) -> Path:
    """The ``per_sample.csv`` named by ``path``: the file itself or the ``checkpoints/<name>_test`` folder."""
    path = Path(path)
    return EvaluationLayout(path).per_sample if path.is_dir() else path


def read_per_sample(path: str | Path) -> list[dict]:
    """The per-sample rows of a cross-validation (the file or its folder), numbers as floats, empty cells None."""
    path = per_sample_file(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no per-sample metrics; run the cross-validation (notebook 03) first")
    with path.open(newline="") as f:
        rows = list(csv.DictReader(f))
    for r in rows:
        for k, v in r.items():
            with contextlib.suppress(ValueError):
                r[k] = float(v) if v not in ("", "None") else None
    return rows
