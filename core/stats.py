"""Uncertainty of accuracies: how far an accuracy measured on n images can be from the true one.

Wilson's score interval, not the normal approximation: it stays inside [0, 1] and is honest at the 0%
and 100% cells a translation grid is full of (Brown, Cai & DasGupta 2001, "Interval estimation for a
binomial proportion")."""
from __future__ import annotations

import numpy as np

Z95 = 1.959963984540054   # two-sided 95%


def wilson(k, n, z: float = Z95) -> tuple[np.ndarray, np.ndarray]:
    """Lower and upper bound of the Wilson score interval for k successes in n trials (arrays or
    scalars, elementwise); nan where n is 0."""
    k, n = np.asarray(k, dtype=float), np.asarray(n, dtype=float)
    with np.errstate(invalid="ignore", divide="ignore"):
        p = k / n
        denom = 1 + z * z / n
        centre = (p + z * z / (2 * n)) / denom
        half = z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    lo, hi = centre - half, centre + half
    lo, hi = np.where(n > 0, np.clip(lo, 0, 1), np.nan), np.where(n > 0, np.clip(hi, 0, 1), np.nan)
    return (float(lo), float(hi)) if lo.ndim == 0 else (lo, hi)


def wilson_halfwidth(k, n, z: float = Z95):
    """Half the width of the Wilson interval: the '+-' a heatmap cell can be read with."""
    lo, hi = wilson(k, n, z)
    return (np.asarray(hi) - np.asarray(lo)) / 2
