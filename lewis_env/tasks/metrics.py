"""The metric functions task specs compute from per-episode bool columns (numpy only)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def accuracy(correct: Sequence[bool] | np.ndarray) -> float:
    """Fraction of correct episodes (NaN when there are none)."""
    arr = np.asarray(correct, dtype=float)
    return float(arr.mean()) if arr.size else float("nan")


def recognition_accuracies(correct: Sequence[bool] | np.ndarray,
                           positive: Sequence[bool] | np.ndarray) -> dict[str, float]:
    """Positive, negative and weighted ((pos + neg) / 2) accuracy of yes/no recognition, plus plain accuracy."""
    c = np.asarray(correct, dtype=bool)
    p = np.asarray(positive, dtype=bool)
    if c.shape != p.shape:
        raise ValueError(f"correct and positive differ in length: {c.shape} vs {p.shape}")
    pos = float(c[p].mean()) if p.any() else float("nan")
    neg = float(c[~p].mean()) if (~p).any() else float("nan")
    weighted = float(np.nanmean([pos, neg])) if not (np.isnan(pos) and np.isnan(neg)) else float("nan")
    return {"accuracy": accuracy(c), "positive_accuracy": pos, "negative_accuracy": neg,
            "weighted_accuracy": weighted}


__all__ = ["accuracy", "recognition_accuracies"]
