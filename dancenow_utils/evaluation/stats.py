"""Small statistics on NumPy arrays: average ranks, Pearson and Spearman correlation, ROC AUC.

Written here (a few lines each) so the package needs neither SciPy's stats module nor scikit-learn.
"""

from __future__ import annotations

import numpy as np


def average_ranks(x: np.ndarray) -> np.ndarray:
    """1-based ranks of ``x``; tied values share the mean of their ranks (as ``scipy.stats.rankdata``)."""
    x = np.asarray(x, np.float64).ravel()
    order = np.argsort(x, kind="mergesort")
    sorted_x = x[order]
    # start index of each run of equal values, and the mean rank of that run
    starts = np.flatnonzero(np.r_[True, sorted_x[1:] != sorted_x[:-1]])
    ends = np.r_[starts[1:], len(x)]
    mean_rank = (starts + ends + 1) / 2.0
    ranks = np.empty(len(x), np.float64)
    ranks[order] = np.repeat(mean_rank, ends - starts)
    return ranks


def pearson(x: np.ndarray, y: np.ndarray) -> float:
    """Pearson correlation of two equally long arrays; NaN when either is constant or shorter than 3."""
    x, y = np.asarray(x, np.float64).ravel(), np.asarray(y, np.float64).ravel()
    if len(x) != len(y):
        raise ValueError(f"pearson: arrays differ in length ({len(x)} and {len(y)})")
    if len(x) < 3:
        return float("nan")
    dx, dy = x - x.mean(), y - y.mean()
    denom = np.sqrt((dx * dx).sum() * (dy * dy).sum())
    return float((dx * dy).sum() / denom) if denom > 0 else float("nan")


def spearman(x: np.ndarray, y: np.ndarray) -> float:
    """Spearman rank correlation (Pearson on average ranks, so ties are handled)."""
    return pearson(average_ranks(x), average_ranks(y))


def roc_auc(labels: np.ndarray, scores: np.ndarray) -> float:
    """Area under the ROC curve for binary ``labels`` (1 = positive) and ``scores`` (higher = more positive).

    Computed as the Mann-Whitney statistic: the probability that a random positive scores above a random
    negative, ties counting one half. NaN when one class is absent.
    """
    labels = np.asarray(labels).ravel().astype(bool)
    scores = np.asarray(scores, np.float64).ravel()
    if len(labels) != len(scores):
        raise ValueError(f"roc_auc: {len(labels)} labels but {len(scores)} scores")
    n_pos, n_neg = int(labels.sum()), int((~labels).sum())
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    ranks = average_ranks(scores)
    return float((ranks[labels].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))
