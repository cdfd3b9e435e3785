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


def diff_interval(k1, n1, k2, n2, z: float = Z95) -> tuple[float, float]:
    """Interval for p1 - p2 (p = k / n) by Newcombe's hybrid score method ("method 10", Newcombe 1998,
    "Interval estimation for the difference between independent proportions"), built from the two
    Wilson intervals so that it stays honest at 0% and 100%; nan where n1 or n2 is 0.

    It assumes independent samples. Two accuracies on the same images are positively correlated, and
    then it is wider than needed (conservative), never narrower."""
    (l1, u1), (l2, u2) = wilson(k1, n1, z), wilson(k2, n2, z)
    k1, n1, k2, n2 = (np.asarray(v, dtype=float) for v in (k1, n1, k2, n2))
    with np.errstate(invalid="ignore", divide="ignore"):
        p1, p2 = k1 / n1, k2 / n2
    d = p1 - p2
    lo = d - np.sqrt((p1 - l1) ** 2 + (u2 - p2) ** 2)
    hi = d + np.sqrt((u1 - p1) ** 2 + (p2 - l2) ** 2)
    return (float(lo), float(hi)) if lo.ndim == 0 else (lo, hi)
